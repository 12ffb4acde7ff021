package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hookd/hookd/internal/webhook"
)

func testDeliveryClaim(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := newWebhook(t, org)
	w.FailingSince = base.Add(-time.Hour)
	w.ProjectNamesFilter = []string{"api-*"}
	// The dispatcher signs with the previous secret too while rotating.
	w.PreviousSecret, w.SecretRotatedAt = "old-s3cret", base.Add(-time.Minute)
	createWebhook(t, s, w)

	// Created out of due order: the claim must follow DueAt, not creation.
	evs := []*webhook.Event{
		newEvent(t, org, base.Add(2*time.Second)),
		newEvent(t, org, base),
		newEvent(t, org, base.Add(time.Second)),
		newEvent(t, org, base.Add(time.Hour)), // not yet due
	}
	evs[1].IdempotencyKey = "idem"
	evs[1].Type = webhook.EventDeploymentSuccessful
	var ids []uuid.UUID
	for _, ev := range evs {
		ids = append(ids, createEvents(t, s, ev)[0].DeliveryIDs[0])
	}

	if got := claim(t, s, webhook.ClaimParams{Now: base.Add(-time.Second), LeaseUntil: base.Add(time.Minute), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d deliveries before any was due", len(got))
	}

	now := base.Add(10 * time.Second)
	lease := now.Add(time.Minute)
	tasks := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: lease, Limit: 2})
	want := []uuid.UUID{ids[1], ids[2]}
	sortIDs(want)
	wantEqual(t, "claimed", taskIDs(tasks), want)

	for _, tk := range tasks {
		i := slices.Index(ids, tk.Delivery.ID)
		ev := *evs[i]
		wantEqual(t, "Task.Event", tk.Event, ev)
		if !bytes.Equal(tk.Event.Payload, evs[i].Payload) {
			t.Fatalf("payload %q, want %q", tk.Event.Payload, evs[i].Payload)
		}
		wantEqual(t, "Task.Webhook", tk.Webhook, *w)
		wantEqual(t, "Task.Delivery", tk.Delivery, webhook.Delivery{
			ID: tk.Delivery.ID, OrganizationID: org, WebhookID: w.ID, EventID: ev.ID,
			CreatedAt: ev.CreatedAt, UpdatedAt: now, Status: webhook.DeliveryRunning,
			DueAt: lease, EventType: ev.Type, Lease: 1,
		})
		d := getDelivery(t, s, org, w.ID, tk.Delivery.ID)
		wantEqual(t, "stored claimed delivery", *d, tk.Delivery)
	}

	// Limit 0 claims nothing.
	if got := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: lease, Limit: 0}); len(got) != 0 {
		t.Fatalf("Limit 0 claimed %d", len(got))
	}

	// The tasks come oldest due first, which is not creation order: the
	// delivery created last is due first, and the two whose leases ended
	// are due at the end of their lease, after ids[0].
	early := createEvents(t, s, newEvent(t, org, base.Add(-time.Hour)))[0].DeliveryIDs[0]
	later := lease.Add(time.Second)
	tasks = claim(t, s, webhook.ClaimParams{Now: later, LeaseUntil: later.Add(time.Minute), Limit: 10})
	var got []uuid.UUID
	for _, tk := range tasks {
		got = append(got, tk.Delivery.ID)
	}
	wantEqual(t, "claim order", got, []uuid.UUID{early, ids[0], ids[1], ids[2]})
}

// Deliveries of one event to several webhooks share their event: each
// task must carry its own delivery's event, whole, and be handed out in
// due order however the claim splits an event's deliveries.
func testDeliveryClaimSharedEvents(t *testing.T, s webhook.Store) {
	org := newID(t)
	w1 := createWebhook(t, s, newWebhook(t, org))
	w2 := createWebhook(t, s, newWebhook(t, org))
	hooks := map[uuid.UUID]*webhook.Webhook{w1.ID: w1, w2.ID: w2}
	// Told apart by every column a mix-up would show in.
	evs := []*webhook.Event{
		newEvent(t, org, base.Add(2*time.Second)),
		newEvent(t, org, base),
		newEvent(t, org, base.Add(time.Second)),
	}
	evs[1].Type, evs[1].ProjectName, evs[1].Payload = webhook.EventDeploymentFailure, "api-one", json.RawMessage(`{"n":1}`)
	evs[2].Type, evs[2].EnvironmentMode, evs[2].Payload = webhook.EventDeploymentSuccessful, webhook.ModeStaging, json.RawMessage(`{"n":2}`)
	evs[2].IdempotencyKey = "two"
	byID := map[uuid.UUID]*webhook.Event{}
	want := map[uuid.UUID]bool{} // delivery ids
	for _, r := range createEvents(t, s, evs...) {
		if len(r.DeliveryIDs) != 2 {
			t.Fatalf("%d deliveries, want one per webhook", len(r.DeliveryIDs))
		}
		for _, id := range r.DeliveryIDs {
			want[id] = true
		}
	}
	for _, ev := range evs {
		byID[ev.ID] = ev
	}

	now := base.Add(time.Minute)
	p := webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 3}
	tasks := claim(t, s, p) // both of evs[1], one of evs[2]
	p.Limit = 10
	tasks = append(tasks, claim(t, s, p)...)
	if len(tasks) != len(want) {
		t.Fatalf("claimed %d deliveries, want %d", len(tasks), len(want))
	}
	var order []uuid.UUID
	for _, tk := range tasks {
		if !want[tk.Delivery.ID] {
			t.Fatalf("delivery %v claimed twice or unknown", tk.Delivery.ID)
		}
		delete(want, tk.Delivery.ID)
		ev := byID[tk.Delivery.EventID]
		if ev == nil {
			t.Fatalf("task of delivery %v names event %v, not one of this test's", tk.Delivery.ID, tk.Delivery.EventID)
		}
		wantEqual(t, "Task.Event", tk.Event, *ev)
		if tk.Delivery.OrganizationID != org || tk.Delivery.EventType != ev.Type {
			t.Fatalf("delivery of organization %v, type %q; want %v, %q", tk.Delivery.OrganizationID, tk.Delivery.EventType, org, ev.Type)
		}
		if w := hooks[tk.Delivery.WebhookID]; w == nil || tk.Webhook.ID != w.ID {
			t.Fatalf("task for webhook %v carries webhook %v", tk.Delivery.WebhookID, tk.Webhook.ID)
		}
		d := getDelivery(t, s, org, tk.Delivery.WebhookID, tk.Delivery.ID)
		wantEqual(t, "stored claimed delivery", *d, tk.Delivery)
		order = append(order, ev.ID)
	}
	wantEqual(t, "events in claim order", order, []uuid.UUID{evs[1].ID, evs[1].ID, evs[2].ID, evs[2].ID, evs[0].ID, evs[0].ID})
}

func testDeliveryClaimLease(t *testing.T, s webhook.Store) {
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org))
	a := deliver(t, s, org, base)
	b := deliver(t, s, org, base.Add(time.Second))

	now := base.Add(time.Minute)
	lease := now.Add(time.Minute)
	first := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: lease, Limit: 1})
	wantEqual(t, "first claim", taskIDs(first), []uuid.UUID{a})
	second := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: lease, Limit: 10})
	wantEqual(t, "second claim", taskIDs(second), []uuid.UUID{b})
	if got := claim(t, s, webhook.ClaimParams{Now: lease.Add(-time.Microsecond), LeaseUntil: lease.Add(time.Hour), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d leased deliveries before the lease ended", len(got))
	}
	// A lease that has ended is how a crashed worker's work is taken over.
	again := claim(t, s, webhook.ClaimParams{Now: lease, LeaseUntil: lease.Add(time.Minute), Limit: 10})
	want := []uuid.UUID{a, b}
	sortIDs(want)
	wantEqual(t, "claim after lease", taskIDs(again), want)
	for _, tk := range again {
		wantTime(t, "new lease", tk.Delivery.DueAt, lease.Add(time.Minute))
	}
}

