package delivery

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// hostileTarget is a real loopback target that answers 200 and then
// writes chunk every pause, for ever, until hookd hangs up. done is
// closed when the handler has returned: hookd closed the connection.
type hostileTarget struct {
	*httptest.Server
	written atomic.Int64
	done    chan struct{}
}

func newHostileTarget(t *testing.T, chunk []byte, pause time.Duration) *hostileTarget {
	t.Helper()
	h := &hostileTarget{done: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(h.done)
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for {
			n, err := w.Write(chunk)
			h.written.Add(int64(n))
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
	}))
	t.Cleanup(h.Close)
	return h
}

func hostileTask(url string) *webhook.Task {
	org := uuid.New()
	hook := webhook.Webhook{ID: uuid.New(), OrganizationID: org, Kind: webhook.KindStandard, TargetURL: url, Enabled: true, TargetSecret: "s"}
	ev := webhook.Event{ID: uuid.New(), OrganizationID: org, CreatedAt: time.Now().UTC(), Type: webhook.EventDeploymentFailure,
		ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	return &webhook.Task{Webhook: hook, Event: ev, Delivery: webhook.Delivery{ID: uuid.New(), OrganizationID: org, WebhookID: hook.ID, EventID: ev.ID}}
}

// loopbackDispatcher sends to loopback targets with a 10 s request
// timeout; bodyTimeout bounds reading the answer (0: the default).
func loopbackDispatcher(bodyTimeout time.Duration) *Dispatcher {
	return New(Config{Timeout: 10 * time.Second, ResponseBodyTimeout: bodyTimeout,
		Client: NewHTTPClient(ClientOptions{Timeout: 10 * time.Second, AllowedCIDRs: loopbackV4})})
}

// keepsOut fails t if the recorded error repeats any part of the URL.
func keepsOut(t *testing.T, recorded string, parts ...string) {
	t.Helper()
	for _, s := range parts {
		if strings.Contains(recorded, s) {
			t.Errorf("the recorded error %q repeats the URL's %q", recorded, s)
		}
	}
}

// waitHungUp waits until the target's handler returned, which happens
// only once hookd closed the connection.
func waitHungUp(t *testing.T, h *hostileTarget) {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("hookd still holds the connection; the target wrote %d bytes", h.written.Load())
	}
}

// TestAttemptEndlessBody: a target streaming an endless answer as fast
// as it can. hookd reads 64 KiB, records them, and hangs up, instead of
// reading (or draining) the rest.
func TestAttemptEndlessBody(t *testing.T) {
	h := newHostileTarget(t, []byte(strings.Repeat("x", 32<<10)), 0)
	d := loopbackDispatcher(0)
	o := d.attempt(context.Background(), hostileTask(h.URL))
	if o.Attempt.StatusCode != 200 || o.Attempt.Error != "" || o.Status != webhook.DeliverySucceeded {
		t.Errorf("attempt: status %d, error %q, outcome %s; want a 200 recorded as a success", o.Attempt.StatusCode, o.Attempt.Error, o.Status)
	}
	if n := len(o.Attempt.ResponseBody); n != MaxResponseBody {
		t.Errorf("recorded %d bytes of the answer, want %d", n, MaxResponseBody)
	}
	waitHungUp(t, h)
	t.Logf("the target wrote %d bytes before hookd hung up", h.written.Load())
}

// TestAttemptTricklingBody: a target that answers 200 and then sends a
// byte now and then for ever took the delivery: it is a success, what
// came within the body's deadline is recorded, and hookd hangs up.
func TestAttemptTricklingBody(t *testing.T) {
	h := newHostileTarget(t, []byte("x"), 20*time.Millisecond)
	d := loopbackDispatcher(300 * time.Millisecond)
	o := d.attempt(context.Background(), hostileTask(h.URL))
	if o.Status != webhook.DeliverySucceeded || o.Attempt.Error != "" || o.Attempt.StatusCode != 200 {
		t.Errorf("attempt: outcome %s, status %d, error %q; want a 200 recorded as a success", o.Status, o.Attempt.StatusCode, o.Attempt.Error)
	}
	if n := len(o.Attempt.ResponseBody); n == 0 || n > MaxResponseBody || strings.Trim(o.Attempt.ResponseBody, "x") != "" {
		t.Errorf("recorded %d bytes (%.40q), want the bytes that came before the deadline", n, o.Attempt.ResponseBody)
	}
	waitHungUp(t, h)
}

