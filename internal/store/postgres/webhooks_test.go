package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// A delete that fails after the history went keeps the webhook and its
// queue, and the next one leaves no delivery nor attempt behind.
func TestWebhookDeleteFailedKeepsQueue(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	storetest.WebhookDeleteFailedKeepsQueue(t, db)
	waitPurged(t, db)
	var n int
	if err := db.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM deliveries) + (SELECT count(*) FROM attempts)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d deliveries and attempts left after the delete (%v)", n, err)
	}
}

// Deleting a webhook with a long history does not hold up intake of
// events that match it: intakeLock, which intake waits on, is held only
// for the delete's one short transaction, and the purge after it takes
// nothing intake waits on. (Before migration 0040 intake also waited on
// the deliveries a delete removed, and this test failed on a delete in
// one transaction; TestWebhookDeleteInBatches checks the purge's
// batches.)
func TestWebhookDeleteKeepsIntakeFlowing(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 deliveries")
	}
	db := openSchema(t, pgtest.URL(t))
	db.callerClock = false
	ctx := context.Background()
	org := uuid.New()
	// Events match both webhooks: one is deleted, the other stays.
	gone, kept := newHook(org), newHook(org)
	storeHooks(t, db, gone, kept)
	const history = 100_000
	writeHistory(t, db, org, gone.ID, history)
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
	var answered time.Duration
	go func() {
		defer close(stop)
		start := time.Now()
		if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: gone.ID}); err != nil {
			t.Error(err)
		}
		answered = time.Since(start)
		// Intake is measured until the purge is done too (asked cheaply:
		// counting what is left competed with intake for the machine).
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
			var left bool
			if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries WHERE organization_id = $1 AND webhook_id = $2)`,
				org, gone.ID).Scan(&left); err != nil {
				t.Error(err)
				break
			}
			if !left || time.Now().After(deadline) {
				break
			}
		}
		deleted <- time.Since(start)
	}()
	during := intake(stop)
	took := <-deleted
	if len(steady) == 0 || len(during) == 0 {
		t.Fatalf("%d intakes before the delete, %d during it", len(steady), len(during))
	}

	p99s, p99d := p99(steady), p99(during)
	t.Logf("intake p99 %v steady (%d calls), %v while deleting %d deliveries (%d calls, max %v); the delete answered in %v, its deliveries were gone after %v",
		p99s, len(steady), p99d, history, len(during), slices.Max(during), answered, took)
	// The bound is loose (a shared machine, and the delete's own work
	// competes for it): it catches intake waiting for the whole delete.
	if limit := max(10*p99s, took/4, 50*time.Millisecond); slices.Max(during) > limit {
		t.Errorf("an intake waited %v while the webhook was deleted (steady p99 %v, the delete took %v)", slices.Max(during), p99s, took)
	}
}

// writeHistory stores n finished deliveries of webhookID, each with its
// event and one attempt. Written in SQL, not through the store: the
// history's shape matters to the tests that use it, not how it came.
func writeHistory(t *testing.T, db *DB, org, webhookID uuid.UUID, n int) {
	t.Helper()
	_, err := db.pool.Exec(context.Background(), `
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
		org, webhookID, t0, n)
	if err != nil {
		t.Fatal(err)
	}
}

// A deleted webhook's deliveries go in transactions of at most
// historyBatch deliveries each (the purger's), so that none holds its
// rows' locks, holds back VACUUM or writes WAL for the whole history at
// once; the transaction that deletes the webhook row deletes none, and
// the queue goes first, before the history.
func TestWebhookDeleteInBatches(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	gone, kept := newHook(org), newHook(org)
	storeHooks(t, db, gone, kept)
	const history = 2*historyBatch + historyBatch/2
	writeHistory(t, db, org, gone.ID, history)
	writeHistory(t, db, org, kept.ID, 10)
	const queue = 3 // pending deliveries of each webhook
	for range queue {
		if _, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	// A statement trigger counts the deliveries each transaction deletes.
	if _, err := db.pool.Exec(ctx, `
		CREATE TABLE deleted_in (tx bigint NOT NULL, n bigint NOT NULL);
		CREATE FUNCTION count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO deleted_in SELECT txid_current(), count(*) FROM gone;
			RETURN NULL;
		END $$;
		CREATE TRIGGER count_deleted AFTER DELETE ON deliveries
			REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION count_deleted()`); err != nil {
		t.Fatal(err)
	}

	if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: gone.ID}); err != nil {
		t.Fatal(err)
	}
	waitPurged(t, db)
	// Each transaction's count, in the order they ran.
	var perTx []int64
	var left int
	if err := db.pool.QueryRow(ctx, `
		SELECT coalesce(array_agg(n ORDER BY tx), '{}'), (SELECT count(*) FROM deliveries)
		FROM (SELECT tx, sum(n) AS n FROM deleted_in GROUP BY tx) per_tx`).Scan(&perTx, &left); err != nil {
		t.Fatal(err)
	}
	t.Logf("deliveries deleted per transaction: %v", perTx)
	var total int64
	for _, n := range perTx {
		total += n
		if n > historyBatch {
			t.Errorf("one transaction deleted %d deliveries, want at most %d", n, historyBatch)
		}
	}
	if total != history+queue || left != 10+queue {
		t.Fatalf("%d deliveries deleted and %d left, want %d and the other webhook's %d", total, left, history+queue, 10+queue)
	}
	if len(perTx) < history/historyBatch+2 || perTx[0] != queue {
		t.Errorf("deliveries deleted per transaction %v, want the queue's %d first, then at least %d batches", perTx, queue, history/historyBatch+1)
	}
}

func p99(lat []time.Duration) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)*99/100]
}
