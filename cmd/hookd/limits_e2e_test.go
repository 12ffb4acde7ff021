package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// wantTooMany checks a 429 with a Retry-After of whole seconds in [1, max]
// and Qovery's error body.
func wantTooMany(t *testing.T, what string, st int, h http.Header, e errorJSON, max int) {
	t.Helper()
	if st != 429 || e.Status != 429 || e.Error != "Too Many Requests" || e.Detail == "" {
		t.Fatalf("%s: %d %+v, want 429 with Qovery's error body", what, st, e)
	}
	ra, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || ra < 1 || ra > max {
		t.Errorf("%s: Retry-After %q, want whole seconds from 1 to %d", what, h.Get("Retry-After"), max)
	}
}

// TestRateLimits: past a credential's API rate and an organization's
// intake rate, the real server answers 429 with Retry-After.
func TestRateLimits(t *testing.T) {
	dbURL := backends()[0].url(t)
	// One request per 10s after the burst: the test's requests all come
	// well within the first 10s, so no token refills meanwhile.
	srv := startServer(t, map[string]string{
		"HOOKD_DATABASE_URL": dbURL,
		"HOOKD_API_RATE":     "0.1", "HOOKD_API_BURST": "3",
		"HOOKD_INTAKE_RATE": "0.1", "HOOKD_INTAKE_BURST": "2",
	})
	o := newOrg(t, srv, dbURL)
	other := call{t: t, base: srv.URL, auth: "Token " + newToken(t, dbURL, o.id)}

	for i := range 3 {
		if st, _, body := o.api.do("GET", o.path("/webhook"), nil, nil); st != 200 {
			t.Fatalf("request %d of the burst: %d %s", i+1, st, body)
		}
	}
	var e errorJSON
	st, h, _ := o.api.do("GET", o.path("/webhook"), nil, &e)
	wantTooMany(t, "API past the burst", st, h, e, 10)
	if st, _, _ := other.do("GET", o.path("/webhook"), nil, nil); st != 200 {
		t.Errorf("another token of the organization: %d, want 200 (the API rate is per credential)", st)
	}

	// Intake counts per organization, whichever token sends, and not
	// against the API rate (o's is used up).
	for i, c := range []call{o.api, other} {
		if st, _, body := c.do("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "p", "STAGING"), nil); st != 202 {
			t.Fatalf("event %d of the burst: %d %s", i+1, st, body)
		}
	}
	e = errorJSON{}
	st, h, _ = other.do("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "p", "STAGING"), &e)
	wantTooMany(t, "intake past the burst", st, h, e, 10)
	if !strings.Contains(e.Detail, o.id.String()) {
		t.Errorf("intake refusal %q does not name the organization", e.Detail)
	}
	if strings.Contains(srv.logs.String(), strings.TrimPrefix(o.api.auth, "Token ")) {
		t.Error("a token appears in the server's logs")
	}
}

// TestMaxWebhooksPerOrg races creates past HOOKD_MAX_WEBHOOKS_PER_ORG;
// on PostgreSQL they go to two nodes sharing the database.
func TestMaxWebhooksPerOrg(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		env := map[string]string{"HOOKD_DATABASE_URL": dbURL, "HOOKD_MAX_WEBHOOKS_PER_ORG": "5", "HOOKD_ROLE": "api"}
		nodes := []*server{startServer(t, env)}
		if strings.HasPrefix(dbURL, "postgres") {
			nodes = append(nodes, startServer(t, env))
		}
		o := newOrg(t, nodes[0], dbURL)
		statuses, details := raceCreates(t, nodes, o, "/webhook", 16, func(i int) any {
			return map[string]any{"kind": "STANDARD", "target_url": fmt.Sprintf("https://example.com/%d", i), "events": []string{"DEPLOYMENT_STARTED"}}
		})
		created := 0
		for i, st := range statuses {
			switch {
			case st == 201:
				created++
			case st == 409 && strings.Contains(details[i], "5 webhooks"):
			default:
				t.Errorf("create %d: %d %q, want 201 or 409 naming the limit", i, st, details[i])
			}
		}
		var list struct{ Results []webhookJSON }
		o.api.do("GET", o.path("/webhook"), nil, &list)
		if created != 5 || len(list.Results) != 5 {
			t.Fatalf("%d creates succeeded and %d webhooks listed, want 5 and 5", created, len(list.Results))
		}
	})
}

