package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// Recovery in bulk re-queues a webhook's failed deliveries of a window,
// once each, and records who asked in the same transaction.

// deliverTo creates one event per time, each for w alone, claims them all
// and returns the running tasks in the order of times.
func deliverTo(t *testing.T, s webhook.Store, w *webhook.Webhook, times ...time.Time) []*webhook.Task {
	t.Helper()
	ids := make([]uuid.UUID, len(times))
	for i, at := range times {
		ev := newEvent(t, w.OrganizationID, at)
		ev.OnlyWebhookID = w.ID
		ids[i] = createEvents(t, s, ev)[0].DeliveryIDs[0]
	}
	last := times[len(times)-1]
	byID := map[uuid.UUID]*webhook.Task{}
	for _, tk := range claim(t, s, webhook.ClaimParams{Now: last, LeaseUntil: last.Add(24 * time.Hour), Limit: 1000}) {
		byID[tk.Delivery.ID] = tk
	}
	out := make([]*webhook.Task, len(ids))
	for i, id := range ids {
		if out[i] = byID[id]; out[i] == nil {
			t.Fatalf("delivery %d was not claimed", i)
		}
	}
	return out
}

// recoverDeliveries recovers failed deliveries alone and returns how
// many; recoverBoth returns the counts of a recovery with p.Pending too.
func recoverDeliveries(t *testing.T, s webhook.Store, p webhook.DeliveryRecoverParams) int {
	t.Helper()
	r := recoverBoth(t, s, p)
	if r.Pending != 0 {
		t.Fatalf("a recovery without Pending made %d pending deliveries due", r.Pending)
	}
	return r.Failed
}

func recoverBoth(t *testing.T, s webhook.Store, p webhook.DeliveryRecoverParams) webhook.Recovered {
	t.Helper()
	r, err := s.DeliveryRecover(context.Background(), p)
	if err != nil {
		t.Fatalf("DeliveryRecover: %v", err)
	}
	return r
}