func testDeliveryClaimExclude(t *testing.T, s webhook.Store) {
	org := newID(t)
	w1 := createWebhook(t, s, newWebhook(t, org))
	w2 := createWebhook(t, s, newWebhook(t, org))
	w3 := createWebhook(t, s, newWebhook(t, org))
	createEvents(t, s, newEvent(t, org, base))

	p := webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 10, ExcludeWebhooks: []uuid.UUID{w1.ID, w3.ID}}
	tasks := claim(t, s, p)
	if len(tasks) != 1 || tasks[0].Webhook.ID != w2.ID || tasks[0].Delivery.WebhookID != w2.ID {
		t.Fatalf("claimed %d tasks, want only webhook %v's", len(tasks), w2.ID)
	}
	p.ExcludeWebhooks = []uuid.UUID{w1.ID}
	tasks = claim(t, s, p)
	if len(tasks) != 1 || tasks[0].Webhook.ID != w3.ID {
		t.Fatalf("claimed %d tasks, want only webhook %v's", len(tasks), w3.ID)
	}
}

func testDeliveryClaimConcurrent(t *testing.T, s webhook.Store) {
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org))
	const n = 60
	evs := make([]*webhook.Event, n)
	for i := range evs {
		evs[i] = newEvent(t, org, base.Add(time.Duration(i)*time.Millisecond))
	}
	createEvents(t, s, evs...)

	var (
		mu      sync.Mutex
		seen    = map[uuid.UUID]int{}
		claimed int
		wg      sync.WaitGroup
		errs    = make(chan error, 8)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				tasks, err := s.DeliveryClaim(context.Background(), webhook.ClaimParams{
					Now: base.Add(time.Second), LeaseUntil: base.Add(time.Hour), Limit: 3,
				})
				if err != nil {
					errs <- err
					return
				}
				if len(tasks) == 0 {
					return
				}
				mu.Lock()
				for _, tk := range tasks {
					seen[tk.Delivery.ID]++
					claimed++
				}
				// A store that hands rows out twice would keep this
				// loop going for ever; stop and let the checks report it.
				over := claimed > n
				mu.Unlock()
				if over {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("DeliveryClaim: %v", err)
	}
	if len(seen) != n {
		t.Fatalf("claimed %d distinct deliveries, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("delivery %v claimed %d times", id, c)
		}
	}
}

// claimOne creates a webhook (changed by edit) and one event for it, and
// claims the one delivery.
func claimOne(t *testing.T, s webhook.Store, edit func(*webhook.Webhook)) (*webhook.Webhook, *webhook.Task) {
	t.Helper()
	w, tasks := claimN(t, s, 1, edit)
	return w, tasks[0]
}

// claimN creates a webhook of a new organization (changed by edit) and n
// events for it, due at base, and claims their deliveries for a minute.
func claimN(t *testing.T, s webhook.Store, n int, edit func(*webhook.Webhook)) (*webhook.Webhook, []*webhook.Task) {
	t.Helper()
	org := newID(t)
	w := newWebhook(t, org)
	if edit != nil {
		edit(w)
	}
	createWebhook(t, s, w)
	for range n {
		deliver(t, s, org, base)
	}
	tasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: n + 10})
	if len(tasks) != n {
		// Other subtests' rows never share a store, so exactly n are due.
		t.Fatalf("claimed %d tasks, want %d", len(tasks), n)
	}
	return w, tasks
}

func testDeliveryCompleteSuccess(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, func(w *webhook.Webhook) { w.FailingSince = base.Add(-time.Hour) })
	a := newAttempt(t, &tk.Delivery, 1, 204, base.Add(time.Second))
	complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliverySucceeded})

	d := getDelivery(t, s, w.OrganizationID, w.ID, tk.Delivery.ID)
	if d.Status != webhook.DeliverySucceeded || d.Attempts != 1 || d.LastStatusCode != 204 || d.LastError != "" {
		t.Fatalf("delivery after success: %+v", d)
	}
	if got := getWebhook(t, s, w.OrganizationID, w.ID); !got.FailingSince.IsZero() || !got.Enabled {
		t.Fatalf("webhook after success: %+v", got)
	}
	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 {
		t.Fatalf("got %d attempts, want 1", len(as))
	}
	want := a
	ev := tk.Event
	want.Event = &ev
	wantEqual(t, "attempt", *as[0], want)
	// A succeeded delivery is never claimed again.
	if got := claim(t, s, webhook.ClaimParams{Now: base.Add(time.Hour), LeaseUntil: base.Add(2 * time.Hour), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d finished deliveries", len(got))
	}
}

// A target's answer is whatever bytes it sent: a binary body, a NUL, a
// body cut at the size kept in the middle of a character. Every backend
// keeps it as the same text, invalid UTF-8 and NUL each read back as
// U+FFFD (PostgreSQL's text can hold neither), so the delivery log shows
// one answer the same way whichever database holds it.
func testDeliveryCompleteOddText(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, nil)
	a := newAttempt(t, &tk.Delivery, 1, 500, base.Add(time.Second))
	a.ResponseBody = "bad\x00bytes\xff\xfe cut \xe2\x82"
	a.Error = "HTTP 500: \x00\xff"
	complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliveryFailed})

	const body, lastError = "bad\uFFFDbytes\uFFFD cut \uFFFD", "HTTP 500: \uFFFD\uFFFD"
	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID, Limit: 10})
	if err != nil || len(as) != 1 {
		t.Fatalf("attempts = %d, %v", len(as), err)
	}
	if as[0].ResponseBody != body || as[0].Error != lastError {
		t.Fatalf("attempt's response body %q and error %q, want %q and %q", as[0].ResponseBody, as[0].Error, body, lastError)
	}
	if d := getDelivery(t, s, w.OrganizationID, w.ID, tk.Delivery.ID); d.LastError != lastError {
		t.Fatalf("delivery's last error %q, want %q", d.LastError, lastError)
	}
}

// An outcome that would leave its delivery in no state the queue knows
// is refused on every backend, and nothing of it is stored.
func testDeliveryCompleteInvalid(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, nil)
	a := newAttempt(t, &tk.Delivery, 1, 500, base.Add(time.Second))
	with := func(edit func(*webhook.Attempt)) webhook.Attempt {
		b := a
		edit(&b)
		return b
	}
	for _, o := range []webhook.Outcome{
		{Attempt: a, Lease: tk.Delivery.Lease, Status: webhook.DeliveryPending}, // no NextAttemptAt
		{Attempt: a, Lease: tk.Delivery.Lease, Status: webhook.DeliveryRunning},
		{Attempt: a, Lease: tk.Delivery.Lease, Status: "lost"},
		// A status line has three digits; numbers are stored as 32-bit
		// integers, never truncated.
		{Attempt: with(func(a *webhook.Attempt) { a.StatusCode = 1000 }), Lease: tk.Delivery.Lease, Status: webhook.DeliveryFailed},
		{Attempt: with(func(a *webhook.Attempt) { a.StatusCode = -1 }), Lease: tk.Delivery.Lease, Status: webhook.DeliveryFailed},
		{Attempt: with(func(a *webhook.Attempt) { a.Number = 0 }), Lease: tk.Delivery.Lease, Status: webhook.DeliveryFailed},
		{Attempt: with(func(a *webhook.Attempt) { a.Number = int(tooBig) }), Lease: tk.Delivery.Lease, Status: webhook.DeliveryFailed},
		// With no start, the webhook's health could not tell when it
		// began failing.
		{Attempt: with(func(a *webhook.Attempt) { a.CreatedAt = time.Time{} }), Lease: tk.Delivery.Lease, Status: webhook.DeliveryFailed},
	} {
		if _, err := s.DeliveryComplete(ctx, []webhook.Outcome{o}); webhook.ErrorCode(err) != webhook.EInvalid {
			t.Fatalf("outcome %q (next attempt %v, attempt %d, status code %d): %v, want invalid",
				o.Status, o.NextAttemptAt, o.Attempt.Number, o.Attempt.StatusCode, err)
		}
	}
	if d := getDelivery(t, s, w.OrganizationID, w.ID, tk.Delivery.ID); d.Status != webhook.DeliveryRunning || d.Attempts != 0 {
		t.Fatalf("delivery after refused outcomes: %+v", d)
	}
	// The bounds themselves are kept whole.
	a = with(func(a *webhook.Attempt) { a.StatusCode, a.Number = 999, math.MaxInt32 })
	complete(t, s, webhook.Outcome{Attempt: a, Lease: tk.Delivery.Lease, Status: webhook.DeliveryFailed})
	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID, Limit: 10})
	if err != nil || len(as) != 1 || as[0].StatusCode != 999 || as[0].Number != math.MaxInt32 {
		t.Fatalf("attempts after an outcome at the bounds: %v, %+v", err, as)
	}
}

