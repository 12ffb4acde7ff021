package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// benchEncryptionKey encrypts the secrets of the bench's throwaway
// PostgreSQL databases (a key is required there).
var benchEncryptionKey = func() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}()

// process is a `hookd serve` the bench started.
type process struct {
	cmd     *exec.Cmd
	URL     string
	started time.Time
	logs    *tail
	exited  chan struct{}
	err     error // valid once exited is closed

	// Under callgrind: the profile's path, to which callgrind adds .1,
	// .2... for each dump, and how many dumps there have been.
	profile string
	dumps   int
}

// startHookd starts `hookd serve` on dbURL with the bench's settings plus
// extra, and waits until /readyz answers. The listen address is chosen
// here, not read from the log: at HOOKD_LOG_LEVEL=warn hookd does not log
// "hookd serving", and info logging would cost hookd time being measured.
func (r *runner) startHookd(ctx context.Context, dbURL string, extra map[string]string) (*process, error) {
	for try := 0; ; try++ {
		p, err := r.tryStartHookd(ctx, dbURL, extra)
		// Another process may take the free port between our Close and
		// hookd's Listen; that is rare enough that trying again suffices.
		if err != nil && try < 3 && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		return p, err
	}
}

func (r *runner) tryStartHookd(ctx context.Context, dbURL string, extra map[string]string) (*process, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"HOOKD_ADDR":                 addr,
		"HOOKD_DATABASE_URL":         dbURL,
		"HOOKD_LOG_LEVEL":            "warn",
		"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128",
	}
	if r.cfg.PprofAddr != "" {
		env["HOOKD_PPROF_ADDR"] = r.cfg.PprofAddr
	}
	// The bench measures throughput: one token sends thousands of events
	// a second and fanout creates --fanout webhooks, so the abuse limits
	// are off unless the caller exported them to measure them.
	for _, name := range unlimited {
		if !r.exported(name) {
			env[name] = "0"
		}
	}
	// PostgreSQL needs a key for webhook secrets, the same on every node.
	if strings.HasPrefix(dbURL, "postgres") && !r.exported("HOOKD_ENCRYPTION_KEY") && !r.exported("HOOKD_ENCRYPTION_KEY_FILE") {
		env["HOOKD_ENCRYPTION_KEY"] = benchEncryptionKey
	}
	for k, v := range extra {
		env[k] = v
	}
	p := &process{URL: "http://" + addr, logs: &tail{max: 64 << 10}, exited: make(chan struct{})}
	p.cmd = exec.Command(r.cfg.Executable, "serve")
	if r.cfg.Callgrind != "" {
		p.cmd, p.profile = r.callgrindCommand()
		p.logs.ignore = r.setCallgrindEnv(env)
	}
	p.cmd.Env = r.environ(env)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	// Under callgrind, hookd runs some fifty times slower: a minute was
	// seen not to be enough for a race-detector build to start on a busy
	// machine, nor a second for it to answer /readyz (whose own check
	// gives up after two).
	wait, answer := time.Minute, time.Second
	if r.cfg.Callgrind != "" {
		wait, answer = 10*time.Minute, 5*time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		if ready(ctx, p.URL, answer) {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("hookd exited before serving (%v): %s", p.err, p.logs)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("hookd did not answer /readyz within %v: %s", wait, p.logs)
		}
	}
}

// metric reads one series of the node's /metrics, such as
// `hookd_events_accepted_total{event_type="DEPLOYMENT_FAILURE"}`: what the
// node itself says it did, as its operator's Prometheus would see it.
func (p *process) metric(ctx context.Context, series string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /metrics", series)
}

func ready(ctx context.Context, base string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop ends hookd gracefully (SIGTERM, as an operator would), killing it
// if it has not exited 30s later.
func (p *process) stop() error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return errors.New("hookd did not stop within 30s of SIGTERM; killed")
	}
}

// unlimited are the abuse limits the bench turns off ("0").
var unlimited = []string{"HOOKD_API_RATE", "HOOKD_INTAKE_RATE", "HOOKD_MAX_WEBHOOKS_PER_ORG"}

// exported reports whether the caller's environment sets name.
func (r *runner) exported(name string) bool {
	for _, kv := range r.cfg.Environ {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			return true
		}
	}
	return false
}

