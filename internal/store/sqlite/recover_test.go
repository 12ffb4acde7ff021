package sqlite_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// The conformance suite again, with recoveries cut into batches of 3
// deliveries: the same answers, and recoveries at once interleave their
// batches on the writer yet count each delivery once.
func TestStoreRecoverInSmallBatches(t *testing.T) {
	sqlite.SetRecoverBatch(t, 3)
	storetest.Run(t, func(t *testing.T) webhook.Store {
		return open(t, filepath.Join(t.TempDir(), "hookd.db"))
	})
}

// A recovery of many batches is one audit entry, counting every delivery
// of every batch; rows that do not match, read once by the cursor, are
// left alone.
func TestRecoverInBatches(t *testing.T) {
	sqlite.SetRecoverBatch(t, 4)
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "hookd.db"))
	org := uuid.New()
	at := time.Now().UTC().Truncate(time.Microsecond)
	w := newWebhook(t, db, org, at)
	newWebhook(t, db, org, at) // another, whose deliveries all wait after a 503
	const n = 60
	createEvents(t, db, org, at, n) // one delivery each for w and other
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: at, LeaseUntil: at.Add(time.Minute), Limit: 2 * n})
	if err != nil || len(tasks) != 2*n {
		t.Fatalf("claimed %d, %v; want %d", len(tasks), err, 2*n)
	}
	// w's deliveries in turn: waiting after a 503, waiting after no
	// answer, failed with 503, failed with no answer; other's all wait
	// after a 503.
	var outs []webhook.Outcome
	i := 0
	for _, tk := range tasks {
		d := tk.Delivery
		o := webhook.Outcome{Lease: d.Lease, Status: webhook.DeliveryPending, NextAttemptAt: at.Add(time.Hour),
			Attempt: webhook.Attempt{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, WebhookID: d.WebhookID, DeliveryID: d.ID, EventID: d.EventID,
				CreatedAt: at, Number: 1, Kind: webhook.KindStandard, TargetURL: "https://example.com", StatusCode: 503}}
		if d.WebhookID == w.ID {
			if i%2 == 1 {
				o.Attempt.StatusCode = 0
			}
			if i%4 >= 2 {
				o.Status, o.NextAttemptAt = webhook.DeliveryFailed, time.Time{}
			}
			i++
		}
		outs = append(outs, o)
	}
	if res, err := db.DeliveryComplete(ctx, outs); err != nil || len(res.Stale) != 0 {
		t.Fatalf("complete: %v stale, %v", res.Stale, err)
	}
	now := at.Add(time.Minute)
	p := webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: w.ID, Since: at, Until: now, Now: now, Pending: true,
		LastStatus: &webhook.StatusRange{Min: 500, Max: 599}}
	p.Audit = webhook.RecoverAudit(webhook.Actor{Kind: webhook.ActorToken, ID: "t"}, now, &webhook.Webhook{ID: w.ID, OrganizationID: org}, p)
	if r, err := db.DeliveryRecover(ctx, p); err != nil || r != (webhook.Recovered{Failed: n / 4, Pending: n / 4}) {
		t.Fatalf("recovered %+v, %v; want %d of each", r, err, n/4)
	}
	es, err := db.AuditList(ctx, webhook.AuditListParams{OrganizationID: org, Limit: 10})
	if err != nil || len(es) != 1 {
		t.Fatalf("%d audit entries (%v), want the one", len(es), err)
	}
	got := map[string]int{}
	for _, c := range es[0].Changes {
		var v int
		if json.Unmarshal(c.After, &v) == nil {
			got[c.Field] = v
		}
	}
	if got["deliveries"] != n/2 || got["failed"] != n/4 || got["pending"] != n/4 || len(got) != 3 {
		t.Fatalf("the entry counts %v, want %d deliveries, %d failed, %d pending", got, n/2, n/4, n/4)
	}
	// Due now: the 30 recovered; not the 15 without an answer (pending or
	// failed), nor any of other's.
	due, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 2 * n})
	if err != nil || len(due) != n/2 {
		t.Fatalf("claimed %d after the recovery (%v), want %d", len(due), err, n/2)
	}
	for _, tk := range due {
		if tk.Delivery.WebhookID != w.ID || tk.Delivery.LastStatusCode != 503 {
			t.Fatalf("claimed %+v after the recovery: not one it selected", tk.Delivery)
		}
	}
}

// Two recoveries with Pending asked a moment apart reach the one writer
// in either order. The one asked later may run first and make the
// waiting deliveries due at its time; the one asked earlier, run next,
// sees them due after its own time, yet must not count them again.
func TestRecoverPendingAskedEarlierRunLater(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "hookd.db"))
	org := uuid.New()
	at := time.Now().UTC().Truncate(time.Microsecond)
	w := newWebhook(t, db, org, at)
	createEvents(t, db, org, at, 3)
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: at, LeaseUntil: at.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 3 {
		t.Fatalf("claimed %d, %v; want 3", len(tasks), err)
	}
	var outs []webhook.Outcome
	for _, tk := range tasks {
		d := tk.Delivery
		outs = append(outs, webhook.Outcome{Lease: d.Lease, Status: webhook.DeliveryPending, NextAttemptAt: at.Add(time.Hour),
			Attempt: webhook.Attempt{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, WebhookID: w.ID, DeliveryID: d.ID, EventID: d.EventID,
				CreatedAt: at, Number: 1, Kind: webhook.KindStandard, TargetURL: "https://example.com", StatusCode: 503}})
	}
	if res, err := db.DeliveryComplete(ctx, outs); err != nil || len(res.Stale) != 0 {
		t.Fatalf("complete: %v stale, %v", res.Stale, err)
	}
	asked := at.Add(time.Minute)
	p := func(now time.Time) webhook.DeliveryRecoverParams {
		return webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: w.ID, Since: at, Until: now, Now: now, Pending: true}
	}
	if r, err := db.DeliveryRecover(ctx, p(asked.Add(time.Millisecond))); err != nil || r != (webhook.Recovered{Pending: 3}) {
		t.Fatalf("the recovery asked later: %+v, %v; want 3 pending", r, err)
	}
	if r, err := db.DeliveryRecover(ctx, p(asked)); err != nil || r != (webhook.Recovered{}) {
		t.Fatalf("the recovery asked earlier, run next: %+v, %v; want nothing counted twice", r, err)
	}
}
