package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/auth"
	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
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

// unreachableWebhooks is a store whose webhook list fails as on a
// PostgreSQL that cannot be reached.
type unreachableWebhooks struct{ webhook.Store }

func (unreachableWebhooks) WebhookList(context.Context, uuid.UUID) ([]*webhook.Webhook, error) {
	return nil, fmt.Errorf("postgres: %w: connection refused", webhook.ErrUnreachable)
}

// TestManagementUnavailableCounted: every 503 a management request is
// answered, the bound's (a token lookup the database does not answer)
// or the store's (unreachable), is counted as api_unavailable, and
// nothing else is.
func TestManagementUnavailableCounted(t *testing.T) {
	var silent atomic.Bool
	h := newAPIHarness(t, func(d *Deps) {
		d.APITimeout = 200 * time.Millisecond
		authn, err := auth.New(context.Background(), auth.Config{}, silentTokens{d.Store, &silent}, time.Now, d.Log)
		if err != nil {
			t.Fatal(err)
		}
		d.Auth = authn
		d.Store = unreachableWebhooks{d.Store}
	})
	org := uuid.New()
	token, _ := h.token(org)
	base := "/organization/" + org.String() + "/webhook"
	wantMetrics(t, h, `hookd_requests_throttled_total{reason="api_unavailable"} 0`+"\n")
	silent.Store(true)
	if st := h.do(token, "GET", base+"/"+uuid.NewString(), "", nil); st != 503 {
		t.Fatalf("a token lookup the database does not answer: %d, want 503", st)
	}
	silent.Store(false)
	if st := h.do(token, "GET", base, "", nil); st != 503 {
		t.Fatalf("a list the database cannot be reached for: %d, want 503", st)
	}
	if st := h.do(token, "GET", base+"/"+uuid.NewString(), "", nil); st != 404 {
		t.Fatalf("no such webhook: %d, want 404", st)
	}
	wantMetrics(t, h, `hookd_requests_throttled_total{reason="api_unavailable"} 2`+"\n",
		`hookd_requests_throttled_total{reason="intake_unavailable"} 0`+"\n")
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

// stallablePostgres is a migrated PostgreSQL store on a fresh database
// (pgtest.Migrated), with the database's URL for pgtest.LockTables.
func stallablePostgres(t *testing.T) (string, *postgres.DB) {
	t.Helper()
	url := pgtest.URL(t)
	return url, pgtest.MigratedAt(t, url, postgres.Open, storetest.Keys(t))
}

// failedDelivery sends a test event to the webhook at hook and fails its
// delivery, as a dispatcher would after its last attempt.
func failedDelivery(t *testing.T, h *apiHarness, token, hook string) uuid.UUID {
	t.Helper()
	if st := h.do(token, "POST", hook+"/test", "", nil); st != 202 {
		t.Fatalf("test event: %d", st)
	}
	ctx, now := context.Background(), time.Now()
	tasks, err := h.db.DeliveryClaim(ctx, webhook.ClaimParams{Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("claim: %v, %d tasks", err, len(tasks))
	}
	tk := tasks[0]
	if _, err := h.db.DeliveryComplete(ctx, []webhook.Outcome{{Status: webhook.DeliveryFailed, Lease: tk.Delivery.Lease, Attempt: webhook.Attempt{
		ID: uuid.New(), OrganizationID: tk.Webhook.OrganizationID, WebhookID: tk.Webhook.ID, DeliveryID: tk.Delivery.ID, EventID: tk.Event.ID,
		CreatedAt: now.UTC(), Number: 1, Kind: tk.Webhook.Kind, TargetURL: tk.Webhook.TargetURL, StatusCode: 500,
	}}}); err != nil {
		t.Fatal(err)
	}
	return tk.Delivery.ID
}

// TestManagementBoundedWait has PostgreSQL stop answering every
// operation of the management API: each is answered 503 with Retry-After
// once APITimeout has passed, saying the database did not answer, rather
// than held for as long as the database keeps silent, and nothing it
// would have changed is changed (its transaction never commits). None is
// logged as a server error.
func TestManagementBoundedWait(t *testing.T) {
	const (
		timeout = 300 * time.Millisecond
		// Past it the stall ends by itself, so that a request without a
		// bound is answered late rather than never.
		stall = timeout + 3*time.Second
	)
	url, db := stallablePostgres(t)
	var logs syncBuffer
	h := newAPIHarnessOn(t, db, func(d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
		d.APITimeout = timeout
	})
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	var hook, src struct{ ID string }
	if st := h.do(tok, "POST", base+"/webhook", `{`+editBase+`,"description":"before"}`, &hook); st != 201 {
		t.Fatalf("create webhook: %d", st)
	}
	if st := h.do(tok, "POST", base+"/source", `{"kind":"ARGOCD","name":"before","secret":"`+sourceSecret+`"}`, &src); st != 201 {
		t.Fatalf("create source: %d", st)
	}
	hookPath, srcPath := base+"/webhook/"+hook.ID, base+"/source/"+src.ID
	delivery := failedDelivery(t, h, tok, hookPath)
	since := `{"since":"` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `"}`
	ctx := context.Background()
	auditBefore, err := db.AuditList(ctx, webhook.AuditListParams{OrganizationID: org, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}

	for _, s := range []struct{ method, path, body string }{
		{"GET", base + "/webhook", ""},
		{"POST", base + "/webhook", `{` + editBase + `,"description":"created in the stall"}`},
		{"GET", hookPath, ""},
		{"PUT", hookPath, `{` + editBase + `,"description":"edited in the stall"}`},
		{"DELETE", hookPath, ""},
		{"GET", hookPath + "/event", ""},
		{"GET", hookPath + "/delivery", ""},
		{"POST", hookPath + "/delivery/" + delivery.String() + "/retry", ""},
		{"POST", hookPath + "/test", ""},
		{"POST", hookPath + "/recover", since},
		{"GET", hookPath + "/stats", ""},
		{"GET", base + "/audit", ""},
		{"GET", base + "/source", ""},
		{"POST", base + "/source", `{"kind":"ARGOCD","name":"created in the stall","secret":"` + sourceSecret + `"}`},
		{"GET", srcPath, ""},
		{"PUT", srcPath, `{"kind":"ARGOCD","name":"edited in the stall"}`},
		{"DELETE", srcPath, ""},
	} {
		// The token's table stays open: the request gets past
		// authentication and waits on what it manages.
		release := pgtest.LockTables(t, url, "webhooks", "sources", "events", "deliveries", "attempts", "audit_entries")
		end := time.AfterFunc(stall, release)
		start := time.Now()
		var answer struct{ Detail string }
		st, header := h.doHeader(tok, s.method, s.path, s.body, &answer)
		took := time.Since(start)
		end.Stop()
		release()
		if st != 503 || header.Get("Retry-After") != "5" {
			t.Errorf("%s %s: %d after %s (Retry-After %q), want 503 with Retry-After 5 once %s have passed",
				s.method, s.path, st, took.Round(time.Millisecond), header.Get("Retry-After"), timeout)
			continue
		}
		// A 503 before the stall lifts is the bound's; no upper limit on
		// when it came: that is the machine's load, not the code.
		if took < timeout {
			t.Errorf("%s %s: answered after %s, before the bound of %s", s.method, s.path, took.Round(time.Millisecond), timeout)
		}
		if !strings.Contains(answer.Detail, "did not answer within 300ms") {
			t.Errorf("%s %s: the answer does not say why: %q", s.method, s.path, answer.Detail)
		}
		// A change sent again may be made twice (a create, a retry): the
		// caller is told to check first, a reader is not.
		if warned := strings.Contains(answer.Detail, "check before repeating it"); warned != (s.method != "GET") {
			t.Errorf("%s %s: the answer warns of a change made all the same: %t, want %t: %q", s.method, s.path, warned, !warned, answer.Detail)
		}
	}

	hooks, err := db.WebhookList(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 1 || hooks[0].Description != "before" {
		t.Errorf("webhooks after the stall: %d; want the one created before, unchanged", len(hooks))
	}
	srcs, err := db.SourceList(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0].Name != "before" {
		t.Errorf("sources after the stall: %d; want the one created before, unchanged", len(srcs))
	}
	if audit, err := db.AuditList(ctx, webhook.AuditListParams{OrganizationID: org, Limit: 100}); err != nil || len(audit) != len(auditBefore) {
		t.Errorf("audit entries: %d before the stall, %d after (%v)", len(auditBefore), len(audit), err)
	}
	if d, err := db.DeliveryGet(ctx, org, uuid.MustParse(hook.ID), delivery); err != nil || d.Status != webhook.DeliveryFailed {
		t.Errorf("the delivery after the stall: %v; want it failed still, not retried", err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a request refused for the database's silence is logged as a server error:\n%s", logs.String())
	}
	wantMetrics(t, h, `hookd_requests_throttled_total{reason="api_unavailable"} 17`+"\n")
}

// TestLongReadsOutlastTheBound has the two requests that read a
// webhook's whole history of a window wait on PostgreSQL for longer than
// APITimeout, as they do on a healthy database with a long history: a
// recovery of hundreds of thousands of deliveries (201,000: 10–14 s),
// whose one transaction, cut off, would roll back every time it was
// tried; a webhook's stats with millions of attempts a week (3 million:
// 2 s; several times as many pass 10 s). Each is answered, not cut off.
func TestLongReadsOutlastTheBound(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, c := range []struct {
		name   string
		locked string // the table its long read waits on, once the webhook is read
		call   func(h *apiHarness, tok, path string) string
	}{
		{"recover", "deliveries", func(h *apiHarness, tok, path string) string {
			var recovered struct{ Failed int }
			st := h.do(tok, "POST", path+"/recover", `{"since":"`+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)+`"}`, &recovered)
			if st != 202 || recovered.Failed != 1 {
				return fmt.Sprintf("%d, %d failed deliveries re-queued; want 202 and 1", st, recovered.Failed)
			}
			return ""
		}},
		{"stats", "attempts", func(h *apiHarness, tok, path string) string {
			var stats statsResponse
			st := h.do(tok, "GET", path+"/stats", "", &stats)
			if st != 200 || stats.Last7Days.Attempts != 1 || stats.Last7Days.Failures != 1 {
				return fmt.Sprintf("%d, %d attempts (%d failed) in 7 days; want 200 and the 1 failed attempt", st, stats.Last7Days.Attempts, stats.Last7Days.Failures)
			}
			return ""
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			url, db := stallablePostgres(t)
			h := newAPIHarnessOn(t, db, func(d *Deps) { d.APITimeout = timeout })
			org := uuid.New()
			tok, _ := h.token(org)
			var hook struct{ ID string }
			if st := h.do(tok, "POST", "/organization/"+org.String()+"/webhook", `{`+editBase+`}`, &hook); st != 201 {
				t.Fatalf("create webhook: %d", st)
			}
			path := "/organization/" + org.String() + "/webhook/" + hook.ID
			failedDelivery(t, h, tok, path)

			time.AfterFunc(3*timeout, pgtest.LockTables(t, url, c.locked))
			start := time.Now()
			wrong := c.call(h, tok, path)
			took := time.Since(start)
			if wrong != "" {
				t.Errorf("%s that took %s: %s", c.name, took.Round(time.Millisecond), wrong)
			}
			if took < 3*timeout {
				t.Errorf("%s took %s: it did not wait for the lock, and the test proves nothing", c.name, took.Round(time.Millisecond))
			}
		})
	}
}
