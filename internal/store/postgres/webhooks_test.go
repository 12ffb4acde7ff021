package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/webhook"
)

// A delete that fails after the history went keeps the webhook and its
// queue: only finished deliveries go before the last transaction.
func TestWebhookDeleteFailedKeepsQueue(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	newEvents := func(n int) {
		t.Helper()
		events := make([]*webhook.Event, n)
		for i := range events {
			events[i] = newEv(org, "")
		}
		if _, err := db.EventsCreate(ctx, events, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	newEvents(3)
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: t0, LeaseUntil: t0.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 3 {
		t.Fatalf("claimed %d of 3: %v", len(tasks), err)
	}
	var outcomes []webhook.Outcome
	for _, tk := range tasks {
		outcomes = append(outcomes, webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: tk.Delivery.Lease,
			Attempt: webhook.Attempt{OrganizationID: org, WebhookID: w.ID, DeliveryID: tk.Delivery.ID, EventID: tk.Event.ID,
				CreatedAt: t0, Number: 1, Kind: webhook.KindStandard, StatusCode: 200}})
	}
	if _, err := db.DeliveryComplete(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	newEvents(2) // the queue: two pending deliveries

	// An audit entry whose id is already taken makes the last step fail.
	taken := &webhook.AuditEntry{CreatedAt: t0, Action: webhook.AuditWebhookUpdated, Actor: webhook.Actor{Kind: webhook.ActorCLI, ID: "test"}}
	if _, err := db.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
		Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) { return taken, nil }}); err != nil {
		t.Fatal(err)
	}
	err = db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
		Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) {
			return &webhook.AuditEntry{ID: taken.ID, CreatedAt: t0, Action: webhook.AuditWebhookDeleted, Actor: webhook.Actor{Kind: webhook.ActorCLI, ID: "test"}}, nil
		}})
	if err == nil {
		t.Fatal("the delete succeeded with an audit id already taken")
	}
	if _, err := db.WebhookGet(ctx, org, w.ID); err != nil {
		t.Fatalf("the webhook is gone after a failed delete: %v", err)
	}
	pending, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Status: webhook.DeliveryPending})
	if err != nil || len(pending) != 2 {
		t.Fatalf("after a failed delete %d pending deliveries are left, want 2 (%v)", len(pending), err)
	}
	if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM deliveries) + (SELECT count(*) FROM attempts)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d deliveries and attempts left after the delete (%v)", n, err)
	}
}

// Deleting a webhook with a long history does not hold up intake of
// events that match it: the history goes in batches, and the row lock
// that intake's foreign key check waits on is held only for the queue.
// It fails on a delete that cascades the whole history in one
// transaction (intake then waited about as long as the whole delete).
func TestWebhookDeleteKeepsIntakeFlowing(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 deliveries")
	}
	db := openSchema(t, pgtest.URL(t))
	db.callerClock = false
	ctx := context.Background()
	org := uuid.New()
	gone, kept := newHook(org), newHook(org)
	for _, w := range []*webhook.Webhook{gone, kept} {
		if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	const history = 100_000
	// Written in SQL, not through the store: the history's shape (one
	// event, delivery and attempt each) matters here, not how it came.
	_, err := db.pool.Exec(ctx, `
		WITH e AS (
			INSERT INTO events (organization_id, id, created_at, event_type, project_name, environment_mode, payload)
			SELECT $1, gen_random_uuid(), $3, 'DEPLOYMENT_STARTED', 'p', 'PRODUCTION', '{}' FROM generate_series(1, $4)
			RETURNING id
		), d AS (
			INSERT INTO deliveries (organization_id, id, webhook_id, event_id, created_at, updated_at, status, due_at, event_type, attempts, last_status_code)
			SELECT $1, gen_random_uuid(), $2, id, $3, $3, 'succeeded', $3, 'DEPLOYMENT_STARTED', 1, 200 FROM e
			RETURNING id
		)
		INSERT INTO attempts (organization_id, id, delivery_id, webhook_id, created_at, number, kind, target_url,
			status_code, response_body, duration_us, error)
		SELECT $1, gen_random_uuid(), id, $2, $3, 1, 'STANDARD', 'https://example.com', 200, 'ok', 1000, '' FROM d`,
		org, gone.ID, t0, history)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		t.Fatal(err)
	}

	// intake stores one event at a time until stop closes, and returns
	// each call's latency.
	intake := func(stop <-chan struct{}) []time.Duration {
		var lat []time.Duration
		for {
			select {
			case <-stop:
				return lat
			default:
			}
			start := time.Now()
			if _, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{}); err != nil {
				t.Error(err)
				return lat
			}
			lat = append(lat, time.Since(start))
		}
	}
	stop := make(chan struct{})
	time.AfterFunc(2*time.Second, func() { close(stop) })
	steady := intake(stop)

	stop = make(chan struct{})
	deleted := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: gone.ID}); err != nil {
			t.Error(err)
		}
		deleted <- time.Since(start)
		close(stop)
	}()
	during := intake(stop)
	took := <-deleted

	p99s, p99d := p99(steady), p99(during)
	t.Logf("intake p99 %v steady (%d calls), %v while deleting %d deliveries (%d calls, max %v); the delete took %v",
		p99s, len(steady), p99d, history, len(during), slices.Max(during), took)
	// The bound is loose (a shared machine, and the delete's own work
	// competes for it): it catches intake waiting for the whole delete.
	if limit := max(10*p99s, took/4, 50*time.Millisecond); slices.Max(during) > limit {
		t.Errorf("an intake waited %v while the webhook was deleted (steady p99 %v, the delete took %v)", slices.Max(during), p99s, took)
	}
}

func p99(lat []time.Duration) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)*99/100]
}
