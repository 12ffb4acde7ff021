package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
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
	d := New(Config{Timeout: 10 * time.Second, Client: NewHTTPClient(ClientOptions{Timeout: 10 * time.Second, AllowedCIDRs: loopbackV4})})
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

// TestAttemptTricklingBody: a target that sends a byte now and then for
// ever is cut off by the request timeout, and what came is recorded.
func TestAttemptTricklingBody(t *testing.T) {
	h := newHostileTarget(t, []byte("x"), 20*time.Millisecond)
	const timeout = 500 * time.Millisecond
	d := New(Config{Timeout: timeout, Client: NewHTTPClient(ClientOptions{Timeout: timeout, AllowedCIDRs: loopbackV4})})
	o := d.attempt(context.Background(), hostileTask(h.URL))
	if o.Status != webhook.DeliveryPending || !strings.Contains(o.Attempt.Error, "timed out") {
		t.Errorf("attempt: outcome %s, error %q; want a timeout, to be retried", o.Status, o.Attempt.Error)
	}
	if n := len(o.Attempt.ResponseBody); n == 0 || n > MaxResponseBody || strings.Trim(o.Attempt.ResponseBody, "x") != "" {
		t.Errorf("recorded %d bytes (%.40q), want the bytes that came before the timeout", n, o.Attempt.ResponseBody)
	}
	if o.Attempt.Duration < timeout {
		t.Errorf("attempt took %v, less than the timeout: it was not the timeout that ended it", o.Attempt.Duration)
	}
	waitHungUp(t, h)
}