// TestAttemptStalledBody: 2xx, then silence until the request timeout.
// The status line is the answer: a success, not a retry (which would be
// a duplicate for a receiver that did its work). A non-2xx that stalls
// is a failure that says why.
func TestAttemptStalledBody(t *testing.T) {
	for _, tt := range []struct {
		code int
		want webhook.DeliveryStatus
	}{
		{http.StatusOK, webhook.DeliverySucceeded},
		{http.StatusAccepted, webhook.DeliverySucceeded},
		{299, webhook.DeliverySucceeded},
		{http.StatusMultipleChoices, webhook.DeliveryPending},
		{http.StatusInternalServerError, webhook.DeliveryPending},
	} {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.code)
				_, _ = w.Write([]byte("partial"))
				_ = http.NewResponseController(w).Flush()
				<-r.Context().Done() // stall until hookd hangs up
			}))
			t.Cleanup(srv.Close)
			d := loopbackDispatcher(200 * time.Millisecond)
			o := d.attempt(context.Background(), hostileTask(srv.URL))
			if o.Status != tt.want || o.Attempt.StatusCode != tt.code || o.Attempt.ResponseBody != "partial" {
				t.Fatalf("attempt: outcome %s, status %d, body %q, error %q; want %s", o.Status, o.Attempt.StatusCode, o.Attempt.ResponseBody, o.Attempt.Error, tt.want)
			}
			if tt.want == webhook.DeliverySucceeded && o.Attempt.Error != "" {
				t.Errorf("a success recorded the error %q", o.Attempt.Error)
			}
			if tt.want != webhook.DeliverySucceeded && !strings.Contains(o.Attempt.Error, "did not end within") {
				t.Errorf("error %q does not say the body stalled", o.Attempt.Error)
			}
		})
	}
}

// A target that hangs up without answering is recorded as that, in words
// (Go's own are "EOF") that do not repeat its URL: the path and query of a Slack or incident
// tool's webhook URL are its credential, and the delivery log is read by
// everyone in the organization.
func TestAttemptHungUpKeepsTheURLOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	const secret = "B0000/XXXXsecretXXXX"
	target := strings.Replace(srv.URL, "http://", "http://user:pa55word@", 1) + "/services/" + secret + "?token=t0ken"
	d := loopbackDispatcher(0)
	o := d.attempt(context.Background(), hostileTask(target))
	if want := "the target closed the connection"; o.Status != webhook.DeliveryPending || o.Attempt.Error != want {
		t.Fatalf("attempt: outcome %s, error %q; want pending, with %q", o.Status, o.Attempt.Error, want)
	}
	keepsOut(t, o.Attempt.Error, secret, "t0ken", "pa55word", "/services/")
}

// A target that resets the connection is recorded with its own address,
// not hookd's end of the connection: hookd's address on its network is
// not the webhook owner's to read.
func TestAttemptResetNamesNoLocalAddress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close with a reset
		}
		_ = conn.Close()
	}))
	t.Cleanup(srv.Close)
	d := loopbackDispatcher(0)
	o := d.attempt(context.Background(), hostileTask(srv.URL))
	// A reset seen while reading the answer, or (rarely) while still
	// writing the request.
	if o.Status != webhook.DeliveryPending || !strings.Contains(o.Attempt.Error, "reset") && !strings.Contains(o.Attempt.Error, "broken pipe") {
		t.Fatalf("attempt: outcome %s, error %q; want pending, saying the connection was reset", o.Status, o.Attempt.Error)
	}
	if strings.Contains(o.Attempt.Error, "->") || !strings.Contains(o.Attempt.Error, srv.Listener.Addr().String()) {
		t.Errorf("recorded as %q: want the target's address (%s) alone", o.Attempt.Error, srv.Listener.Addr())
	}
}