func testDeliveryRecover(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	other := createWebhook(t, s, newWebhook(t, org))
	h := time.Hour
	// Five deliveries an hour apart: failed with 500, failed with 503,
	// failed without an answer, succeeded, and one still running.
	tasks := deliverTo(t, s, w, base, base.Add(h), base.Add(2*h), base.Add(3*h), base.Add(4*h))
	otherTask := deliverTo(t, s, other, base.Add(h))[0]
	at := base.Add(5 * h)
	complete(t, s,
		webhook.Outcome{Attempt: newAttempt(t, &tasks[0].Delivery, 1, 500, at), Status: webhook.DeliveryFailed},
		webhook.Outcome{Attempt: newAttempt(t, &tasks[1].Delivery, 1, 503, at), Status: webhook.DeliveryFailed},
		webhook.Outcome{Attempt: newAttempt(t, &tasks[2].Delivery, 1, 0, at), Status: webhook.DeliveryFailed},
		webhook.Outcome{Attempt: newAttempt(t, &tasks[3].Delivery, 1, 200, at), Status: webhook.DeliverySucceeded},
		webhook.Outcome{Attempt: newAttempt(t, &otherTask.Delivery, 1, 500, at), Status: webhook.DeliveryFailed},
	)
	status := func(i int) webhook.DeliveryStatus { return getDelivery(t, s, org, w.ID, tasks[i].Delivery.ID).Status }

	now := base.Add(6 * h)
	p := webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: w.ID, Since: base.Add(h), Until: now, Now: now,
		LastStatus: &webhook.StatusRange{Min: 500, Max: 599}}
	p.Audit = webhook.RecoverAudit(byToken, now, w, p)
	// From base+1h with 5xx: the 503 alone (the 500 is before the window).
	if n := recoverDeliveries(t, s, p); n != 1 {
		t.Fatalf("recovered %d, want 1", n)
	}
	d := getDelivery(t, s, org, w.ID, tasks[1].Delivery.ID)
	if d.Status != webhook.DeliveryPending || d.Attempts != 1 {
		t.Fatalf("recovered delivery: %+v", d)
	}
	wantTime(t, "DueAt", d.DueAt, now)
	wantTime(t, "UpdatedAt", d.UpdatedAt, now)
	es := auditList(t, s, webhook.AuditListParams{OrganizationID: org})
	if len(es) != 1 || es[0].Action != webhook.AuditWebhookRecovered || es[0].ResourceID != w.ID || es[0].Actor != byToken {
		t.Fatalf("audit after a recovery: %+v", es)
	}
	wantChanges(t, es[0].Changes, map[string]string{"since": `"2026-01-02T04:04:05.123456Z"`, "until": `"2026-01-02T09:04:05.123456Z"`,
		"status": `"5xx"`, "deliveries": `1`})

	// Again: that delivery is pending now, so nothing is queued twice.
	p.Audit = webhook.RecoverAudit(byToken, now, w, p)
	if n := recoverDeliveries(t, s, p); n != 0 {
		t.Fatalf("recovering again re-queued %d, want 0", n)
	}
	// Without an answer, from base: the refused connection alone.
	p.Since, p.LastStatus, p.Audit = base, &webhook.StatusRange{}, nil
	if n := recoverDeliveries(t, s, p); n != 1 || status(2) != webhook.DeliveryPending {
		t.Fatalf("recovering failures without an answer: %d, status %s", n, status(2))
	}
	// Everything left: the 500; the succeeded and the running one stay.
	p.LastStatus = nil
	if n := recoverDeliveries(t, s, p); n != 1 || status(0) != webhook.DeliveryPending {
		t.Fatalf("recovering the rest: %d, status %s", n, status(0))
	}
	if status(3) != webhook.DeliverySucceeded || status(4) != webhook.DeliveryRunning {
		t.Fatalf("recovery touched a succeeded (%s) or running (%s) delivery", status(3), status(4))
	}
	if d := getDelivery(t, s, org, other.ID, otherTask.Delivery.ID); d.Status != webhook.DeliveryFailed {
		t.Fatalf("recovery touched another webhook's delivery: %+v", d)
	}
	// The window's end is excluded.
	if n := recoverDeliveries(t, s, webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: other.ID, Since: base, Until: base.Add(h), Now: now}); n != 0 {
		t.Fatalf("recovered %d deliveries created at the window's end", n)
	}
	// Recovered deliveries are due: a claim takes them.
	if got := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10}); len(got) != 3 {
		t.Fatalf("claimed %d after recovering 3", len(got))
	}

	// Unknown webhook or another organization: NotFound, nothing audited.
	q := webhook.DeliveryRecoverParams{OrganizationID: newID(t), WebhookID: w.ID, Since: base, Until: now, Now: now}
	q.Audit = webhook.RecoverAudit(byToken, now, w, q)
	_, err := s.DeliveryRecover(context.Background(), q)
	wantCode(t, err, webhook.ENotFound)
	if es := auditList(t, s, webhook.AuditListParams{OrganizationID: org}); len(es) != 2 {
		t.Fatalf("%d audit entries, want the 2 recoveries that had one", len(es))
	}
}

// wantChanges checks an entry's changes, field by field, as JSON.
func wantChanges(t *testing.T, cs []webhook.Change, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, c := range cs {
		got[c.Field] = string(c.After)
	}
	b, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(b) != string(w) {
		t.Fatalf("changes = %s, want %s", b, w)
	}
}

// waitForRetry records a failed first attempt of each task, answered
// with code, and a retry due at next: the tasks are pending again, waiting.
func waitForRetry(t *testing.T, s webhook.Store, code int, at, next time.Time, tasks ...*webhook.Task) {
	t.Helper()
	for _, tk := range tasks {
		complete(t, s, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, code, at), Status: webhook.DeliveryPending, NextAttemptAt: next})
	}
}