// tooBig is one more than a 32-bit integer holds.
var tooBig int64 = math.MaxInt32 + 1

func testDeliveryCompleteFailure(t *testing.T, s webhook.Store) {
	w, tk := claimOne(t, s, nil)
	org := w.OrganizationID
	next := base.Add(5 * time.Minute)
	a1 := newAttempt(t, &tk.Delivery, 1, 0, base.Add(time.Second))
	complete(t, s, webhook.Outcome{Attempt: a1, Status: webhook.DeliveryPending, NextAttemptAt: next})

	d := getDelivery(t, s, org, w.ID, tk.Delivery.ID)
	if d.Status != webhook.DeliveryPending || d.Attempts != 1 || d.LastStatusCode != 0 || d.LastError != "connection refused" {
		t.Fatalf("delivery after failure: %+v", d)
	}
	wantTime(t, "DueAt", d.DueAt, next)
	wantTime(t, "FailingSince", getWebhook(t, s, org, w.ID).FailingSince, a1.CreatedAt)

	if got := claim(t, s, webhook.ClaimParams{Now: next.Add(-time.Microsecond), LeaseUntil: next.Add(time.Hour), Limit: 10}); len(got) != 0 {
		t.Fatal("claimed a delivery before its next attempt")
	}
	tasks := claim(t, s, webhook.ClaimParams{Now: next, LeaseUntil: next.Add(time.Minute), Limit: 10})
	if len(tasks) != 1 {
		t.Fatalf("claimed %d, want the retried delivery", len(tasks))
	}
	a2 := newAttempt(t, &tasks[0].Delivery, 2, 503, next.Add(time.Second))
	complete(t, s, webhook.Outcome{Attempt: a2, Status: webhook.DeliveryFailed})
	d = getDelivery(t, s, org, w.ID, tk.Delivery.ID)
	if d.Status != webhook.DeliveryFailed || d.Attempts != 2 || d.LastStatusCode != 503 || d.LastError != "" {
		t.Fatalf("delivery after final failure: %+v", d)
	}
	got := getWebhook(t, s, org, w.ID)
	// The first failure after the last success still dates the trouble.
	wantTime(t, "FailingSince", got.FailingSince, a1.CreatedAt)
	if !got.Enabled || got.DisabledReason != "" {
		t.Fatalf("webhook disabled without a reason: %+v", got)
	}
}

func testDeliveryCompleteDisable(t *testing.T, s webhook.Store) {
	w, tk := claimOne(t, s, nil)
	a := newAttempt(t, &tk.Delivery, 1, 410, base.Add(time.Second))
	complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliveryFailed, DisableReason: "the receiver answered 410 Gone",
		WebhookUpdatedAt: tk.Webhook.UpdatedAt})
	got := getWebhook(t, s, w.OrganizationID, w.ID)
	if got.Enabled || got.DisabledReason != "the receiver answered 410 Gone" {
		t.Fatalf("webhook after disable: %+v", got)
	}
	want := *w
	want.Enabled = false
	want.DisabledReason = got.DisabledReason
	want.FailingSince = a.CreatedAt
	want.UpdatedAt = got.UpdatedAt // when a backend records the change is its own
	wantEqual(t, "webhook after disable", got, &want)
}

// DeliveryComplete reports the webhooks it disabled, each once, which is
// what hookd_webhooks_disabled_total counts: of two batches recorded at
// once (two nodes), each with an outcome disabling the webhook, one
// reports it; an outcome for a webhook disabled already, by a person or
// by an earlier outcome, reports nothing and keeps the reason; and a
// webhook enabled again and then disabled again is reported again. Each
// disable reported has its audit entry, and no other does.
func testDeliveryCompleteReportsDisables(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	for range 6 {
		deliver(t, s, org, base)
	}
	tasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 10})
	if len(tasks) != 6 {
		t.Fatalf("claimed %d tasks, want 6", len(tasks))
	}
	const gone = "the receiver answered 410 Gone"
	// outcome is a 410 for task i about the webhook as it is now (as if
	// claimed after the last edit: see testDeliveryCompleteOutdated for
	// one about a webhook edited since).
	outcome := func(i int) webhook.Outcome {
		t.Helper()
		a := newAttempt(t, &tasks[i].Delivery, 1, 410, base.Add(time.Duration(i+1)*time.Second))
		return webhook.Outcome{Attempt: a, Status: webhook.DeliveryFailed, Lease: tasks[i].Delivery.Lease, DisableReason: gone,
			WebhookUpdatedAt: getWebhook(t, s, org, w.ID).UpdatedAt}
	}
	record := func(outcomes ...webhook.Outcome) []webhook.WebhookRef {
		t.Helper()
		res, err := s.DeliveryComplete(ctx, outcomes)
		if err != nil || len(res.Stale) != 0 {
			t.Fatalf("DeliveryComplete: %v, stale %v", err, res.Stale)
		}
		return disabledRefs(res.Disabled)
	}
	ref := webhook.WebhookRef{OrganizationID: org, ID: w.ID}
	set := func(enabled bool, reason string) {
		t.Helper()
		apply := func(h *webhook.Webhook) (*webhook.AuditEntry, error) {
			h.Enabled, h.DisabledReason = enabled, reason
			return nil, nil
		}
		if _, err := s.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID, Apply: apply}); err != nil {
			t.Fatal(err)
		}
	}
	wantState := func(what string, reason string) {
		t.Helper()
		if got := getWebhook(t, s, org, w.ID); got.Enabled || got.DisabledReason != reason {
			t.Fatalf("%s: enabled %v, reason %q; want disabled, %q", what, got.Enabled, got.DisabledReason, reason)
		}
	}

	set(false, "paused by its owner")
	if got := record(outcome(0)); len(got) != 0 {
		t.Fatalf("a 410 for a webhook a person disabled reported %v disabled; want none", got)
	}
	wantState("after a 410 for a webhook a person disabled", "paused by its owner")

	set(true, "")
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		all    []webhook.WebhookRef
		failed error
	)
	for _, o := range []webhook.Outcome{outcome(1), outcome(2)} {
		wg.Go(func() {
			res, err := s.DeliveryComplete(ctx, []webhook.Outcome{o})
			mu.Lock()
			defer mu.Unlock()
			all = append(all, disabledRefs(res.Disabled)...)
			if err != nil || len(res.Stale) != 0 {
				failed = fmt.Errorf("DeliveryComplete: %v, stale %v", err, res.Stale)
			}
		})
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	wantEqual(t, "disabled by two batches at once", all, []webhook.WebhookRef{ref})
	wantState("after two batches disabling it", gone)

	if got := record(outcome(3)); len(got) != 0 {
		t.Fatalf("a 410 for a webhook an earlier outcome disabled reported %v disabled; want none", got)
	}
	set(true, "")
	// Two outcomes of one batch disable it once.
	wantEqual(t, "disabled again once enabled", record(outcome(4), outcome(5)), []webhook.WebhookRef{ref})
	wantState("after it was enabled and disabled again", gone)

	if n := hookdDisables(t, s, org); n != 2 {
		t.Fatalf("%d audit entries of hookd disabling the webhook, want one per disable reported (2)", n)
	}
}

