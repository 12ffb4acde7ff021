package delivery

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookd/hookd/internal/webhook"
)

// pending commits n events for w's organization, leasing none: their
// deliveries wait in the store for a claim.
func pending(t *testing.T, s webhook.Store, w *webhook.Webhook, n int) {
	t.Helper()
	events := make([]*webhook.Event, n)
	for i := range events {
		events[i] = &webhook.Event{OrganizationID: w.OrganizationID, CreatedAt: time.Now().UTC(), Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	}
	if _, err := s.EventsCreate(context.Background(), events, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
}

// A deleted webhook's deliveries waiting behind its request in flight,
// whether leased at intake or claimed, are never sent once the
// dispatcher forgets it, nor given back (their rows are gone); the
// request in flight finishes. Another webhook's queue is untouched, and
// the room freed lets the claim loop, short of room, claim again at once.
func TestForgetDropsADeletedWebhooksQueue(t *testing.T) {
	var webhookID uuid.UUID
	logs := testDroppedQueue(t, func(d *Dispatcher, a *webhook.Webhook, _ []webhook.DeliveryRef) {
		webhookID = a.ID
		d.Forget(a.ID)
	})
	// The operator learns that deliveries will never be sent, and whose.
	if want := "dropped the queued deliveries of a deleted webhook\" webhook=" + webhookID.String() + " count=4"; !strings.Contains(logs, want) {
		t.Errorf("logs %q, want a line with %q", logs, want)
	}
}

// Deleting a webhook of which nothing is queued here (the usual case, and
// every other node's) drops nothing, and says nothing.
func TestForgetNothingQueuedSaysNothing(t *testing.T) {
	var logs lockedBuffer
	d, _ := running(t, Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	d.Forget(uuid.UUID{0xd})
	if got := logs.String(); got != "" {
		t.Fatalf("logged %q for a webhook with nothing queued, want nothing", got)
	}
}

// The same when no one tells the dispatcher of the delete, and a renewal
// finds the queued deliveries' leases lost: they are dropped, and the
// room they leave wakes the claim loop as Forget's does.
func TestRenewalDropsLostQueuedTasks(t *testing.T) {
	testDroppedQueue(t, func(d *Dispatcher, _ *webhook.Webhook, queued []webhook.DeliveryRef) {
		d.renewed(queued, queued, time.Now().Add(time.Minute))
	})
}

// testDroppedQueue deletes a webhook whose deliveries wait in its queue
// while the claim loop is short of room, calls drop with them, and checks
// that none is sent and the room freed is claimed at once.
func testDroppedQueue(t *testing.T, drop func(d *Dispatcher, a *webhook.Webhook, queued []webhook.DeliveryRef)) (logs string) {
	block := make(chan struct{})
	var mu sync.Mutex
	requests := map[string]int{}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path != "/c" {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(target.Close)
	sent := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return requests[path]
	}
	s := newStore(t)
	a, b, c := createWebhook(t, s, target.URL+"/a"), createWebhook(t, s, target.URL+"/b"), createWebhook(t, s, target.URL+"/c")
	var log lockedBuffer
	d := New(Config{Store: s, Client: target.Client(), Timeout: 30 * time.Second, MaxInflightPerWebhook: 1, PollInterval: time.Hour,
		Log: slog.New(slog.NewTextHandler(&log, nil))})
	startDispatcher(t, d)
	var unblock sync.Once
	t.Cleanup(func() { unblock.Do(func() { close(block) }) }) // before the stop, which waits for requests
	waitWithin := func(within time.Duration, what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitUntil := func(what string, cond func() bool) { t.Helper(); waitWithin(10*time.Second, what, cond) }
	locked := func(f func() bool) func() bool {
		return func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return f()
		}
	}

	// A: one request in flight, two queued from intake. B: one in flight,
	// one queued.
	intake(t, s, d, a, 3)
	intake(t, s, d, b, 2)
	waitUntil("the first requests", func() bool { return sent("/a") == 1 && sent("/b") == 1 })
	// Room for two more only: the claim takes A's two pending deliveries
	// and is left short of room.
	const pad = maxHeld - 2 - 5
	d.mu.Lock()
	d.held += pad
	d.mu.Unlock()
	pending(t, s, a, 2)
	d.Wake()
	waitUntil("A's claimed deliveries queued", locked(func() bool { return len(d.queued[a.ID]) == 4 && d.short }))
	d.mu.Lock()
	var dropped []uuid.UUID
	var refs []webhook.DeliveryRef
	for _, tk := range d.queued[a.ID] {
		dropped = append(dropped, tk.Delivery.ID)
		refs = append(refs, tk.Ref())
	}
	d.mu.Unlock()
	// Due now, but no room, and nothing wakes the claim loop but room.
	pending(t, s, c, 3)

	if err := s.WebhookDelete(context.Background(), webhook.WebhookChange{OrganizationID: a.OrganizationID, ID: a.ID}); err != nil {
		t.Fatal(err)
	}
	drop(d, a, refs)
	// At once: the claim loop, short of room, waits for the room freed
	// (the test takes about 0.1 s; with the queue left in place, over 10).
	waitWithin(3*time.Second, "C's deliveries to be claimed and sent in the room A's queue left", func() bool { return sent("/c") == 3 })
	d.mu.Lock()
	for _, id := range dropped {
		if d.leased[id] != nil {
			t.Errorf("delivery %v of the deleted webhook still held", id)
		}
	}
	if len(d.queued[a.ID]) != 0 || len(d.queued[b.ID]) != 1 {
		t.Errorf("after A's queue was dropped: %d of A's deliveries queued, %d of B's; want 0 and 1", len(d.queued[a.ID]), len(d.queued[b.ID]))
	}
	d.mu.Unlock()

	unblock.Do(func() { close(block) })
	waitUntil("every request to end and be recorded", locked(func() bool { return d.held == pad && len(d.leased) == 0 }))
	if n := sent("/a"); n != 1 {
		t.Errorf("the deleted webhook got %d requests, want the one in flight at the delete", n)
	}
	if n := sent("/b"); n != 2 {
		t.Errorf("the other webhook got %d requests, want 2", n)
	}
	// A's request in flight was recorded (and found stale); nothing was
	// given back.
	if released, completed := s.counts(); released != 0 || completed != 1+2+3 {
		t.Errorf("%d deliveries given back and %d outcomes recorded; want 0 and %d", released, completed, 1+2+3)
	}
	d.mu.Lock()
	d.held -= pad
	d.mu.Unlock()
	return log.String()
}

// A task of a forgotten webhook handed over after Forget (claimed or
// leased at intake just before the delete committed) is not sent, nor
// given back; another webhook's is sent. A webhook is remembered for a
// lease: the next Forget after that lets it go.
func TestForgetRefusesLateTasks(t *testing.T) {
	d, f := running(t, Config{Timeout: 10 * time.Second})
	now := clock
	d.cfg.Now = func() time.Time { return now }
	gone, kept := uuid.UUID{0xa}, uuid.UUID{0xb}
	d.Forget(gone)
	late, other := task(gone, now.Add(d.lease)), task(kept, now.Add(d.lease))
	d.mu.Lock()
	d.held += 2
	d.start(late)
	d.start(other)
	d.mu.Unlock()
	d.sends.Wait()
	d.releases.Wait()
	if len(d.outcomes) != 1 || len(f.released) != 0 {
		t.Fatalf("%d attempts made and %d given back; want the other webhook's attempt alone", len(d.outcomes), len(f.released))
	}
	if o := <-d.outcomes; o.Attempt.DeliveryID != other.Delivery.ID {
		t.Fatalf("attempted %v, want the other webhook's %v", o.Attempt.DeliveryID, other.Delivery.ID)
	}
	if d.held != 0 || d.leased[late.Delivery.ID] != nil {
		t.Fatalf("holding %d, the forgotten task leased: %v", d.held, d.leased[late.Delivery.ID] != nil)
	}

	now = now.Add(d.lease + time.Second)
	d.Forget(kept)
	if _, ok := d.forgotten[gone]; ok || len(d.forgotten) != 1 {
		t.Fatalf("forgotten %v a lease after; want the last webhook alone", d.forgotten)
	}
}

// A task read before its webhook's edit and handed over after Edited
// (claimed or leased at intake just before the edit committed) is not
// sent but given back, to be claimed again as the webhook now is; one
// read after the edit is sent. An edit is remembered for a lease.
func TestEditedGivesBackTasksReadBefore(t *testing.T) {
	d, f := running(t, Config{Timeout: 10 * time.Second})
	now := clock
	d.cfg.Now = func() time.Time { return now }
	hook := uuid.UUID{0xe}
	editedAt := now.Add(-time.Second)
	d.Edited(hook, editedAt)
	stale, fresh := task(hook, now.Add(d.lease)), task(hook, now.Add(d.lease))
	stale.Webhook.UpdatedAt, fresh.Webhook.UpdatedAt = editedAt.Add(-time.Minute), editedAt
	handOver(d, stale, fresh)
	if len(d.outcomes) != 1 || len(f.released) != 1 || f.released[0].ID != stale.Delivery.ID {
		t.Fatalf("%d attempts made and %v given back; want the fresh task's attempt and the stale one given back", len(d.outcomes), f.released)
	}
	if o := <-d.outcomes; o.Attempt.DeliveryID != fresh.Delivery.ID {
		t.Fatalf("attempted %v, want the task read after the edit, %v", o.Attempt.DeliveryID, fresh.Delivery.ID)
	}
	if d.held != 0 || d.leased[stale.Delivery.ID] != nil {
		t.Fatalf("holding %d, the stale task leased: %v", d.held, d.leased[stale.Delivery.ID] != nil)
	}

	now = now.Add(d.lease + time.Second)
	d.Edited(uuid.UUID{0xf}, now)
	if _, ok := d.edited[hook]; ok || len(d.edited) != 1 {
		t.Fatalf("edited %v a lease after; want the last webhook alone", d.edited)
	}
}

// Edits heard out of order (this node's own, told by the API at once,
// then another node's earlier one, which its listener read late) keep
// the newest: a task that read the webhook as the earlier edit left it
// was read before the newer one, and is given back, not sent.
func TestEditedKeepsTheNewestEdit(t *testing.T) {
	d, f := running(t, Config{Timeout: 10 * time.Second})
	now := clock
	d.cfg.Now = func() time.Time { return now }
	hook := uuid.UUID{0xe}
	older, newer := now.Add(-2*time.Second), now.Add(-time.Second)
	d.Edited(hook, newer)
	d.Edited(hook, older)
	stale := task(hook, now.Add(d.lease))
	stale.Webhook.UpdatedAt = older // as the earlier edit left it
	handOver(d, stale)
	if len(d.outcomes) != 0 || len(f.released) != 1 || f.released[0].ID != stale.Delivery.ID {
		t.Fatalf("%d attempts made and %v given back; want the task read before the newer edit given back, unsent", len(d.outcomes), f.released)
	}
}

// A webhook hookd disables (its target answered 410) gets none of the
// deliveries queued behind its request in flight: the disable gives them
// back, as a person's does (Edited), and claimed again they fail unsent.
// Without it each went out in turn, to be answered 410 again.
func TestGoneGivesBackQueuedTasks(t *testing.T) {
	gone := newHeldGone(t)
	s := newStore(t)
	w := createWebhook(t, s, gone.URL)
	reg := prometheus.NewRegistry()
	d := New(Config{Store: s, Client: gone.Client(), Timeout: 20 * time.Second, MaxInflightPerWebhook: 1,
		PollInterval: time.Hour, Registry: reg})
	startDispatcher(t, d)
	const n = 20
	intake(t, s, d, w, n) // one request in flight, the others queued behind it
	gone.let(t, 1)
	// The dispatcher counts the disable once it has given back the queue.
	for deadline := time.Now().Add(10 * time.Second); disabledTotal(t, reg) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the 410 did not disable the webhook")
		}
	}
	gone.free()
	// Every delivery fails: the first two by their 410s, the rest unsent.
	// The second's 410 may come after the disable was recorded: about a
	// webhook edited since (hookd's disable is an edit), it is stored as
	// pending (webhook.Outcome.Against), and fails unsent at its next
	// claim: n or n+1 outcomes in all.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		failed, err := s.DeliveryList(context.Background(), webhook.DeliveryListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID,
			Status: webhook.DeliveryFailed, Limit: n + 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(failed) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d deliveries failed", len(failed), n)
		}
	}
	// The first request, and the next one, started as soon as the first
	// was answered, before its outcome was recorded.
	if got := gone.requests.Load(); got > 2 {
		t.Errorf("the target got %d requests of %d deliveries; want at most the 2 sent before the disable was recorded", got, n)
	}
	t.Logf("%d requests for %d deliveries", gone.requests.Load(), n)
}

