package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

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
	if stale, err := db.DeliveryComplete(ctx, outs); err != nil || len(stale) != 0 {
		t.Fatalf("complete: %v stale, %v", stale, err)
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