// disabledRefs names the webhooks of a CompleteResult's Disabled.
func disabledRefs(disabled []webhook.DisabledWebhook) []webhook.WebhookRef {
	var refs []webhook.WebhookRef
	for _, d := range disabled {
		refs = append(refs, d.WebhookRef)
	}
	return refs
}

// hookd's disable is an edit: it moves the webhook's UpdatedAt as
// webhook.EditedAt does with the end of the attempt that disabled it, and
// reports that version, which the dispatcher compares its tasks' with
// (delivery.Dispatcher.Edited). An attempt that ended before the
// webhook's last edit (its node's clock behind the editor's) still moves
// it forward, by a microsecond.
func testDeliveryCompleteDisableIsAnEdit(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tasks := claimN(t, s, 2, nil)
	org := w.OrganizationID
	// disable records a 410 for tk about the webhook at version read, and
	// returns the webhook's UpdatedAt.
	disable := func(tk *webhook.Task, read time.Time, a webhook.Attempt) time.Time {
		t.Helper()
		res, err := s.DeliveryComplete(ctx, []webhook.Outcome{{Attempt: a, Status: webhook.DeliveryFailed, Lease: tk.Delivery.Lease,
			DisableReason: "the receiver answered 410 Gone", WebhookUpdatedAt: read}})
		if err != nil || len(res.Stale) != 0 || len(res.Disabled) != 1 {
			t.Fatalf("DeliveryComplete: %v, stale %v, disabled %v; want one disable", err, res.Stale, res.Disabled)
		}
		want := webhook.WebhookRef{OrganizationID: org, ID: w.ID}
		if res.Disabled[0].WebhookRef != want {
			t.Fatalf("disabled %v, want %v", res.Disabled[0].WebhookRef, want)
		}
		stored := getWebhook(t, s, org, w.ID)
		wantTime(t, "the UpdatedAt reported", res.Disabled[0].UpdatedAt, stored.UpdatedAt)
		return stored.UpdatedAt
	}

	a := newAttempt(t, &tasks[0].Delivery, 1, 410, base.Add(time.Minute))
	wantTime(t, "UpdatedAt after the disable", disable(tasks[0], tasks[0].Webhook.UpdatedAt, a), a.CreatedAt.Add(a.Duration))

	edited := base.Add(time.Hour)
	enable := func(h *webhook.Webhook) (*webhook.AuditEntry, error) {
		h.Enabled, h.DisabledReason, h.UpdatedAt = true, "", edited
		return nil, nil
	}
	if _, err := s.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID, Apply: enable}); err != nil {
		t.Fatal(err)
	}
	// An attempt about the webhook as edited (the version a claim after
	// the edit reads) that ended before the edit's UpdatedAt, on a clock
	// behind the one the edit was dated by.
	wantTime(t, "UpdatedAt after a disable by an attempt that ended before the last edit",
		disable(tasks[1], edited, newAttempt(t, &tasks[1].Delivery, 1, 410, base.Add(2*time.Minute))), edited.Add(time.Microsecond))
}

// An outcome that would disable its webhook, from an attempt that read
// the webhook before an edit (its owner moved it to a new URL because
// the old one is going away, and the old one answered 410 Gone),
// disables nothing: the webhook is as the edit left it, healthy; the
// attempt is recorded, and its delivery is due again at once, to be
// claimed as the webhook now is. The same answer about the webhook as it
// now is disables it.
func testDeliveryCompleteOutdated(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tasks := claimN(t, s, 2, nil)
	org := w.OrganizationID
	edited := base.Add(5 * time.Second)
	if _, err := s.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
		Apply: func(h *webhook.Webhook) (*webhook.AuditEntry, error) {
			h.TargetURL, h.UpdatedAt = "https://example.com/moved", edited
			return nil, nil
		}}); err != nil {
		t.Fatal(err)
	}
	gone := func(tk *webhook.Task, read time.Time, at time.Time) webhook.CompleteResult {
		t.Helper()
		a := newAttempt(t, &tk.Delivery, tk.Delivery.Attempts+1, 410, at)
		res, err := s.DeliveryComplete(ctx, []webhook.Outcome{{Attempt: a, Status: webhook.DeliveryFailed, Lease: tk.Delivery.Lease,
			DisableReason: "the receiver answered 410 Gone", WebhookUpdatedAt: read}})
		if err != nil || len(res.Stale) != 0 {
			t.Fatalf("DeliveryComplete: %v, stale %v", err, res.Stale)
		}
		return res
	}

	at := base.Add(10 * time.Second)
	res := gone(tasks[0], tasks[0].Webhook.UpdatedAt, at)
	if len(res.Disabled) != 0 {
		t.Fatalf("a 410 about the webhook before its edit disabled %v", res.Disabled)
	}
	wantEqual(t, "reported outdated", res.Outdated, []webhook.DeliveryRef{tasks[0].Ref()})
	if got := getWebhook(t, s, org, w.ID); !got.Enabled || got.DisabledReason != "" || !got.FailingSince.IsZero() ||
		got.TargetURL != "https://example.com/moved" {
		t.Fatalf("the webhook after a 410 about it before its edit: enabled %v, reason %q, failing since %v, URL %q; want it as edited, healthy",
			got.Enabled, got.DisabledReason, got.FailingSince, got.TargetURL)
	}
	d := getDelivery(t, s, org, w.ID, tasks[0].Delivery.ID)
	if d.Status != webhook.DeliveryPending || d.Attempts != 1 || d.LastStatusCode != 410 {
		t.Fatalf("the delivery: %s, %d attempts, last status %d; want pending, its 410 recorded", d.Status, d.Attempts, d.LastStatusCode)
	}
	// Due at once: claimed as soon as the attempt ended (the other
	// delivery is still leased), as the webhook now is.
	again := claim(t, s, webhook.ClaimParams{Now: at.Add(2 * time.Second), LeaseUntil: at.Add(time.Minute), Limit: 10})
	if len(again) != 1 || again[0].Delivery.ID != d.ID {
		t.Fatalf("claimed %v after the outdated 410; want its delivery %s, due at once", taskIDs(again), d.ID)
	}
	if h := again[0].Webhook; h.TargetURL != "https://example.com/moved" || !h.UpdatedAt.Equal(edited) {
		t.Fatalf("claimed with the webhook at %q, version %v; want it as edited, %v", h.TargetURL, h.UpdatedAt, edited)
	}

	res = gone(again[0], again[0].Webhook.UpdatedAt, at.Add(3*time.Second))
	if len(res.Disabled) != 1 || len(res.Outdated) != 0 {
		t.Fatalf("a 410 about the webhook as it is disabled %v, outdated %v; want it disabled", res.Disabled, res.Outdated)
	}
	if got := getWebhook(t, s, org, w.ID); got.Enabled {
		t.Fatal("a 410 about the webhook as it is left it enabled")
	}
}