// A webhook edited while its request runs (its owner moved it to a new
// URL because the old one is going away) is not disabled by the old
// target's 410, even on a node that has not heard of the edit (it is
// not told here): that answer was about the webhook as it was, and the
// store puts it against the webhook as it is (webhook.Outcome.Against).
// The delivery is due again at once, and goes to the new URL.
func TestGoneWhileEditedDisablesNothing(t *testing.T) {
	gone := newHeldGone(t)
	var moved atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { moved.Add(1) }))
	t.Cleanup(target.Close)
	s := newStore(t)
	w := createWebhook(t, s, gone.URL)
	reg := prometheus.NewRegistry()
	d := New(Config{Store: s, Client: gone.Client(), Timeout: 10 * time.Second, PollInterval: time.Hour, Registry: reg})
	stop := startDispatcher(t, d)
	intake(t, s, d, w, 1)
	for deadline := time.Now().Add(10 * time.Second); gone.requests.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no request reached the target")
		}
	}
	move := func(h *webhook.Webhook) (*webhook.AuditEntry, error) {
		h.TargetURL, h.UpdatedAt = target.URL, time.Now().UTC()
		return nil, nil
	}
	if _, err := s.WebhookUpdate(context.Background(), webhook.WebhookChange{OrganizationID: w.OrganizationID, ID: w.ID, Apply: move}); err != nil {
		t.Fatal(err)
	}
	gone.let(t, 1)
	s.waitCompleted(t, 1)
	got, err := s.WebhookGet(context.Background(), w.OrganizationID, w.ID)
	if err != nil || !got.Enabled || !got.FailingSince.IsZero() {
		t.Fatalf("after the old URL's 410 to a request sent before the webhook moved: %+v (%v); want it enabled, healthy", got, err)
	}
	// Sent again at once: the dispatcher polls only every hour here.
	s.waitCompleted(t, 2)
	stop()
	if n := moved.Load(); n != 1 {
		t.Errorf("the new URL got %d requests; want the delivery, sent again", n)
	}
	// The 410 is counted as the retry it was stored as, not as a
	// delivery failed for good.
	for label, want := range map[string]float64{"failed": 0, "retry": 1, "succeeded": 1} {
		var m dto.Metric
		if err := d.m.outcomes.WithLabelValues(label).Write(&m); err != nil {
			t.Fatal(err)
		}
		if n := m.GetCounter().GetValue(); n != want {
			t.Errorf("hookd_delivery_attempts_total{outcome=%q} %v, want %v", label, n, want)
		}
	}
}

// handOver starts tasks as a claim does, and waits until each is sent
// or given back.
func handOver(d *Dispatcher, tasks ...*webhook.Task) {
	d.mu.Lock()
	d.held += len(tasks)
	for _, t := range tasks {
		d.start(t)
	}
	d.mu.Unlock()
	d.sends.Wait()
	d.releases.Wait()
}