// TestMaxSourcesPerOrg races source creates past
// HOOKD_MAX_SOURCES_PER_ORG, which keeps GET …/source (unpaginated)
// bounded; on PostgreSQL they go to two nodes sharing the database. A
// deletion makes room again.
func TestMaxSourcesPerOrg(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		env := map[string]string{"HOOKD_DATABASE_URL": dbURL, "HOOKD_MAX_SOURCES_PER_ORG": "3", "HOOKD_ROLE": "api"}
		nodes := []*server{startServer(t, env)}
		if strings.HasPrefix(dbURL, "postgres") {
			nodes = append(nodes, startServer(t, env))
		}
		o := newOrg(t, nodes[0], dbURL)
		statuses, details := raceCreates(t, nodes, o, "/source", 10, func(i int) any {
			return map[string]any{"kind": "GITHUB", "name": fmt.Sprintf("repo-%d", i), "secret": "a-source-secret-of-some-length"}
		})
		created := 0
		for i, st := range statuses {
			switch {
			case st == 201:
				created++
			case st == 409 && strings.Contains(details[i], "3 sources"):
			default:
				t.Errorf("create %d: %d %q, want 201 or 409 naming the limit", i, st, details[i])
			}
		}
		var list struct{ Results []struct{ ID string } }
		o.api.do("GET", o.path("/source"), nil, &list)
		if created != 3 || len(list.Results) != 3 {
			t.Fatalf("%d creates succeeded and %d sources listed, want 3 and 3", created, len(list.Results))
		}
		if st, _, body := o.api.do("DELETE", o.path("/source/"+list.Results[0].ID), nil, nil); st != 204 {
			t.Fatalf("delete: %d %s", st, body)
		}
		if st, _, body := o.api.do("POST", o.path("/source"), map[string]any{
			"kind": "GITLAB", "name": "after a delete", "secret": "a-source-secret-of-some-length",
		}, nil); st != 201 {
			t.Errorf("create after a delete: %d %s, want 201", st, body)
		}
	})
}

// raceCreates POSTs body(i) to o's path for each i below tries at once,
// spread over nodes, and returns each answer's status and detail.
func raceCreates(t *testing.T, nodes []*server, o *org, path string, tries int, body func(i int) any) ([]int, []string) {
	t.Helper()
	statuses := make([]int, tries)
	details := make([]string, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := call{t: t, base: nodes[i%len(nodes)].URL, auth: o.api.auth}
			var e errorJSON
			st, _, _, err := c.doQuiet("POST", o.path(path), body(i), &e)
			if err != nil {
				t.Errorf("create %d: %v", i, err)
			}
			statuses[i], details[i] = st, e.Detail
		}()
	}
	wg.Wait()
	return statuses, details
}

// rawConn is a TCP connection to the server written byte by byte.
type rawConn struct {
	net.Conn
	start  time.Time
	closed chan rawResult // what the server sent, once it closed
}

type rawResult struct {
	got     []byte
	err     error
	elapsed time.Duration
}

// dialRaw connects and reads everything the server sends until it closes
// the connection (or 60s pass: the test then fails on the result).
func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawConn{Conn: conn, start: time.Now(), closed: make(chan rawResult, 1)}
	conn.SetReadDeadline(c.start.Add(60 * time.Second))
	go func() {
		got, err := io.ReadAll(conn)
		c.closed <- rawResult{got, err, time.Since(c.start)}
	}()
	return c
}

// trickle writes p one byte every pause until the connection fails or
// stop is closed, and returns how many bytes went out.
func (c *rawConn) trickle(p []byte, pause time.Duration, stop <-chan struct{}) *atomic.Int64 {
	var n atomic.Int64
	go func() {
		for _, b := range p {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			n.Add(1)
			select {
			case <-stop:
				return
			case <-time.After(pause):
			}
		}
	}()
	return &n
}