// An outcome names its delivery by organization, webhook and id: one
// whose attempt names another webhook of the organization names no
// delivery. It is stale and touches neither webhook nor the delivery,
// which the true outcome then completes.
func testDeliveryCompleteOwnWebhook(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, nil)
	other := createWebhook(t, s, newWebhook(t, w.OrganizationID))
	a := newAttempt(t, &tk.Delivery, 1, 410, base.Add(time.Second))
	a.WebhookID = other.ID
	wrong := webhook.Outcome{Attempt: a, Status: webhook.DeliveryFailed, DisableReason: "the receiver answered 410 Gone",
		Lease: tk.Delivery.Lease, WebhookUpdatedAt: tk.Webhook.UpdatedAt}
	res, err := s.DeliveryComplete(ctx, []webhook.Outcome{wrong})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "stale", res.Stale, []webhook.DeliveryRef{{OrganizationID: a.OrganizationID, WebhookID: other.ID, ID: a.DeliveryID,
		Lease: tk.Delivery.Lease}})
	for _, h := range []*webhook.Webhook{w, other} {
		if got := getWebhook(t, s, h.OrganizationID, h.ID); !got.FailingSince.IsZero() || !got.Enabled {
			t.Fatalf("webhook %s: failing since %v, enabled %v; want untouched", h.ID, got.FailingSince, got.Enabled)
		}
	}
	if d := getDelivery(t, s, w.OrganizationID, w.ID, tk.Delivery.ID); d.Status != webhook.DeliveryRunning || d.Attempts != 0 {
		t.Fatalf("the delivery after an outcome naming another webhook: %s, %d attempts; want running, none", d.Status, d.Attempts)
	}
	// Nor does a renewal or a release naming the wrong webhook hold or
	// give back the delivery.
	ref := tk.Ref()
	ref.WebhookID = other.ID
	before := getDelivery(t, s, w.OrganizationID, w.ID, tk.Delivery.ID)
	lost, err := s.DeliveryRenew(ctx, webhook.RenewParams{Refs: []webhook.DeliveryRef{ref}, Now: base, LeaseUntil: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "lost", lost, []webhook.DeliveryRef{ref})
	wantTime(t, "the lease's end after a renewal naming another webhook", getDelivery(t, s, w.OrganizationID, w.ID, tk.Delivery.ID).DueAt, before.DueAt)
	if err := s.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{ref}, Now: base}); err != nil {
		t.Fatal(err)
	}
	if d := getDelivery(t, s, w.OrganizationID, w.ID, tk.Delivery.ID); d.Status != webhook.DeliveryRunning {
		t.Fatalf("the delivery after a release naming another webhook: %s; want running", d.Status)
	}
	// A ref or an outcome that names no webhook at all is a mistake, not
	// a lost lease.
	ref.WebhookID = uuid.Nil
	_, err = s.DeliveryRenew(ctx, webhook.RenewParams{Refs: []webhook.DeliveryRef{ref}, Now: base, LeaseUntil: base.Add(time.Hour)})
	wantCode(t, err, webhook.EInvalid)
	wantCode(t, s.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{ref}, Now: base}), webhook.EInvalid)
	a.WebhookID = uuid.Nil
	_, err = s.DeliveryComplete(ctx, []webhook.Outcome{{Attempt: a, Status: webhook.DeliveryFailed, Lease: tk.Delivery.Lease}})
	wantCode(t, err, webhook.EInvalid)
	a.WebhookID = w.ID
	complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliveryFailed, DisableReason: "the receiver answered 410 Gone",
		Lease: tk.Delivery.Lease, WebhookUpdatedAt: tk.Webhook.UpdatedAt})
	got := getWebhook(t, s, w.OrganizationID, w.ID)
	if got.Enabled || got.DisabledReason != "the receiver answered 410 Gone" {
		t.Fatalf("the delivery's webhook: enabled %v, reason %q; want disabled", got.Enabled, got.DisabledReason)
	}
	wantTime(t, "FailingSince", got.FailingSince, a.CreatedAt)
}

func testDeliveryCompleteWebhookDeleted(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, nil)
	// A second delivery in the same call, to a webhook that still exists.
	w2, tk2 := claimOne(t, s, nil)
	if err := deleteWebhook(ctx, s, w.OrganizationID, w.ID, nil); err != nil {
		t.Fatal(err)
	}
	complete(t, s,
		webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 200, base.Add(time.Second)), Status: webhook.DeliverySucceeded},
		webhook.Outcome{Attempt: newAttempt(t, &tk2.Delivery, 1, 200, base.Add(time.Second)), Status: webhook.DeliverySucceeded},
	)
	// The attempt is dropped, or goes with its delivery in the background.
	eventually(t, func() string {
		_, err := s.DeliveryGet(ctx, w.OrganizationID, w.ID, tk.Delivery.ID)
		if webhook.ErrorCode(err) != webhook.ENotFound {
			return fmt.Sprintf("DeliveryGet of the deleted webhook's delivery: %v, want not found", err)
		}
		as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 0 {
			return fmt.Sprintf("%d attempts stored for a deleted webhook", len(as))
		}
		return ""
	})
	if d := getDelivery(t, s, w2.OrganizationID, w2.ID, tk2.Delivery.ID); d.Status != webhook.DeliverySucceeded {
		t.Fatalf("other delivery: %+v", d)
	}
}

// One DeliveryComplete call with many outcomes, interleaved across
// webhooks, has the effect of applying them one by one, in order,
// whatever the backend's batching.
func testDeliveryCompleteBatch(t *testing.T, s webhook.Store) {
	org := newID(t)
	a := createWebhook(t, s, newWebhook(t, org))
	b := newWebhook(t, org)
	b.FailingSince = base.Add(-time.Hour)
	createWebhook(t, s, b)
	gone := createWebhook(t, s, newWebhook(t, org))
	for i := range 35 {
		createEvents(t, s, newEvent(t, org, base.Add(time.Duration(i)*time.Millisecond)))
	}
	tasks := claim(t, s, webhook.ClaimParams{Now: base.Add(time.Second), LeaseUntil: base.Add(time.Hour), Limit: 500})
	if len(tasks) != 105 {
		t.Fatalf("claimed %d, want 105", len(tasks))
	}
	// One webhook is deleted while its attempts run: its outcomes are
	// dropped, the others still recorded.
	if err := deleteWebhook(context.Background(), s, org, gone.ID, nil); err != nil {
		t.Fatal(err)
	}
	var outcomes []webhook.Outcome
	var aFirstFailureAfterSuccess time.Time
	na, nb := 0, 0
	for i, tk := range tasks {
		at := base.Add(time.Minute + time.Duration(i)*time.Second)
		o := webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 500, at), Status: webhook.DeliveryPending, NextAttemptAt: at.Add(time.Hour),
			WebhookUpdatedAt: tk.Webhook.UpdatedAt}
		switch tk.Webhook.ID {
		case a.ID: // failures, one success, then failures again
			if na == 20 {
				o.Attempt.StatusCode, o.Status, o.NextAttemptAt = 200, webhook.DeliverySucceeded, time.Time{}
			} else if na == 21 {
				aFirstFailureAfterSuccess = at
			}
			na++
		case b.ID: // successes, two disabling failures, successes
			switch nb {
			case 5:
				o.Status, o.NextAttemptAt, o.DisableReason = webhook.DeliveryFailed, time.Time{}, "first reason"
			case 6:
				o.Status, o.NextAttemptAt, o.DisableReason = webhook.DeliveryFailed, time.Time{}, "second reason"
			default:
				o.Attempt.StatusCode, o.Status, o.NextAttemptAt = 200, webhook.DeliverySucceeded, time.Time{}
			}
			nb++
		}
		outcomes = append(outcomes, o)
	}
	complete(t, s, outcomes...)

	gotA := getWebhook(t, s, org, a.ID)
	wantTime(t, "a.FailingSince", gotA.FailingSince, aFirstFailureAfterSuccess)
	if !gotA.Enabled {
		t.Fatal("a was disabled")
	}
	gotB := getWebhook(t, s, org, b.ID)
	if !gotB.FailingSince.IsZero() || gotB.Enabled || gotB.DisabledReason != "first reason" {
		t.Fatalf("b: failing since %v, enabled %v, reason %q; want not failing, disabled for the first reason",
			gotB.FailingSince, gotB.Enabled, gotB.DisabledReason)
	}
	for _, o := range outcomes {
		if o.Attempt.WebhookID == gone.ID {
			continue
		}
		d := getDelivery(t, s, org, o.Attempt.WebhookID, o.Attempt.DeliveryID)
		if d.Status != o.Status || d.Attempts != 1 || d.LastStatusCode != o.Attempt.StatusCode {
			t.Fatalf("delivery %+v after outcome %s %d", d, o.Status, o.Attempt.StatusCode)
		}
	}
	for _, w := range []*webhook.Webhook{a, b} {
		as, err := s.AttemptList(context.Background(), webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != 35 {
			t.Fatalf("webhook %s has %d attempts recorded, want 35", w.ID, len(as))
		}
	}
}