// After a short outage most deliveries are pending, each waiting for a
// retry hours away. With Pending a recovery makes those of its window and
// filter due now, attempts unchanged, alongside the failed ones; it never
// touches a delivery in flight, nor one never attempted.
func testDeliveryRecoverPending(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	other := createWebhook(t, s, newWebhook(t, org))
	h := time.Hour
	tasks := deliverTo(t, s, w, base, base.Add(h), base.Add(2*h), base.Add(3*h), base.Add(4*h), base.Add(5*h))
	otherTask := deliverTo(t, s, other, base.Add(h))[0]
	at, later := base.Add(5*h+30*time.Minute), base.Add(10*h)
	// 0, 1: waiting after a 503; 2: waiting after no answer; 3: failed
	// with 503; 4: retried once already and running again, leased until
	// after the recovery; 5: given back unattempted, due later (as a
	// delivery whose secret cannot be read is).
	waitForRetry(t, s, 503, at, later, tasks[0], tasks[1], otherTask)
	waitForRetry(t, s, 0, at, later, tasks[2])
	waitForRetry(t, s, 503, at, at, tasks[4])
	complete(t, s, webhook.Outcome{Attempt: newAttempt(t, &tasks[3].Delivery, 1, 503, at), Status: webhook.DeliveryFailed})
	lease := at.Add(24 * h)
	if got := claim(t, s, webhook.ClaimParams{Now: at.Add(time.Minute), LeaseUntil: lease, Limit: 10}); len(got) != 1 || got[0].Delivery.ID != tasks[4].Delivery.ID {
		t.Fatalf("claimed %v, want the delivery due again", taskIDs(got))
	}
	if err := s.DeliveryRelease(context.Background(), webhook.ReleaseParams{Refs: []webhook.DeliveryRef{tasks[5].Ref()}, Now: at, After: later.Sub(at)}); err != nil {
		t.Fatal(err)
	}
	get := func(i int) *webhook.Delivery { return getDelivery(t, s, org, w.ID, tasks[i].Delivery.ID) }
	running := get(4)

	now := base.Add(6 * h)
	p := webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: w.ID, Since: base.Add(h), Until: now, Now: now,
		LastStatus: &webhook.StatusRange{Min: 500, Max: 599}}
	// Without Pending, as before: the failed one alone.
	p.Audit = webhook.RecoverAudit(byToken, now, w, p)
	if r := recoverBoth(t, s, p); r != (webhook.Recovered{Failed: 1}) {
		t.Fatalf("a recovery without Pending: %+v, want the failed delivery alone", r)
	}
	wantTime(t, "a waiting delivery's DueAt after a recovery without Pending", get(1).DueAt, later)

	// With Pending, from base+1h with 5xx: the one waiting after a 503
	// (the other is before the window, the third got no answer).
	p.Pending = true
	p.Audit = webhook.RecoverAudit(byToken, now, w, p)
	if r := recoverBoth(t, s, p); r != (webhook.Recovered{Pending: 1}) {
		t.Fatalf("recovered %+v, want 1 pending (the failed one is pending already)", r)
	}
	d := get(1)
	if d.Status != webhook.DeliveryPending || d.Attempts != 1 || d.LastStatusCode != 503 {
		t.Fatalf("the delivery made due: %+v, want pending with its 1 attempt", d)
	}
	wantTime(t, "DueAt", d.DueAt, now)
	wantTime(t, "UpdatedAt", d.UpdatedAt, now)
	wantTime(t, "the waiting delivery before the window", get(0).DueAt, later)
	wantTime(t, "the waiting delivery without an answer", get(2).DueAt, later)
	es := auditList(t, s, webhook.AuditListParams{OrganizationID: org})
	if len(es) != 2 || es[0].Action != webhook.AuditWebhookRecovered {
		t.Fatalf("audit after two recoveries: %+v", es)
	}
	wantChanges(t, es[0].Changes, map[string]string{"since": `"2026-01-02T04:04:05.123456Z"`, "until": `"2026-01-02T09:04:05.123456Z"`,
		"status": `"5xx"`, "deliveries": `1`, "failed": `0`, "pending": `1`})
	wantChanges(t, es[1].Changes, map[string]string{"since": `"2026-01-02T04:04:05.123456Z"`, "until": `"2026-01-02T09:04:05.123456Z"`,
		"status": `"5xx"`, "deliveries": `1`})

	// Again, a second later: everything it selects is due already.
	p.Now, p.Audit = now.Add(time.Second), nil
	if r := recoverBoth(t, s, p); r != (webhook.Recovered{}) {
		t.Fatalf("recovering again: %+v, want nothing", r)
	}
	wantTime(t, "DueAt after recovering again", get(1).DueAt, now)

	// From base, whatever the answer: the two still waiting.
	p.Since, p.LastStatus, p.Audit = base, nil, nil
	if r := recoverBoth(t, s, p); r != (webhook.Recovered{Pending: 2}) {
		t.Fatalf("recovering the rest: %+v, want 2 pending", r)
	}
	// The one in flight keeps its lease: making it due would let a
	// claim send it a second time while its request runs.
	if d := get(4); d.Status != webhook.DeliveryRunning || d.Lease != running.Lease || !d.DueAt.Equal(running.DueAt) || d.Attempts != 1 {
		t.Fatalf("recovery touched a running delivery: %+v, was %+v", d, running)
	}
	wantTime(t, "the delivery never attempted", get(5).DueAt, later)
	if d := getDelivery(t, s, org, other.ID, otherTask.Delivery.ID); !d.DueAt.Equal(later) {
		t.Fatalf("recovery touched another webhook's delivery: %+v", d)
	}
	// A claim now takes the four made due, each once, attempts kept.
	got := claim(t, s, webhook.ClaimParams{Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute), Limit: 10})
	want := []uuid.UUID{tasks[0].Delivery.ID, tasks[1].Delivery.ID, tasks[2].Delivery.ID, tasks[3].Delivery.ID}
	sortIDs(want)
	ids := taskIDs(got)
	sortIDs(ids)
	wantEqual(t, "claimed after recovering", ids, want)
	for _, tk := range got {
		if tk.Delivery.Attempts != 1 {
			t.Fatalf("claimed %s with %d attempts, want 1", tk.Delivery.ID, tk.Delivery.Attempts)
		}
	}
}

