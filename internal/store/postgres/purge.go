package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store/purge"
)

// The purger (a purge.Purger, one on each node) removes the deliveries
// of deleted webhooks in the background, their attempts going with them
// by the deliveries' trigger. WebhookDelete removes only the webhook row
// (with its audit entry) and wakes it with that webhook, so a delete
// answers at once however long the webhook's history. A pass deletes the
// deliveries of the webhooks it is given (orphans) historyBatch at a
// time. The first, started at the end of Migrate as a node starts and
// run in the background, looks for every orphan, so it finds what a stop
// or a crash in the middle of an earlier pass left, on any node; so does
// one purgeSweep after the last, since nothing wakes the other nodes
// when one crashes in the middle of a pass. A pass that fails is run
// again purgeRetry later, looking for every orphan too. Until a delivery
// is purged, the claim that finds it due deletes it instead of sending
// it (see DeliveryClaim), and the API shows nothing of a deleted
// webhook.

// purgeRetry is how long the purger waits after a pass that failed
// before it looks again.
const purgeRetry = time.Minute

// purgeSweep is how long after a pass the purger looks again, unwoken: a
// search for orphans is one index seek per webhook with deliveries. A
// variable for the tests.
var purgeSweep = time.Hour

// startPurger starts the purger, at the end of Migrate (it reads the
// queue's tables).
func (db *DB) startPurger() {
	db.purger = purge.Start(db.orphans, db.purgeOrphans, purge.Every{Retry: purgeRetry, Sweep: purgeSweep}, db.purgeFailed)
}

// ReportPurgeErrors has the purger tell report of each pass that failed
// (it tries again a minute later), from the next Migrate on: the store
// has no log of its own.
func (db *DB) ReportPurgeErrors(report func(error)) { db.purgeFailed = report }

// orphan is a deleted webhook that still has deliveries.
type orphan struct{ org, id uuid.UUID }

// orphansSQL lists the webhooks that have deliveries but no row: a
// loose index scan of deliveries_webhook, one index seek per webhook with
// deliveries (the recursive part), and one lookup of its row.
const orphansSQL = `WITH RECURSIVE h AS (
		(SELECT organization_id, webhook_id FROM deliveries ORDER BY organization_id, webhook_id LIMIT 1)
		UNION ALL
		SELECT n.organization_id, n.webhook_id FROM h CROSS JOIN LATERAL (
			SELECT d.organization_id, d.webhook_id FROM deliveries d
			WHERE (d.organization_id, d.webhook_id) > (h.organization_id, h.webhook_id)
			ORDER BY d.organization_id, d.webhook_id LIMIT 1) n
	)
	SELECT h.organization_id, h.webhook_id FROM h
	WHERE NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.organization_id = h.organization_id AND w.id = h.webhook_id)`

func (db *DB) orphans(ctx context.Context) ([]orphan, error) {
	rows, err := db.pool.Query(ctx, orphansSQL)
	if err != nil {
		return nil, translate(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (orphan, error) {
		var o orphan
		err := r.Scan(&o.org, &o.id)
		return o, err
	})
	return out, translate(err)
}

// historyBatch bounds the deliveries one transaction of a purge deletes,
// and so the work, the locks and the WAL of each.
const historyBatch = 1000

// purgeQueueSQL deletes the pending and running deliveries of webhook
// $2, if it is gone, in one statement: they go first, so that a node that
// holds some of them and missed the delete's notification finds their
// leases lost at its next renewal, however long the history behind them.
// A delivery finished meanwhile no longer matches once locked, and goes
// with the history.
//
// purgeBatchSQL deletes up to $4 deliveries of webhook $2 after id $3,
// if it is gone, and says how many and the last id.
//
// Both check the webhook in their own statement, so that what they
// delete rests on nothing read before (intake writes a delivery only for
// a webhook it finds, and WebhookDelete waits for the intakes in flight:
// a webhook seen gone has no deliveries to come). Both lock the rows in
// id order, the order a completion, a release or a renewal locks a
// webhook's rows in (lockedDeliveries), so they cannot deadlock with
// those; a claim that finds such deliveries skips the ones locked here
// (see DeliveryClaim). Retention deletes an old event's finished
// deliveries in an order of its own: the two may deadlock, rarely, and
// the loser tries again at its next run. A row another node's purger
// deleted meanwhile is skipped.
const (
	purgeQueueSQL = `WITH b AS (
		SELECT organization_id, id FROM deliveries
		WHERE organization_id = $1 AND webhook_id = $2 AND status IN ('pending', 'running')
			AND NOT EXISTS (SELECT 1 FROM webhooks WHERE organization_id = $1 AND id = $2)
		ORDER BY id
		FOR UPDATE
	)
	DELETE FROM deliveries d USING b WHERE d.organization_id = b.organization_id AND d.id = b.id`
	purgeBatchSQL = `WITH b AS (
		SELECT organization_id, id FROM deliveries
		WHERE organization_id = $1 AND webhook_id = $2 AND id > $3
			AND NOT EXISTS (SELECT 1 FROM webhooks WHERE organization_id = $1 AND id = $2)
		ORDER BY id LIMIT $4
		FOR UPDATE
	), gone AS (
		DELETE FROM deliveries d USING b WHERE d.organization_id = b.organization_id AND d.id = b.id
	)
	SELECT count(*), (SELECT id FROM b ORDER BY id DESC LIMIT 1) FROM b`
)

// purgeOrphans deletes the deliveries of the orphans: for each, its
// queue, then the rest walked in id order historyBatch at a time, each
// batch its own transaction. The walk resumes after the last id seen
// rather than searching from the start again, which would step over
// every dead index entry left by the batches before, and ends at a batch
// that finds nothing (one that locked fewer than it looked at may have
// met rows deleted by others meanwhile).
func (db *DB) purgeOrphans(ctx context.Context, orphans []orphan) error {
	for _, o := range orphans {
		if _, err := db.pool.Exec(ctx, purgeQueueSQL, o.org, o.id); err != nil {
			return translate(err)
		}
		var after uuid.UUID // the nil UUID sorts first
		for {
			var (
				seen int
				last *uuid.UUID
			)
			if err := db.pool.QueryRow(ctx, purgeBatchSQL, o.org, o.id, after, historyBatch).Scan(&seen, &last); err != nil {
				return translate(err)
			}
			if seen == 0 || last == nil {
				break
			}
			after = *last
		}
	}
	return nil
}