func testDeliveryRelease(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	deliver(t, s, org, base)
	deliver(t, s, org, base)
	tasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Hour), Limit: 10})
	if len(tasks) != 2 {
		t.Fatalf("claimed %d, want 2", len(tasks))
	}
	due := base.Add(time.Minute)
	refs := []webhook.DeliveryRef{tasks[0].Ref(), tasks[1].Ref()}
	// A delay that cannot be is refused, and gives nothing back.
	wantCode(t, s.DeliveryRelease(context.Background(), webhook.ReleaseParams{Refs: refs, Now: due, After: -time.Second}), webhook.EInvalid)
	if d := getDelivery(t, s, org, w.ID, tasks[0].Delivery.ID); d.Status != webhook.DeliveryRunning {
		t.Fatalf("a release with a negative delay gave the delivery back: %+v", d)
	}
	// Due After from now: the suite's backends run on the caller's clock.
	if err := s.DeliveryRelease(context.Background(), webhook.ReleaseParams{Refs: refs, Now: base.Add(20 * time.Second), After: 40 * time.Second}); err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		d := getDelivery(t, s, org, w.ID, tk.Delivery.ID)
		if d.Status != webhook.DeliveryPending || d.Attempts != 0 {
			t.Fatalf("released delivery: %+v", d)
		}
		wantTime(t, "DueAt", d.DueAt, due)
	}
	tasks = claim(t, s, webhook.ClaimParams{Now: due, LeaseUntil: due.Add(time.Hour), Limit: 10})
	if len(tasks) != 2 {
		t.Fatalf("claimed %d released deliveries, want 2", len(tasks))
	}
	// Another organization cannot release them.
	refs[0] = tasks[0].Ref()
	refs[0].OrganizationID = newID(t)
	if err := s.DeliveryRelease(context.Background(), webhook.ReleaseParams{Refs: refs[:1], Now: due}); err != nil {
		t.Fatal(err)
	}
	if d := getDelivery(t, s, org, w.ID, tasks[0].Delivery.ID); d.Status != webhook.DeliveryRunning {
		t.Fatalf("foreign release changed the delivery: %+v", d)
	}
}

func testDeliveryRetry(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, nil)
	org := w.OrganizationID
	id := tk.Delivery.ID

	_, err := s.DeliveryRetry(ctx, org, w.ID, id, base.Add(time.Second))
	wantCode(t, err, webhook.EConflict)

	complete(t, s, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 500, base.Add(time.Second)), Status: webhook.DeliveryFailed})
	now := base.Add(time.Hour)
	d, err := s.DeliveryRetry(ctx, org, w.ID, id, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != webhook.DeliveryPending || d.Attempts != 1 || d.ID != id {
		t.Fatalf("retried delivery: %+v", d)
	}
	wantTime(t, "DueAt", d.DueAt, now)
	wantTime(t, "UpdatedAt", d.UpdatedAt, now)
	wantEqual(t, "stored retried delivery", getDelivery(t, s, org, w.ID, id), d)

	// Retrying a pending delivery is allowed.
	if _, err := s.DeliveryRetry(ctx, org, w.ID, id, now); err != nil {
		t.Fatal(err)
	}
	tasks := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
	if len(tasks) != 1 || tasks[0].Delivery.ID != id {
		t.Fatalf("claimed %d after retry", len(tasks))
	}

	_, err = s.DeliveryRetry(ctx, newID(t), w.ID, id, now)
	wantCode(t, err, webhook.ENotFound)
	_, err = s.DeliveryRetry(ctx, org, newID(t), id, now)
	wantCode(t, err, webhook.ENotFound)
	_, err = s.DeliveryRetry(ctx, org, w.ID, newID(t), now)
	wantCode(t, err, webhook.ENotFound)
}

func testDeliveryGet(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	id := deliver(t, s, org, base)
	getDelivery(t, s, org, w.ID, id)

	_, err := s.DeliveryGet(ctx, newID(t), w.ID, id)
	wantCode(t, err, webhook.ENotFound)
	_, err = s.DeliveryGet(ctx, org, newID(t), id)
	wantCode(t, err, webhook.ENotFound)
	_, err = s.DeliveryGet(ctx, org, w.ID, newID(t))
	wantCode(t, err, webhook.ENotFound)
}

func testDeliveryList(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	var ids []uuid.UUID // oldest first
	for i := range 5 {
		ids = append(ids, deliver(t, s, org, base.Add(time.Duration(i)*time.Second)))
	}
	slices.Reverse(ids) // newest first

	list := func(p webhook.DeliveryListParams) []uuid.UUID {
		t.Helper()
		p.OrganizationID, p.WebhookID = org, w.ID
		ds, err := s.DeliveryList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		out := []uuid.UUID{}
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	wantEqual(t, "all", list(webhook.DeliveryListParams{Limit: 10}), ids)
	wantEqual(t, "limit", list(webhook.DeliveryListParams{Limit: 2}), ids[:2])
	wantEqual(t, "before", list(webhook.DeliveryListParams{Limit: 2, Before: ids[1]}), ids[2:4])
	wantEqual(t, "before last", list(webhook.DeliveryListParams{Limit: 2, Before: ids[4]}), []uuid.UUID{})

	// Finish the newest and the oldest; filter by status.
	tasks := claim(t, s, webhook.ClaimParams{Now: base.Add(time.Hour), LeaseUntil: base.Add(2 * time.Hour), Limit: 10})
	for _, tk := range tasks {
		if tk.Delivery.ID == ids[0] || tk.Delivery.ID == ids[4] {
			complete(t, s, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 200, base.Add(time.Hour)), Status: webhook.DeliverySucceeded})
		}
	}
	wantEqual(t, "succeeded", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliverySucceeded}), []uuid.UUID{ids[0], ids[4]})
	wantEqual(t, "running", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliveryRunning}), ids[1:4])
	wantEqual(t, "succeeded before", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliverySucceeded, Before: ids[0]}), []uuid.UUID{ids[4]})

	// Fail two, and queue one: each status is listed from the rows of
	// its own (the queue, the failed ones), never another webhook's.
	for _, tk := range tasks {
		if tk.Delivery.ID == ids[1] || tk.Delivery.ID == ids[3] {
			complete(t, s, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 500, base.Add(time.Hour)), Status: webhook.DeliveryFailed})
		}
	}
	pending := deliver(t, s, org, base.Add(time.Minute))
	other := newID(t)
	createWebhook(t, s, newWebhook(t, other))
	deliver(t, s, other, base.Add(time.Minute))
	for _, tk := range claim(t, s, webhook.ClaimParams{Now: base.Add(time.Hour), LeaseUntil: base.Add(2 * time.Hour), Limit: 10}) {
		if tk.Delivery.WebhookID != w.ID {
			complete(t, s, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 500, base.Add(time.Hour)), Status: webhook.DeliveryFailed})
		}
	}
	deliver(t, s, other, base.Add(time.Minute))
	wantEqual(t, "failed", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliveryFailed}), []uuid.UUID{ids[1], ids[3]})
	wantEqual(t, "failed before", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliveryFailed, Before: ids[1]}), []uuid.UUID{ids[3]})
	wantEqual(t, "failed, a page", list(webhook.DeliveryListParams{Limit: 1, Status: webhook.DeliveryFailed}), []uuid.UUID{ids[1]})
	wantEqual(t, "running", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliveryRunning}), []uuid.UUID{pending, ids[2]})
	wantEqual(t, "running before", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliveryRunning, Before: pending}), []uuid.UUID{ids[2]})
	wantEqual(t, "pending", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliveryPending}), []uuid.UUID{})
	retried, err := s.DeliveryRetry(ctx, org, w.ID, ids[3], base.Add(time.Hour))
	if err != nil || retried.Status != webhook.DeliveryPending {
		t.Fatalf("retry: %v", err)
	}
	wantEqual(t, "pending after a retry", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliveryPending}), []uuid.UUID{ids[3]})
	wantEqual(t, "failed after a retry", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliveryFailed}), []uuid.UUID{ids[1]})
	wantEqual(t, "no such status", list(webhook.DeliveryListParams{Limit: 10, Status: "lost"}), []uuid.UUID{})

	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: newID(t), WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if ds == nil || len(ds) != 0 {
		t.Fatalf("another organization listed %#v", ds)
	}
}

