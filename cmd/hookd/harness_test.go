package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// hookdBin is the real binary, built once; end-to-end tests run it as a
// process, the way users do.
var hookdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookd-e2e-")
	if err != nil {
		panic(err)
	}
	hookdBin = filepath.Join(dir, "hookd")
	build := exec.Command("go", "build", "-race", "-o", hookdBin, ".")
	if os.Getenv("HOOKD_E2E_NORACE") != "" {
		build = exec.Command("go", "build", "-o", hookdBin, ".")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hookd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// backend is a database an end-to-end test runs against.
type backend struct {
	name string
	url  func(t *testing.T) string // a fresh, empty database
}

// backends are SQLite always, and PostgreSQL when HOOKD_TEST_POSTGRES_URL
// is set (CI sets it; without it those subtests skip and say how).
func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "hookd.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.URL(t) }},
	}
}

// testEncryptionKey is the HOOKD_ENCRYPTION_KEY of servers on
// PostgreSQL, where one is required; the same for every node of a test.
const testEncryptionKey = "aG9va2QgZTJlIHRlc3RzIGVuY3J5cHRpb24ga2V5ISE="

// forEachBackend runs f as a subtest on each backend.
func forEachBackend(t *testing.T, f func(t *testing.T, dbURL string)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b.url(t)) })
	}
}

// syncBuffer collects a process's stderr while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is a running `hookd serve`.
type server struct {
	t      *testing.T
	URL    string
	env    []string
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan error
	addr   chan string // the address it serves on, once it says so
}

var listenRE = regexp.MustCompile(`msg="hookd serving" addr=(\S+)`)

// environ builds a process environment: the test's, minus HOOKD_*, plus env.
func environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKD_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// startServer starts `hookd serve` on a free loopback port and waits until
// /readyz answers 200. It is stopped (SIGTERM) when the test ends.
func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	s := launchServer(t, env)
	s.awaitServing(60 * time.Second)
	return s
}

// launchServer starts `hookd serve` on a free loopback port, and does not
// wait for it (see awaitServing). It is stopped (SIGTERM) when the test
// ends.
func launchServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	s := &server{t: t, env: environ(serverEnv(env)), logs: &syncBuffer{}, exited: make(chan error, 1), addr: make(chan string, 1)}
	s.cmd = exec.Command(hookdBin, "serve")
	s.cmd.Env = s.env
	pr, pw := io.Pipe()
	s.cmd.Stderr = io.MultiWriter(s.logs, pw)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait(); pw.Close() }()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				s.addr <- m[1]
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() {
		s.Stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("hookd logs:\n%s", s.logs.String())
		}
	})
	return s
}

// awaitServing waits up to d for the server to listen, then until /readyz
// answers 200.
func (s *server) awaitServing(d time.Duration) {
	s.t.Helper()
	select {
	case a := <-s.addr:
		s.URL = "http://" + a
	case err := <-s.exited:
		s.exited <- err // keep it for Stop
		s.t.Fatalf("hookd exited before serving: %v\n%s", err, s.logs.String())
	case <-time.After(d):
		s.t.Fatalf("hookd did not start in %v:\n%s", d, s.logs.String())
	}
	waitReady(s.t, s.URL)
}

// serverEnv is env on top of what every test server gets: a free
// loopback port, debug logs, and the key PostgreSQL requires.
func serverEnv(env map[string]string) map[string]string {
	full := map[string]string{"HOOKD_ADDR": "127.0.0.1:0", "HOOKD_LOG_LEVEL": "debug"}
	if strings.HasPrefix(env["HOOKD_DATABASE_URL"], "postgres") {
		full["HOOKD_ENCRYPTION_KEY"] = testEncryptionKey // required there
	}
	for k, v := range env {
		full[k] = v
	}
	return full
}

// waitReady waits until the server at url answers /readyz with 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	waitFor(t, 30*time.Second, "/readyz to answer 200", func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// Stop sends sig and waits for the process to exit, returning its error.
func (s *server) Stop(sig syscall.Signal) error {
	if s.cmd.ProcessState != nil {
		return nil
	}
	s.cmd.Process.Signal(sig)
	select {
	case err := <-s.exited:
		s.exited <- err // keep it for a second Stop
		return err
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		s.t.Errorf("hookd did not exit 30s after %v", sig)
		return <-s.exited
	}
}

// hookd runs a one-shot hookd command and returns its stdout and stderr.
func hookd(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(hookdBin, args...)
	cmd.Env = environ(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// newToken makes an API token for org with `hookd token create`.
func newToken(t *testing.T, dbURL string, org uuid.UUID) string {
	t.Helper()
	out, errOut, err := hookd(t, map[string]string{"HOOKD_DATABASE_URL": dbURL}, "token", "create", "--organization", org.String(), "--name", "e2e")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "hkd_") {
		t.Fatalf("token create printed %q on stdout, want the token alone", out)
	}
	return lines[0]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call makes an API request and decodes a JSON answer into out (if not nil).
type call struct {
	t     *testing.T
	base  string
	auth  string
	extra http.Header
	// timeout is how long doQuiet waits for an answer (zero: 30 s).
	timeout time.Duration
}

func (c call) do(method, path string, body any, out any) (int, http.Header, []byte) {
	c.t.Helper()
	st, h, b, err := c.doQuiet(method, path, body, out)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return st, h, b
}

// doQuiet is do for callers that expect failures (a server being killed):
// it returns errors rather than failing the test, and is safe to call
// from any goroutine.
func (c call) doQuiet(method, path string, body any, out any) (int, http.Header, []byte, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return 0, nil, nil, err
		}
		r = bytes.NewReader(j)
	}
	timeout := c.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	for k, v := range c.extra {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, data, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, resp.Header, data, fmt.Errorf("decoding %q: %v", data, err)
		}
	}
	return resp.StatusCode, resp.Header, data, nil
}
