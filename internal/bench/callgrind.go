package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Under callgrind (Config.Callgrind) each hookd runs in valgrind, which
// counts the instructions it executes: the same count for the same work
// whatever else the machine runs, where CPU seconds on a shared VM move
// by a third from hour to hour. The bench zeroes the count as a
// scenario's load starts and has callgrind write it out once every
// delivery has arrived, so a scenario's figure is hookd's work for its
// deliveries, setup aside (and, at a low rate, what an idle hookd does
// meanwhile: under a million instructions a second).
//
// hookd runs on one P there (GOMAXPROCS=1): valgrind runs one thread at a
// time, so a Go scheduler thread spinning for work on an idle P spins
// through whole time slices and its count says more about valgrind than
// about hookd (an idle hookd counted 45 million instructions a second
// with two, under a million with one). Go's asynchronous preemption is
// off too (asyncpreemptoff=1 in GODEBUG): callgrind trips over its
// signals, and over SIGTERM too (valgrind 3.19 aborts), so a hookd it
// runs is never stopped gracefully and its final profile is empty: the
// counts are in the dumps (PROFILE.1, PROFILE.2...). Backlog, which
// restarts hookd, is skipped for that reason. And Go's clock does without
// RDTSCP (cpu.rdtscp=off): valgrind 3.19 tells a program the CPU has it
// whatever the host says, and where the host's CPU does not (the AMD EPYC
// VMs of 2026-12-06, among others), executing it stops hookd with SIGILL.
//
// Valgrind makes hookd some fifty times slower, so scenarios need far
// smaller loads (hundreds to thousands of events, a few dozen a second),
// and the rates, latencies, memory and CPU it reports are valgrind's.
// It slows hookd's requests more than its intake, too: a burst's
// deliveries would wait for room behind HOOKD_MAX_INFLIGHT_PER_WEBHOOK and
// go through the queue, claims and all, which they do not outside
// valgrind (1.01–1.03 million instructions per delivery instead of 0.63),
// so unless exported the limit is 64 there.

// profiles numbers the profiles of one bench process. A hookd's pid may
// come again in a later run into the same directory; the run's start,
// the bench's pid and this number do not.
var profiles atomic.Int64

// callgrindCommand is the command that starts hookd serve under
// callgrind, writing its profile at the path it returns.
func (r *runner) callgrindCommand() (*exec.Cmd, string) {
	profile := filepath.Join(r.cfg.Callgrind, fmt.Sprintf("callgrind.%s.%d.%d.out",
		r.started.UTC().Format("20060102T150405"), os.Getpid(), profiles.Add(1)))
	// Quiet: valgrind's own lines would count as hookd's log.
	return exec.Command("valgrind", "--tool=callgrind", "--quiet", "--callgrind-out-file="+profile,
		r.cfg.Executable, "serve"), profile
}

// setCallgrindEnv adds to env what hookd needs under callgrind (see
// above), and returns the line hookd prints because of it.
func (r *runner) setCallgrindEnv(env map[string]string) (printed string) {
	env["GOMAXPROCS"] = "1"
	env["GODEBUG"] = callgrindGODEBUG
	for _, kv := range r.cfg.Environ {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok && v != "" {
			env["GODEBUG"] = v + "," + callgrindGODEBUG // the last setting of a name wins
		}
	}
	if !r.exported("HOOKD_MAX_INFLIGHT_PER_WEBHOOK") {
		env["HOOKD_MAX_INFLIGHT_PER_WEBHOOK"] = "64"
	}
	// The standard library's own copy of golang.org/x/sys/cpu (which its
	// crypto uses) reads the same GODEBUG and does not know rdtscp.
	return `GODEBUG sys/cpu: unknown cpu feature "rdtscp"` + "\n"
}

const callgrindGODEBUG = "asyncpreemptoff=1,cpu.rdtscp=off"

// zeroInstructions starts the process's count again from zero.
func (p *process) zeroInstructions() error {
	return vgdb(p, "zero")
}

// instructions has callgrind write out the process's count since the
// last zero, as its next dump, and returns it.
func (p *process) instructions() (int64, error) {
	if err := vgdb(p, "dump"); err != nil {
		return 0, err
	}
	p.dumps++
	return readTotals(p.profile + "." + strconv.Itoa(p.dumps))
}

// vgdb sends a callgrind monitor command to the process. (callgrind_control
// says the same, but exits 0 when it reached no process.)
func vgdb(p *process, command string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid := p.cmd.Process.Pid
	out, err := exec.CommandContext(ctx, "vgdb", "--pid="+strconv.Itoa(pid), command).CombinedOutput()
	if err != nil {
		return fmt.Errorf("callgrind %s of hookd %d: %v: %s", command, pid, err, bytes.TrimSpace(out))
	}
	return nil
}

// readTotals reads the instructions counted in a callgrind profile: its
// "summary:" line, near the top (or "totals:", at the end).
func readTotals(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, prefix := range []string{"summary:", "totals:"} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				return parseCount(v, path)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no totals in callgrind profile " + path)
}

// parseCount reads the first number of a totals line: instructions, the
// event callgrind counts by default.
func parseCount(v, path string) (int64, error) {
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return 0, errors.New("empty totals in callgrind profile " + path)
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("callgrind profile %s: totals %q: %v", path, fields[0], err)
	}
	return n, nil
}
