package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/webhook"
)

// A webhook's pending or running deliveries are read from its newest
// ones first and from the queue for the older ones (DeliveryList): every
// page, at every cursor and size, is the one the whole history gives,
// filtered, whether its rows come from the window, the queue or both.
func TestQueuedListAcrossItsWindow(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "hookd.db"))
	sqlite.SetQueuedListWindow(t, 4)
	org := uuid.New()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	w := newWebhook(t, db, org, at)
	newWebhook(t, db, org, at) // its queue is the other webhook's too
	const n = 12
	createEvents(t, db, org, at, n)
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: at, LeaseUntil: at.Add(time.Hour), Limit: 2 * n})
	if err != nil || len(tasks) != 2*n {
		t.Fatalf("claimed %d of %d: %v", len(tasks), 2*n, err)
	}
	var mine []*webhook.Task
	for _, tk := range tasks {
		if tk.Delivery.WebhookID == w.ID {
			mine = append(mine, tk)
		}
	}
	slices.SortFunc(mine, func(a, b *webhook.Task) int { return -bytes.Compare(a.Delivery.ID[:], b.Delivery.ID[:]) })
	// Newest first: succeeded (S), given back, so pending (P), or still
	// running (R).
	const statuses = "SPRSSPPRSPRP"
	var done []webhook.Outcome
	var back []webhook.DeliveryRef
	for i, tk := range mine {
		switch statuses[i] {
		case 'S':
			done = append(done, outcomeOK(tk, at))
		case 'P':
			back = append(back, tk.Ref())
		}
	}
	if _, err := db.DeliveryComplete(ctx, done); err != nil {
		t.Fatal(err)
	}
	if err := db.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: back, Now: at}); err != nil {
		t.Fatal(err)
	}

	all, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID})
	if err != nil || len(all) != n {
		t.Fatalf("the whole history: %d deliveries, %v; want %d", len(all), err, n)
	}
	cursors := []uuid.UUID{uuid.Nil}
	for _, d := range all {
		cursors = append(cursors, d.ID)
	}
	for _, status := range []webhook.DeliveryStatus{webhook.DeliveryPending, webhook.DeliveryRunning} {
		for _, before := range cursors {
			for _, limit := range []int{0, 1, 2, 3, 5} {
				var want []string
				for _, d := range all {
					if d.Status == status && (before == uuid.Nil || bytes.Compare(d.ID[:], before[:]) < 0) && (limit == 0 || len(want) < limit) {
						want = append(want, d.ID.String())
					}
				}
				got, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID,
					Status: status, Before: before, Limit: limit})
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, d := range got {
					ids = append(ids, d.ID.String())
				}
				if fmt.Sprint(ids) != fmt.Sprint(want) {
					t.Errorf("%s before %v, limit %d: %v, want %v", status, before, limit, ids, want)
				}
			}
		}
	}
	// Another organization reads nothing of it, window or queue.
	if got, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: uuid.New(), WebhookID: w.ID,
		Status: webhook.DeliveryPending}); err != nil || len(got) != 0 {
		t.Errorf("another organization's list: %d deliveries, %v; want none", len(got), err)
	}
}
