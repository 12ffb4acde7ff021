package storetest

import (
	"context"
	"encoding/json"
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

func recoverDeliveries(t *testing.T, s webhook.Store, p webhook.DeliveryRecoverParams) int {
	t.Helper()
	n, err := s.DeliveryRecover(context.Background(), p)
	if err != nil {
		t.Fatalf("DeliveryRecover: %v", err)
	}
	return n
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

// testDeliveryRecoverConcurrent recovers the same deliveries from several
// goroutines at once (several connections, like several nodes): each
// delivery is re-queued by exactly one of them.
func testDeliveryRecoverConcurrent(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	const deliveries, callers = 40, 4
	times := make([]time.Time, deliveries)
	for i := range times {
		times[i] = base.Add(time.Duration(i) * time.Second)
	}
	var outs []webhook.Outcome
	for _, tk := range deliverTo(t, s, w, times...) {
		outs = append(outs, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 502, base.Add(time.Minute)), Status: webhook.DeliveryFailed})
	}
	complete(t, s, outs...)
	now := base.Add(time.Hour)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		errs  []error
	)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: w.ID, Since: base, Until: now, Now: now}
			p.Audit = webhook.RecoverAudit(byToken, now, w, p)
			n, err := s.DeliveryRecover(context.Background(), p)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if total != deliveries {
		t.Fatalf("%d recoveries at once re-queued %d deliveries in all, want %d", callers, total, deliveries)
	}
	sum := 0
	for _, e := range auditList(t, s, webhook.AuditListParams{OrganizationID: org}) {
		var n int
		for _, c := range e.Changes {
			if c.Field == "deliveries" {
				json.Unmarshal(c.After, &n)
			}
		}
		sum += n
	}
	if sum != deliveries {
		t.Fatalf("the audit trail counts %d re-queued deliveries, want %d", sum, deliveries)
	}
}