// TestSlowClients: a client that trickles its headers, one that sends
// nothing, and one that trickles its body are disconnected by the
// server's timeouts; oversized headers are refused.
func TestSlowClients(t *testing.T) {
	dbURL := backends()[0].url(t)
	// Defaults: headers within 5s, the whole request within 30s.
	srv := startServer(t, map[string]string{"HOOKD_DATABASE_URL": dbURL})
	// A read timeout short enough for the test to wait it out, on a file
	// of its own: a second server of a SQLite file waits for the first.
	shortURL := backends()[0].url(t)
	short := startServer(t, map[string]string{"HOOKD_DATABASE_URL": shortURL, "HOOKD_READ_TIMEOUT": "2s"})
	org := uuid.New()
	token := newToken(t, shortURL, org)

	// Cut by the 5s header timeout: well before the 30s read timeout,
	// which is all that would stop them without it.
	const headerCut = 15 * time.Second
	t.Run("trickled headers", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, srv.URL)
		stop := make(chan struct{})
		defer close(stop)
		head := "GET /healthz HTTP/1.1\r\nHost: hookd\r\nX-Slow: " + strings.Repeat("a", 10000)
		sent := c.trickle([]byte(head), 50*time.Millisecond, stop)
		r := <-c.closed
		if r.elapsed > headerCut || len(r.got) > 0 {
			t.Fatalf("connection closed after %v having sent %d header bytes, answer %q (%v); want it closed, unanswered, within %v",
				r.elapsed.Round(time.Millisecond), sent.Load(), r.got, r.err, headerCut)
		}
	})
	t.Run("silent", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, srv.URL)
		r := <-c.closed
		if r.elapsed > headerCut || len(r.got) > 0 {
			t.Fatalf("connection closed after %v, answer %q (%v); want it closed, unanswered, within %v", r.elapsed.Round(time.Millisecond), r.got, r.err, headerCut)
		}
	})
	t.Run("oversized headers", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, srv.URL)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: hookd\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 100<<10))
		r := <-c.closed
		if !bytes.HasPrefix(r.got, []byte("HTTP/1.1 431 ")) {
			t.Fatalf("answer %.100q (%v), want 431", r.got, r.err)
		}
	})
	t.Run("trickled body", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, short.URL)
		body := strings.Repeat(" ", 4000) + `{}`
		fmt.Fprintf(c, "POST /organization/%s/deployment-event HTTP/1.1\r\nHost: hookd\r\nAuthorization: Token %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			org, token, len(body))
		stop := make(chan struct{})
		defer close(stop)
		// The whole body would take 200s at this pace.
		sent := c.trickle([]byte(body), 50*time.Millisecond, stop)
		r := <-c.closed
		if r.elapsed > 10*time.Second || sent.Load() == int64(len(body)) {
			t.Fatalf("connection closed after %v, %d of %d body bytes sent (%v); want it closed within 10s of a 2s read timeout",
				r.elapsed.Round(time.Millisecond), sent.Load(), len(body), r.err)
		}
		// Whatever the server answered (if it could) is not a success.
		if len(r.got) > 0 {
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(r.got)), nil)
			if err != nil || resp.StatusCode < 400 {
				t.Errorf("answer to a trickled body: %.200q", r.got)
			}
		}
	})
}

// vmHWM is the peak resident memory of a process, from /proc.
func vmHWM(t *testing.T, pid int) (int64, bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM: %q", line)
			}
			return kb << 10, true
		}
	}
	return 0, false
}

// endlessTarget answers 200 and streams for ever: fast in chunks, or a
// byte at a time. It counts what it wrote.
func endlessTarget(t *testing.T, chunk []byte, pause time.Duration) (string, *atomic.Int64) {
	var written atomic.Int64
	tg := newTargetFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		rc := http.NewResponseController(w)
		for {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err == nil {
				err = rc.Flush()
			}
			if err != nil {
				return
			}
			if pause > 0 {
				select {
				case <-time.After(pause):
				case <-r.Context().Done():
					return
				}
			}
		}
	})
	return tg, &written
}

// newTargetFunc is a loopback HTTP target running h.
func newTargetFunc(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return "http://" + ln.Addr().String()
}