// testDeliveryRecoverConcurrent recovers the same deliveries from several
// goroutines at once (several connections, like several nodes), half of
// them failed and half waiting for a retry: each delivery is re-queued
// by exactly one of them.
func testDeliveryRecoverConcurrent(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	const deliveries, callers = 40, 4
	times := make([]time.Time, deliveries)
	for i := range times {
		times[i] = base.Add(time.Duration(i) * time.Second)
	}
	var outs []webhook.Outcome
	for i, tk := range deliverTo(t, s, w, times...) {
		o := webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 502, base.Add(time.Minute)), Status: webhook.DeliveryFailed}
		if i%2 == 1 {
			o.Status, o.NextAttemptAt = webhook.DeliveryPending, base.Add(5*time.Hour)
		}
		outs = append(outs, o)
	}
	complete(t, s, outs...)
	now := base.Add(time.Hour)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total webhook.Recovered
		errs  []error
	)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: w.ID, Since: base, Until: now, Now: now, Pending: true}
			p.Audit = webhook.RecoverAudit(byToken, now, w, p)
			r, err := s.DeliveryRecover(context.Background(), p)
			mu.Lock()
			defer mu.Unlock()
			total.Failed += r.Failed
			total.Pending += r.Pending
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if want := (webhook.Recovered{Failed: deliveries / 2, Pending: deliveries / 2}); total != want {
		t.Fatalf("%d recoveries at once re-queued %+v in all, want %+v", callers, total, want)
	}
	sum := map[string]int{}
	for _, e := range auditList(t, s, webhook.AuditListParams{OrganizationID: org}) {
		for _, c := range e.Changes {
			var n int
			if json.Unmarshal(c.After, &n) == nil {
				sum[c.Field] += n
			}
		}
	}
	if want := map[string]int{"deliveries": deliveries, "failed": deliveries / 2, "pending": deliveries / 2}; !reflect.DeepEqual(sum, want) {
		t.Fatalf("the audit trail counts %v re-queued deliveries, want %v", sum, want)
	}
}