// The same for a target whose certificate hookd does not trust: Go's
// error begins with the method and the whole URL.
func TestAttemptUntrustedCertificateKeepsTheURLOut(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	const secret = "B0000/XXXXsecretXXXX"
	d := loopbackDispatcher(0)
	o := d.attempt(context.Background(), hostileTask(srv.URL+"/services/"+secret+"?token=t0ken"))
	if o.Status != webhook.DeliveryPending || !strings.Contains(o.Attempt.Error, "certificate") {
		t.Fatalf("attempt: outcome %s, error %q; want pending, naming the certificate", o.Status, o.Attempt.Error)
	}
	keepsOut(t, o.Attempt.Error, secret, "t0ken", "/services/")
}

// The delivery log's target_url_used masks the token of a Discord
// webhook URL wherever the path puts it: a SLACK webhook pointed at
// Discord's Slack-compatible endpoint ends in /slack, after the token.
func TestAttemptRecordsDiscordURLWithoutItsToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	d := loopbackDispatcher(0)
	// discord.com is dialled on the loopback target: no DNS, no Discord.
	tr := d.cfg.Client.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, srv.Listener.Addr().String())
	}
	const token = "XXXXdiscordTokenXXXX"
	for _, target := range []string{
		"http://discord.com/api/webhooks/123/" + token + "/slack",
		"http://discord.com/api/v10/webhooks/123/" + token,
	} {
		task := hostileTask(target)
		task.Webhook.Kind = webhook.KindSlack
		o := d.attempt(context.Background(), task)
		if o.Status != webhook.DeliverySucceeded {
			t.Fatalf("%s: outcome %s, error %q; want the loopback target's 200", target, o.Status, o.Attempt.Error)
		}
		if strings.Contains(o.Attempt.TargetURL, token) {
			t.Errorf("recorded target URL %q holds the webhook's token", o.Attempt.TargetURL)
		}
	}
}

// A target that answers garbage in place of a status line or a header is
// recorded as that in a sentence of bounded length: Go's error quotes what
// came, up to the 64 KiB of headers it reads, and four times that once
// control bytes are escaped, which would otherwise be kept with every
// attempt in the delivery log and its span, beside an answer body that
// is cut at MaxResponseBody.
func TestAttemptGarbageAnswerIsRecordedShort(t *testing.T) {
	for _, tt := range []struct{ name, answer string }{
		{"status line", strings.Repeat("\x01", 60<<10) + "\r\n\r\n"},
		{"status code", "HTTP/1.1 " + strings.Repeat("x", 60<<10) + "\r\n\r\n"},
		{"header field", "HTTP/1.1 200 OK\r\n" + strings.Repeat("y", 60<<10) + "\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				_, _ = conn.Read(make([]byte, 4096))
				_, _ = conn.Write([]byte(tt.answer))
			}()
			o := loopbackDispatcher(0).attempt(context.Background(), hostileTask("http://"+ln.Addr().String()+"/"))
			if o.Status != webhook.DeliveryPending || !strings.Contains(o.Attempt.Error, "malformed") {
				t.Fatalf("attempt: outcome %s, error %.100q; want pending, saying the answer was malformed", o.Status, o.Attempt.Error)
			}
			if n := len(o.Attempt.Error); n > 2<<10 {
				t.Errorf("recorded an error of %d bytes (%.100q…)", n, o.Attempt.Error)
			}
		})
	}
}

// An error is recorded whole up to maxErrorLength bytes, and cut there
// beyond it, never inside a character.
func TestClipError(t *testing.T) {
	exact := strings.Repeat("x", maxErrorLength)
	if got := clipError(exact); got != exact {
		t.Errorf("an error of exactly %d bytes recorded as %d bytes: %q…", maxErrorLength, len(got), got[max(0, len(got)-8):])
	}
	long := strings.Repeat("x", maxErrorLength-1) + "é and more"
	if got, want := clipError(long), strings.Repeat("x", maxErrorLength-1)+"…"; got != want {
		t.Errorf("cut inside a character: %q…, want %q", got[maxErrorLength-8:], want[maxErrorLength-8:])
	}
}
