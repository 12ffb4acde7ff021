package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/auth"
	"github.com/hookd/hookd/internal/webhook"
)

// silentTokens is a token store whose lookups, while silent, wait for as
// long as their caller lets them, as on a connection gone silent.
type silentTokens struct {
	auth.TokenStore
	silent *atomic.Bool
}

func (s silentTokens) TokenGetByHash(ctx context.Context, hash []byte) (*webhook.Token, error) {
	if s.silent.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.TokenStore.TokenGetByHash(ctx, hash)
}

// TestIntakeBoundedWait has the database stop answering an intake
// request's commit, or its token's lookup: the request is answered 503
// with Retry-After once IntakeTimeout has passed, rather than held for
// as long as TCP would wait, and not logged as a server error; the log
// says once that intake refuses events, with the cause, and once that
// it accepts them again.
func TestIntakeBoundedWait(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, silentLookup := range []bool{false, true} {
		name := map[bool]string{false: "commit", true: "token lookup"}[silentLookup]
		t.Run(name, func(t *testing.T) {
			var logs syncBuffer
			var silent atomic.Bool
			silent.Store(true)
			h := newAPIHarness(t, func(d *Deps) {
				d.Log = slog.New(slog.NewTextHandler(&logs, nil))
				d.IntakeTimeout = timeout
				var tokens auth.TokenStore = d.Store
				if silentLookup {
					tokens = silentTokens{d.Store, &silent}
				}
				authn, err := auth.New(context.Background(), auth.Config{}, tokens, time.Now, d.Log)
				if err != nil {
					t.Fatal(err)
				}
				d.Auth = authn
				d.Intake = intakeFunc(func(ctx context.Context, ev *webhook.Event) (webhook.EventReceipt, error) {
					if silent.Load() && !silentLookup {
						<-ctx.Done() // as the committer does: the commit's answer, or the request's end
						return webhook.EventReceipt{}, ctx.Err()
					}
					return webhook.EventReceipt{ID: ev.ID, CreatedAt: ev.CreatedAt}, nil
				})
			})
			org := uuid.New()
			token, _ := h.token(org)
			path := "/organization/" + org.String() + "/deployment-event"
			const body = `{"event_type":"DEPLOYMENT_STARTED","project":{"name":"p"},"environment":{"name":"e","mode":"STAGING"}}`
			for range 3 {
				start := time.Now()
				st, header := h.doHeader(token, "POST", path, body, nil)
				took := time.Since(start)
				if st != 503 || header.Get("Retry-After") != "5" {
					t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After 5", st, header.Get("Retry-After"))
				}
				if took < timeout || took > timeout+5*time.Second {
					t.Errorf("answered after %s, want just past %s", took, timeout)
				}
			}
			if n := strings.Count(logs.String(), "intake refuses events"); n != 1 || strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("want the outage logged once, as a warning; got %d lines:\n%s", n, logs.String())
			}
			if !strings.Contains(logs.String(), "no answer from the database within 200ms") {
				t.Errorf("the log does not give the cause:\n%s", logs.String())
			}
			wantMetrics(t, h, `hookd_requests_throttled_total{reason="intake_unavailable"} 3`+"\n")
			silent.Store(false)
			if st := h.do(token, "POST", path, body, nil); st != 202 {
				t.Fatalf("status %d once the database answers, want 202", st)
			}
			if !strings.Contains(logs.String(), "intake accepts events again") || !strings.Contains(logs.String(), "refused=3") {
				t.Errorf("the end of the outage is not logged with the number refused:\n%s", logs.String())
			}
		})
	}
}

// slowBody is a request body whose client sends its first byte at once
// and the rest after pause.
type slowBody struct {
	rest  string
	pause time.Duration
	sent  bool
}

func (b *slowBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "{"), nil
	}
	if b.rest == "" {
		return 0, io.EOF
	}
	time.Sleep(b.pause) // the client's slowness is what is tested
	n := copy(p, b.rest)
	b.rest = b.rest[n:]
	return n, nil
}

// TestIntakeSlowBodyIsNotTheDatabase sends an event whose body takes
// most of intake's bound to arrive: the 503 it gets says so, and the log
// does not report the database out of reach; it is counted as refused.
func TestIntakeSlowBodyIsNotTheDatabase(t *testing.T) {
	const timeout = 200 * time.Millisecond
	var logs syncBuffer
	h := newAPIHarness(t, func(d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
		d.IntakeTimeout = timeout
		d.Intake = intakeFunc(func(ctx context.Context, ev *webhook.Event) (webhook.EventReceipt, error) {
			<-ctx.Done() // what is left of the bound runs out while committing
			return webhook.EventReceipt{}, ctx.Err()
		})
	})
	org := uuid.New()
	token, _ := h.token(org)
	const event = `{"event_type":"DEPLOYMENT_STARTED","project":{"name":"p"},"environment":{"name":"e","mode":"STAGING"}}`
	req, err := http.NewRequest("POST", h.srv.URL+"/organization/"+org.String()+"/deployment-event",
		&slowBody{rest: event[1:], pause: timeout * 3 / 4})
	if err != nil {
		t.Fatal(err)
	}
	var answer struct{ Detail string }
	if st, _ := h.send(token, req, &answer); st != 503 {
		t.Fatalf("status %d, want 503", st)
	}
	if !strings.Contains(answer.Detail, "body took") {
		t.Errorf("the answer does not name the slow body: %q", answer.Detail)
	}
	if strings.Contains(logs.String(), "intake refuses events") {
		t.Errorf("a slow body is logged as the database's outage:\n%s", logs.String())
	}
	wantMetrics(t, h, `hookd_requests_throttled_total{reason="intake_unavailable"} 1`+"\n")
}
