package api

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// waking counts the dispatcher's wake-ups.
type waking struct {
	forgetting
	n atomic.Int32
}

func (w *waking) Wake() { w.n.Add(1) }

// leasingIntake commits each event alone, leasing its deliveries to the
// caller, as intake does while its dispatcher has room, when lease is set.
type leasingIntake struct {
	store webhook.Store
	mu    sync.Mutex
	lease bool
}

func (i *leasingIntake) Accept(ctx context.Context, ev *webhook.Event) (webhook.EventReceipt, error) {
	i.mu.Lock()
	var l webhook.Lease
	if i.lease {
		now := time.Now()
		l = webhook.Lease{Now: now, Until: now.Add(time.Minute), Limit: 10}
	}
	i.mu.Unlock()
	rs, err := i.store.EventsCreate(ctx, []*webhook.Event{ev}, l)
	if err != nil {
		return webhook.EventReceipt{}, err
	}
	return rs[0], nil
}

func (i *leasingIntake) leasing(on bool) {
	i.mu.Lock()
	i.lease = on
	i.mu.Unlock()
}

// The dispatcher is woken when deliveries wait in the queue for it (an
// event's, a test event's, a tool's, a recovery's), and not for what it was handed
// at intake nor when nothing waits: a wake-up costs a claim, a write
// transaction on SQLite's one writer; one missed leaves the deliveries
// until the next poll.
func TestWakesOnlyForDeliveriesWaiting(t *testing.T) {
	d := &waking{}
	var in *leasingIntake
	h := newAPIHarness(t, func(deps *Deps) {
		in = &leasingIntake{store: deps.Store}
		deps.Dispatcher, deps.Intake = d, in
	})
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	var w webhookBody
	if st := h.do(tok, "POST", base+"/webhook", `{`+editBase+`}`, &w); st != 201 {
		t.Fatalf("create: %d", st)
	}
	hook := base + "/webhook/" + w.ID
	wakes := d.n.Load()
	woke := func(what string, want bool) {
		t.Helper()
		n := d.n.Load()
		if got := n > wakes; got != want {
			t.Errorf("%s: the dispatcher woken: %v, want %v", what, got, want)
		}
		wakes = n
	}
	step := func(what string, want bool, method, path, body string, header http.Header) {
		t.Helper()
		if st, _ := h.doWith(tok, method, path, body, header, nil); st != 202 {
			t.Fatalf("%s: %d, want 202", what, st)
		}
		woke(what, want)
	}
	key := http.Header{"Idempotency-Key": {"k1"}}
	step("an event whose delivery waits", true, "POST", base+"/deployment-event", eventBody, key)
	step("the same event again (a replay)", false, "POST", base+"/deployment-event", eventBody, key)
	step("an event that no webhook takes", false, "POST", base+"/deployment-event",
		`{"event_type":"DEPLOYMENT_FAILURE","project":{"name":"p"},"environment":{"name":"e","mode":"STAGING"}}`, nil)
	step("a test event that waits", true, "POST", hook+"/test", "", nil)
	var src sourceJSON
	if st := h.do(tok, "POST", base+"/source", `{"kind":"ARGOCD","name":"s","secret":"`+sourceSecret+`"}`, &src); st != 201 {
		t.Fatalf("create source: %d", st)
	}
	ingest := func(what string, want bool, revision string) {
		t.Helper()
		body := `{"event":"sync-running","app":"billing","namespace":"prod","revision":"` + revision + `","startedAt":"2026-12-07T11:00:00Z"}`
		var r ingestReceipt
		if st := h.ingest(base+"/source/"+src.ID+"/ingest", body, map[string]string{"X-Hookd-Token": sourceSecret}, &r); st != 202 || r.Deliveries != 1 {
			t.Fatalf("%s: %d, %d deliveries %q; want 202 and 1", what, st, r.Deliveries, r.Detail)
		}
		woke(what, want)
	}
	ingest("a tool's delivery that waits", true, "a1")
	ingest("the tool's delivery again (a replay)", false, "a1")
	in.leasing(true)
	step("an event leased at intake", false, "POST", base+"/deployment-event", eventBody, nil)
	step("a test event leased at intake", false, "POST", hook+"/test", "", nil)
	ingest("a tool's delivery leased at intake", false, "a2")

	since := `{"since":"` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `"}`
	step("a recovery with nothing failed", false, "POST", hook+"/recover", since, nil)
	ctx, now := context.Background(), time.Now()
	tasks, err := h.db.DeliveryClaim(ctx, webhook.ClaimParams{Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) == 0 {
		t.Fatalf("claim: %v %d", err, len(tasks))
	}
	tk := tasks[0]
	if _, err := h.db.DeliveryComplete(ctx, []webhook.Outcome{{Status: webhook.DeliveryFailed, Lease: tk.Delivery.Lease, Attempt: webhook.Attempt{
		ID: uuid.New(), OrganizationID: org, WebhookID: tk.Webhook.ID, DeliveryID: tk.Delivery.ID, EventID: tk.Event.ID,
		CreatedAt: now.UTC(), Number: 1, Kind: tk.Webhook.Kind, TargetURL: tk.Webhook.TargetURL, StatusCode: 500,
	}}}); err != nil {
		t.Fatal(err)
	}
	step("a recovery of a failed delivery", true, "POST", hook+"/recover", since, nil)
}
