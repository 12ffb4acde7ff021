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
		storeHooks(t, db, w)
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
			refs = append(refs, tk.Ref())
		}
		slices.Reverse(outs)
		race(t, round,
			func() error { _, err := db.DeliveryComplete(ctx, outs); return err },
			func() error { return db.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: refs, Now: t0}) },
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

// Two nodes record outcomes of the same webhooks at once, each batch with
// first failures of all of them and one with a disable: both complete
// (a deadlock would reach one as EUnavailable), and the webhooks end as
// if the batches had run one after the other: failing since the first
// failure, one disabled, audited once.
func TestDeliveryCompleteRacingComplete(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	for round := range 15 {
		org := uuid.New()
		_, tasks := claimAll(t, db, org, 4, 10)
		var one, two []webhook.Outcome
		hooks := map[uuid.UUID]bool{}
		for i, tk := range tasks {
			hooks[tk.Delivery.WebhookID] = true
			if i%2 == 0 {
				one = append(one, failedOutcome(tk))
			} else {
				two = append(two, failedOutcome(tk))
			}
		}
		one[0].Status, one[0].DisableReason, one[0].WebhookUpdatedAt = webhook.DeliveryFailed, "failing", tasks[0].Webhook.UpdatedAt
		race(t, round,
			func() error { _, err := db.DeliveryComplete(ctx, one); return err },
			func() error { _, err := db.DeliveryComplete(ctx, two); return err })
		disabled := 0
		for id := range hooks {
			w, err := db.WebhookGet(ctx, org, id)
			if err != nil {
				t.Fatal(err)
			}
			if !w.FailingSince.Equal(t0) {
				t.Fatalf("round %d: webhook failing since %v, want %v", round, w.FailingSince, t0)
			}
			if !w.Enabled {
				disabled++
			}
		}
		entries, err := db.AuditList(ctx, webhook.AuditListParams{OrganizationID: org, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(hooks) != 4 || disabled != 1 || len(entries) != 1 {
			t.Fatalf("round %d: %d webhooks, %d disabled, %d audit entries; want 4, 1, 1", round, len(hooks), disabled, len(entries))
		}
	}
}

// A batch naming a delivery several times goes in rounds that name it
// once each, its outcomes in order: completeSQL applies one per delivery,
// and which one it would pick among several is up to the plan.
func TestCompleteRounds(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	var outs []webhook.Outcome
	for _, id := range []uuid.UUID{a, b, a, c, a, b} {
		outs = append(outs, webhook.Outcome{Attempt: webhook.Attempt{DeliveryID: id}})
	}
	got := completeRounds(outs)
	want := [][]int{{0, 1, 3}, {2, 5}, {4}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("rounds %v, want %v", got, want)
	}
	if got := completeRounds(outs[:2]); len(got) != 1 || !slices.Equal(got[0], []int{0, 1}) {
		t.Fatalf("rounds of two deliveries %v, want one round", got)
	}
}
