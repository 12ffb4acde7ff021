package postgres

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/webhook"
)

// claimAll queues n deliveries to each of hooks and claims them all.
func claimAll(t *testing.T, db *DB, org uuid.UUID, hooks, n int) (*webhook.Webhook, []*webhook.Task) {
	t.Helper()
	ctx := context.Background()
	var first *webhook.Webhook
	for range hooks {
		w := newHook(org)
		if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = w
		}
	}
	evs := make([]*webhook.Event, n)
	for i := range evs {
		evs[i] = newEv(org, "")
	}
	if _, err := db.EventsCreate(ctx, evs, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: t0, LeaseUntil: t0.Add(time.Minute), Limit: hooks * n})
	if err != nil || len(tasks) != hooks*n {
		t.Fatalf("claim = %d tasks, %v; want %d", len(tasks), err, hooks*n)
	}
	return first, tasks
}

func failedOutcome(tk *webhook.Task) webhook.Outcome {
	d := tk.Delivery
	return webhook.Outcome{Status: webhook.DeliveryPending, NextAttemptAt: t0.Add(time.Hour), Lease: d.Lease, Attempt: webhook.Attempt{
		ID: uuid.Must(uuid.NewV7()), OrganizationID: d.OrganizationID, WebhookID: d.WebhookID, DeliveryID: d.ID, EventID: d.EventID,
		CreatedAt: t0, Number: 1, Kind: webhook.KindStandard, TargetURL: "https://example.com", StatusCode: 500,
	}}
}

// race runs each of fns at once and fails on any error: a deadlock
// between them reaches callers as EUnavailable.
func race(t *testing.T, round int, fns ...func() error) {
	t.Helper()
	errs := make(chan error, len(fns))
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- fn()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("round %d: %v (%s)", round, err, webhook.ErrorCode(err))
		}
	}
}

// A node whose lease was taken over releases deliveries that the node
// now holding them completes, each listing them in its own order: both
// must lock them in one order, or they deadlock.
func TestDeliveryReleaseRacingComplete(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	for round := range 15 {
		_, tasks := claimAll(t, db, uuid.New(), 4, 25)
		var outs []webhook.Outcome
		var refs []webhook.DeliveryRef
		for _, tk := range tasks {
			outs = append(outs, failedOutcome(tk))
			refs = append(refs, webhook.DeliveryRef{OrganizationID: tk.Delivery.OrganizationID, ID: tk.Delivery.ID, Lease: tk.Delivery.Lease})
		}
		slices.Reverse(outs)
		race(t, round,
			func() error { _, err := db.DeliveryComplete(ctx, outs); return err },
			func() error { return db.DeliveryRelease(ctx, refs, t0) },
			func() error {
				_, err := db.DeliveryRenew(ctx, webhook.RenewParams{Refs: refs, Now: t0, LeaseUntil: t0.Add(time.Minute)})
				return err
			})
	}
}

// Deleting a webhook locks it, then its deliveries; completing locks
// deliveries, then the webhook (a first failure sets failing_since):
// neither may fail.
func TestWebhookDeleteRacingComplete(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	for round := range 30 {
		org := uuid.New()
		w, tasks := claimAll(t, db, org, 1, 40)
		var outs []webhook.Outcome
		for _, tk := range tasks {
			outs = append(outs, failedOutcome(tk))
		}
		race(t, round,
			func() error { _, err := db.DeliveryComplete(ctx, outs); return err },
			func() error { return db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID}) })
	}
}

// Two nodes record outcomes of the same webhooks at once, each batch a
// first failure for all of them (so both set failing_since) and one
// disabling: the webhook rows must be locked in one order by both.
func TestDeliveryCompleteRacingComplete(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	for round := range 15 {
		_, tasks := claimAll(t, db, uuid.New(), 4, 10)
		var one, two []webhook.Outcome
		for i, tk := range tasks {
			o := failedOutcome(tk)
			if i%2 == 0 {
				one = append(one, o)
			} else {
				two = append(two, o)
			}
		}
		one[0].Status, one[0].DisableReason = webhook.DeliveryFailed, "failing"
		slices.Reverse(two)
		race(t, round,
			func() error { _, err := db.DeliveryComplete(ctx, one); return err },
			func() error { _, err := db.DeliveryComplete(ctx, two); return err })
		for _, tk := range tasks[:4] {
			w, err := db.WebhookGet(ctx, tk.Delivery.OrganizationID, tk.Delivery.WebhookID)
			if err != nil {
				t.Fatal(err)
			}
			if !w.FailingSince.Equal(t0) {
				t.Fatalf("round %d: webhook failing since %v, want %v", round, w.FailingSince, t0)
			}
		}
	}
}