func testDeliveryBacklog(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	due, oldest, err := s.DeliveryBacklog(ctx, base)
	if err != nil || due != 0 || !oldest.IsZero() {
		t.Fatalf("empty backlog = %d, %v, %v", due, oldest, err)
	}
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org))
	deliver(t, s, org, base)
	deliver(t, s, org, base.Add(time.Second))
	deliver(t, s, org, base.Add(2*time.Second))
	deliver(t, s, org, base.Add(time.Hour))

	due, oldest, err = s.DeliveryBacklog(ctx, base.Add(10*time.Second))
	if err != nil || due != 3 {
		t.Fatalf("backlog = %d, %v, want 3", due, err)
	}
	wantTime(t, "oldest", oldest, base)

	// Running deliveries count only once their lease has passed.
	claim(t, s, webhook.ClaimParams{Now: base.Add(10 * time.Second), LeaseUntil: base.Add(time.Minute), Limit: 1})
	due, oldest, err = s.DeliveryBacklog(ctx, base.Add(10*time.Second))
	if err != nil || due != 2 {
		t.Fatalf("backlog = %d, %v, want 2", due, err)
	}
	wantTime(t, "oldest", oldest, base.Add(time.Second))
	due, oldest, err = s.DeliveryBacklog(ctx, base.Add(time.Minute))
	if err != nil || due != 3 {
		t.Fatalf("backlog = %d, %v, want 3", due, err)
	}
	wantTime(t, "oldest", oldest, base.Add(time.Second))
}