// endlessHeadersTarget answers a status line and then header lines for
// ever.
func endlessHeadersTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	line := []byte("X-Filler: " + strings.Repeat("h", 1000) + "\r\n")
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(time.Minute))
				if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\n")); err != nil {
					return
				}
				for {
					if _, err := conn.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestHostileTargets: targets that stream an endless body, trickle one,
// or send endless headers. Every attempt ends (by the 64 KiB cap, the
// body's deadline, the header limit), is recorded with at most 64 KiB of body,
// and hookd's memory does not follow what the targets send.
func TestHostileTargets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		const timeout = 2 * time.Second
		srv := startServer(t, deliveryEnv(dbURL, map[string]string{
			"HOOKD_DELIVERY_TIMEOUT": timeout.String(),
			"HOOKD_RETRY_SCHEDULE":   "0s", // one attempt each
		}))
		hwm0, haveProc := vmHWM(t, srv.cmd.Process.Pid)
		o := newOrg(t, srv, dbURL)

		endless, endlessWritten := endlessTarget(t, bytes.Repeat([]byte("e"), 32<<10), 0)
		trickle, _ := endlessTarget(t, []byte("t"), 50*time.Millisecond)
		hooks := map[string]string{
			"endless": o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": endless + "/endless", "events": []string{"DEPLOYMENT_FAILURE"}}),
			"trickle": o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": trickle + "/trickle", "events": []string{"DEPLOYMENT_FAILURE"}}),
			"headers": o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": endlessHeadersTarget(t) + "/headers", "events": []string{"DEPLOYMENT_FAILURE"}}),
		}
		const events = 5
		for range events {
			o.emit(deploymentEvent("DEPLOYMENT_FAILURE", "p", "PRODUCTION"))
		}

		type attempt struct {
			Status     int    `json:"target_response_status_code"`
			Body       string `json:"target_response_body"`
			Error      string `json:"error"`
			DurationMS int64  `json:"duration_ms"`
		}
		for name, id := range hooks {
			var log struct{ Results []attempt }
			waitFor(t, 60*time.Second, fmt.Sprintf("%d attempts of %s", events, name), func() bool {
				o.api.do("GET", o.path("/webhook/"+id+"/event"), nil, &log)
				return len(log.Results) >= events
			})
			for _, a := range log.Results {
				if len(a.Body) > 64<<10 {
					t.Errorf("%s: recorded %d bytes of body, more than 64 KiB", name, len(a.Body))
				}
				// A margin for a loaded machine; without the timeout, the
				// trickle would go on for ever.
				if a.DurationMS > (timeout + 5*time.Second).Milliseconds() {
					t.Errorf("%s: attempt took %dms, the timeout is %v", name, a.DurationMS, timeout)
				}
				switch name {
				case "endless":
					if a.Status != 200 || a.Error != "" || len(a.Body) != 64<<10 {
						t.Errorf("endless: status %d, error %q, %d bytes; want 200 and the first 64 KiB", a.Status, a.Error, len(a.Body))
					}
				case "trickle":
					// A 2xx is a success once its status line arrived: the
					// body is read for the log within its own deadline.
					if a.Status != 200 || a.Error != "" || a.Body == "" || strings.Trim(a.Body, "t") != "" {
						t.Errorf("trickle: status %d, error %q, body %.40q; want a success with the bytes that came", a.Status, a.Error, a.Body)
					}
				case "headers":
					if a.Status != 0 || a.Error == "" || a.Body != "" {
						t.Errorf("headers: status %d, error %q, %d bytes; want no answer and an error", a.Status, a.Error, len(a.Body))
					}
				}
			}
		}
		if !haveProc {
			t.Log("no /proc: hookd's memory is not measured")
			return
		}
		hwm, _ := vmHWM(t, srv.cmd.Process.Pid)
		t.Logf("the endless target wrote %d MiB; hookd's peak RSS went from %d to %d MiB",
			endlessWritten.Load()>>20, hwm0>>20, hwm>>20)
		// Reading the endless answers whole for 2s each would take GBs.
		if grew := hwm - hwm0; grew > 64<<20 {
			t.Errorf("hookd's peak RSS grew by %d MiB during the hostile deliveries", grew>>20)
		}
	})
}