// environ is the bench's environment for a child: HOOKD_* variables the
// caller exported are kept (so `HOOKD_MAX_INFLIGHT_PER_WEBHOOK=32 hookd
// bench` measures that setting) unless the bench sets them itself.
func (r *runner) environ(set map[string]string) []string {
	var out []string
	for _, kv := range r.cfg.Environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := set[name]; !ok {
			out = append(out, kv)
		}
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

// createToken makes an API token with `hookd token create`, which also
// migrates a fresh database.
func (r *runner) createToken(ctx context.Context, dbURL, org string) (string, error) {
	cmd := exec.CommandContext(ctx, r.cfg.Executable, "token", "create", "--organization", org, "--name", "bench")
	cmd.Env = r.environ(map[string]string{"HOOKD_DATABASE_URL": dbURL})
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hookd token create: %v: %s", err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

func freePort() (string, error) {
	// The kernel may hand a port just closed to the next Listen: two nodes
	// started at once could then be given one port, the second fail to
	// bind it, and its readiness check be answered by the first. So a port
	// is handed out once per bench run.
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		ln.Close()
		if !portsGiven[addr] {
			portsGiven[addr] = true
			return addr, nil
		}
	}
	return "", errors.New("no free port found that was not handed out already")
}

var (
	portsMu    sync.Mutex
	portsGiven = map[string]bool{}
)

// procStats is what /proc says about a process.
type procStats struct {
	CPU     time.Duration // user + system time so far
	RSS     int64         // resident set now, bytes
	PeakRSS int64         // VmHWM: the highest resident set, bytes
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times. It is 100 on
// every Linux architecture Go supports, and reading it (sysconf) would
// need cgo.
const clockTicks = 100

// ownCPU is the bench's own CPU time so far, its client's and its
// target's, or -1 where /proc does not tell it.
func ownCPU() time.Duration {
	s, err := readProc(os.Getpid())
	if err != nil {
		return -1
	}
	return s.CPU
}

// readProc reads a process's CPU time and memory from /proc (Linux only;
// elsewhere the figures are left out of the report).
func readProc(pid int) (procStats, error) {
	var s procStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces; the fields after its
	// closing parenthesis start at field 3, so utime (14) and stime (15)
	// are at indexes 11 and 12.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, errors.New("short /proc stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	s.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.RSS = kbField(status, "VmRSS:")
	s.PeakRSS = kbField(status, "VmHWM:")
	return s, nil
}

// kbField reads a "Name:   123 kB" line of /proc/PID/status or
// /proc/meminfo, in bytes.
func kbField(b []byte, name string) int64 {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// tail keeps the last max bytes written to it: hookd's warnings, shown
// when something goes wrong, without growing without bound. Lines equal
// to ignore (with their newline) are dropped: a line the bench's own
// settings make hookd print (see setCallgrindEnv) is not hookd's news.
type tail struct {
	mu     sync.Mutex
	max    int
	ignore string
	buf    []byte
	done   int // buf[:done] holds whole lines, buf[done:] one being written
	lines  int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	for {
		i := bytes.IndexByte(t.buf[t.done:], '\n')
		if i < 0 {
			break
		}
		end := t.done + i + 1
		if t.ignore != "" && string(t.buf[t.done:end]) == t.ignore {
			t.buf = append(t.buf[:t.done], t.buf[end:]...)
			continue
		}
		t.done = end
		t.lines++
	}
	// The last max bytes are kept, of whole lines and of the line being
	// written, unless that one may yet be dropped whole: then it is kept
	// beside them (it is shorter than ignore).
	kept := len(t.buf)
	if t.ignore != "" && strings.HasPrefix(t.ignore, string(t.buf[t.done:])) {
		kept = t.done
	}
	if n := kept - t.max; n > 0 {
		t.buf = append(t.buf[:0], t.buf[n:]...)
		t.done = max(t.done-n, 0)
	}
	return len(p), nil
}

// Lines is how many lines hookd logged (at warn or above).
func (t *tail) Lines() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lines
}

// Last is the last line logged, for the report.
func (t *tail) Last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := bytes.TrimRight(t.buf, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return string(b)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

var _ io.Writer = (*tail)(nil)