func testAttemptList(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	other := createWebhook(t, s, newWebhook(t, newID(t)))
	deliver(t, s, org, base)
	deliver(t, s, org, base.Add(time.Second))
	deliver(t, s, other.OrganizationID, base)

	// Three rounds of attempts on both deliveries: six attempts in all.
	// In the first round both start at the same time, and their ids order
	// them; in the others the attempt made second started a second before
	// the first: the list goes by when attempts started, not by id.
	var made []webhook.Attempt
	events := map[uuid.UUID]webhook.Event{}
	now := base.Add(time.Minute)
	for round := 1; round <= 3; round++ {
		tasks := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
		sort.Slice(tasks, func(i, j int) bool { return tasks[i].Delivery.ID.String() < tasks[j].Delivery.ID.String() })
		var outs []webhook.Outcome
		for _, tk := range tasks {
			if tk.Delivery.OrganizationID != org {
				continue
			}
			events[tk.Event.ID] = tk.Event
			start := now.Add(time.Second)
			if round > 1 && len(outs) == 0 {
				start = start.Add(time.Second)
			}
			a := newAttempt(t, &tk.Delivery, round, 500, start)
			made = append(made, a)
			outs = append(outs, webhook.Outcome{Attempt: a, Status: webhook.DeliveryPending, NextAttemptAt: now.Add(time.Minute)})
		}
		if round == 1 {
			// Stored in the other order than their ids: the ids, not the
			// order of the rows, order attempts that started together.
			slices.Reverse(outs)
		}
		complete(t, s, outs...)
		now = now.Add(time.Minute)
	}
	if len(made) != 6 {
		t.Fatalf("made %d attempts, want 6", len(made))
	}
	attempts := []webhook.Attempt{made[4], made[5], made[2], made[3], made[1], made[0]} // newest first

	list := func(p webhook.AttemptListParams) []*webhook.Attempt {
		t.Helper()
		as, err := s.AttemptList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	ids := func(as []*webhook.Attempt) []uuid.UUID {
		out := []uuid.UUID{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	wantIDs := func(as []webhook.Attempt) []uuid.UUID {
		out := []uuid.UUID{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}

	all := list(webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 100})
	wantEqual(t, "all attempts", ids(all), wantIDs(attempts))
	for i, a := range all {
		want := attempts[i]
		ev := events[want.EventID]
		want.Event = &ev
		wantEqual(t, "attempt", *a, want)
	}
	wantEqual(t, "limit", ids(list(webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 2})), wantIDs(attempts[:2]))

	var ofDelivery []webhook.Attempt
	for _, a := range attempts {
		if a.DeliveryID == attempts[0].DeliveryID {
			ofDelivery = append(ofDelivery, a)
		}
	}
	wantEqual(t, "by delivery", ids(list(webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, DeliveryID: attempts[0].DeliveryID, Limit: 100})), wantIDs(ofDelivery))

	if as := list(webhook.AttemptListParams{OrganizationID: other.OrganizationID, WebhookID: w.ID, Limit: 100}); as == nil || len(as) != 0 {
		t.Fatalf("another organization listed %d attempts", len(as))
	}
}

// A webhook disabled for failing too long (OutcomeRules.DisableAfter) is
// one whose every attempt failed for that long: a success recorded after
// an attempt read the webhook's FailingSince ends the streak that attempt
// judged. Its failure, decided against the streak as it read it (a task
// queued behind the webhook's in-flight limit, or claimed on another
// node, while a success was recorded), must not disable the webhook, nor
// fail its delivery for good: README, "a webhook failing for
// HOOKD_DISABLE_AFTER with no success is disabled". The same holds when
// the success is recorded in the same batch, before the failure.
func testDeliveryCompleteDisableAfterSuccess(t *testing.T, s webhook.Store) {
	rules := webhook.OutcomeRules{Schedule: webhook.Schedule{0, time.Minute, time.Minute}, DisableAfter: time.Hour,
		Rand: func() float64 { return 0.5 }}
	for _, together := range []bool{false, true} {
		// Both tasks read the webhook failing for 59 minutes.
		w, tasks := claimN(t, s, 2, func(w *webhook.Webhook) { w.FailingSince = base.Add(-59 * time.Minute) })
		org := w.OrganizationID
		ok := rules.Decide(&tasks[0].Webhook, newAttempt(t, &tasks[0].Delivery, 1, 204, base.Add(time.Second)), 0)
		ok.Lease = tasks[0].Delivery.Lease
		// Two minutes later the other one fails: by the streak it read,
		// the webhook has failed for an hour.
		bad := rules.Decide(&tasks[1].Webhook, newAttempt(t, &tasks[1].Delivery, 1, 500, base.Add(2*time.Minute)), 0)
		bad.Lease = tasks[1].Delivery.Lease
		if bad.DisableReason == "" {
			t.Fatalf("the rules do not disable a webhook failing for an hour: %+v", bad)
		}
		if together {
			complete(t, s, ok, bad)
		} else {
			complete(t, s, ok)
			complete(t, s, bad)
		}
		got := getWebhook(t, s, org, w.ID)
		if !got.Enabled || got.DisabledReason != "" {
			t.Fatalf("together %v: a failure after a success disabled the webhook (%q): its streak of failures began %v, after the success",
				together, got.DisabledReason, got.FailingSince)
		}
		// The failure is one still: it begins the streak after the success.
		if !got.FailingSince.Equal(bad.Attempt.CreatedAt) {
			t.Fatalf("together %v: failing since %v; want since the failure after the success, %v", together, got.FailingSince, bad.Attempt.CreatedAt)
		}
		// Its retry is the schedule's, a minute after it, not at once.
		if d := getDelivery(t, s, org, w.ID, tasks[1].Delivery.ID); d.Status != webhook.DeliveryPending || !d.DueAt.Equal(bad.NextAttemptAt) {
			t.Fatalf("together %v: the delivery whose attempt failed once is %s, due %v; want pending for its next attempt, due %v",
				together, d.Status, d.DueAt, bad.NextAttemptAt)
		}
	}
}

// A disable for failing too long is put against the webhook's health as
// the batch's outcomes leave it, one by one, and only the outcomes the
// store records move it (webhook.HealthChanges): one whose lease was lost
// records nothing. A stale success (a node that lost its lease, beside
// its outcomes of others) does not end the streak the stored
// failing_since says goes on, so the failure after it disables the
// webhook; a stale failure that began before the streak a success has
// since ended does not start one, so the failure after it disables
// nothing.
func testDeliveryCompleteDisableStaleOutcomes(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	rules := webhook.OutcomeRules{Schedule: webhook.Schedule{0, time.Minute, time.Minute}, DisableAfter: time.Hour,
		Rand: func() float64 { return 0.5 }}
	streak := base.Add(-59 * time.Minute)
	decide := func(tk *webhook.Task, code int, at time.Time) webhook.Outcome {
		o := rules.Decide(&tk.Webhook, newAttempt(t, &tk.Delivery, 1, code, at), 0)
		o.Lease = tk.Delivery.Lease
		return o
	}
	record := func(what string, outcomes ...webhook.Outcome) {
		t.Helper()
		res, err := s.DeliveryComplete(ctx, outcomes)
		if err != nil {
			t.Fatalf("%s: DeliveryComplete: %v", what, err)
		}
		if len(res.Stale) != 1 || res.Stale[0].ID != outcomes[0].Attempt.DeliveryID {
			t.Fatalf("%s: stale %+v, want the first outcome's", what, res.Stale)
		}
	}

	// The stored streak goes on: no success is recorded.
	w, tasks := claimN(t, s, 2, func(w *webhook.Webhook) { w.FailingSince = streak })
	ok := decide(tasks[0], 204, base.Add(time.Second))
	ok.Lease++ // its lease was taken over
	bad := decide(tasks[1], 500, base.Add(2*time.Minute))
	if bad.DisableReason == "" {
		t.Fatalf("the rules do not disable a webhook failing for an hour: %+v", bad)
	}
	record("a stale success, then a failure", ok, bad)
	got := getWebhook(t, s, w.OrganizationID, w.ID)
	if got.Enabled || !got.FailingSince.Equal(streak) {
		t.Errorf("after a stale success and a failure an hour into the stored streak: enabled %v, failing since %v; want disabled, failing since %v",
			got.Enabled, got.FailingSince, streak)
	}

	// A success ended the streak: it is recorded before the batch.
	w, tasks = claimN(t, s, 3, func(w *webhook.Webhook) { w.FailingSince = streak })
	complete(t, s, decide(tasks[0], 204, base.Add(time.Second)))
	early := decide(tasks[1], 500, streak.Add(-time.Hour))
	early.Lease++
	bad = decide(tasks[2], 500, base.Add(2*time.Minute))
	record("a stale failure that began before the streak, then a failure", early, bad)
	if got := getWebhook(t, s, w.OrganizationID, w.ID); !got.Enabled {
		t.Fatalf("a failure after a success disabled the webhook (%q), a stale failure having begun before the streak it judged",
			got.DisabledReason)
	}
}

// A disable for failing too long whose streak a success has ended, on the
// schedule's last attempt, is the last failure it is: failed for good,
// disabling nothing, and starting the webhook's new streak; beside it in
// the batch, one with attempts left is retried on the schedule. Either
// order.
func testDeliveryCompleteStreakEndedLastAttempt(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	rules := webhook.OutcomeRules{Schedule: webhook.Schedule{0, time.Minute, time.Minute}, DisableAfter: time.Hour,
		Rand: func() float64 { return 0.5 }}
	streak := base.Add(-59 * time.Minute)
	for _, lastFirst := range []bool{true, false} {
		w, tasks := claimN(t, s, 3, func(w *webhook.Webhook) { w.FailingSince = streak })
		decide := func(tk *webhook.Task, number, code int, at time.Time) webhook.Outcome {
			o := rules.Decide(&tk.Webhook, newAttempt(t, &tk.Delivery, number, code, at), 0)
			o.Lease = tk.Delivery.Lease
			return o
		}
		complete(t, s, decide(tasks[0], 1, 204, base.Add(time.Second)))
		last := decide(tasks[1], 3, 500, base.Add(2*time.Minute))
		retried := decide(tasks[2], 1, 500, base.Add(3*time.Minute))
		if last.DisableReason == "" || !last.NextAttemptAt.IsZero() || retried.DisableReason == "" || retried.NextAttemptAt.IsZero() {
			t.Fatalf("decided %+v and %+v; want two disables, the first with no attempt left", last, retried)
		}
		batch := []webhook.Outcome{last, retried}
		if !lastFirst {
			batch = []webhook.Outcome{retried, last}
		}
		res, err := s.DeliveryComplete(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "outdated", res.Outdated, []webhook.DeliveryRef{retried.Ref()})
		// Both failures count in the webhook's health: the new streak
		// begins at the batch's first.
		got := getWebhook(t, s, w.OrganizationID, w.ID)
		if !got.Enabled || !got.FailingSince.Equal(batch[0].Attempt.CreatedAt) {
			t.Errorf("last first %v: enabled %v (%q), failing since %v; want enabled, failing since the batch's first failure, %v",
				lastFirst, got.Enabled, got.DisabledReason, got.FailingSince, batch[0].Attempt.CreatedAt)
		}
		if d := getDelivery(t, s, w.OrganizationID, w.ID, tasks[1].Delivery.ID); d.Status != webhook.DeliveryFailed {
			t.Errorf("last first %v: the last attempt's delivery is %s, want failed", lastFirst, d.Status)
		}
		if d := getDelivery(t, s, w.OrganizationID, w.ID, tasks[2].Delivery.ID); d.Status != webhook.DeliveryPending || !d.DueAt.Equal(retried.NextAttemptAt) {
			t.Errorf("last first %v: the other is %s due %v, want pending due %v", lastFirst, d.Status, d.DueAt, retried.NextAttemptAt)
		}
	}
}
