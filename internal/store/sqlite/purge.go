package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/purge"
)

// The purger (a purge.Purger) removes the deliveries of deleted
// webhooks, with their attempts, in the background. WebhookDelete
// removes only the webhook row (with its audit entry) and wakes it with
// that webhook, so a delete answers at once however long the webhook's
// history: 100,000 deliveries took 7–13 s to purge beside intake at an
// event a millisecond, and the request used to wait for all of it. A
// pass purges the deliveries of the webhooks it is given (orphans) in
// batches (deleteInBatches). The first, started at the end of Migrate as
// hookd starts and run in the background, looks for every orphan, so it
// finds what a stop or a crash in the middle of an earlier pass left.
// One server uses the database, so what its crash left is found as it
// starts again, with no need for PostgreSQL's sweep every so often. A
// pass that fails is run again purgeRetry later, looking for every
// orphan too. Until a delivery is purged, the claim that finds it due
// deletes it instead of sending it (claimedWebhooks), and the API shows
// nothing of a deleted webhook.

// purgeRetry is how long the purger waits after a pass that failed (a
// full disk, say) before it looks again. A variable for the tests.
var purgeRetry = time.Minute

// startPurger starts the purger, at the end of Migrate (it reads the
// queue's tables).
func (db *DB) startPurger() {
	db.purger = purge.Start(db.orphans, db.purgeOrphans, purge.Every{Retry: purgeRetry}, db.purgeFailed)
}

// ReportPurgeErrors has the purger tell report of each pass that failed
// (it tries again a minute later), from the next Migrate on: the store
// has no log of its own.
func (db *DB) ReportPurgeErrors(report func(error)) { db.purgeFailed = report }

// orphan is a deleted webhook that still has deliveries.
type orphan struct{ org, id uuid.UUID }

// orphans lists the webhooks that have deliveries but no row, off the
// writer: one index seek per webhook with deliveries, from
// deliveries_webhook, and one lookup of its row.
func (db *DB) orphans(ctx context.Context) ([]orphan, error) {
	var (
		out   []orphan
		after = []byte{} // sorts before every key
	)
	for {
		var o orphan
		err := db.read.QueryRowContext(ctx, `SELECT d.webhook_id, e.organization_id FROM deliveries d
			JOIN events e ON e.seq = d.event_seq WHERE d.webhook_id > ? ORDER BY d.webhook_id LIMIT 1`, after).Scan(&o.id, &o.org)
		if errors.Is(err, sql.ErrNoRows) {
			return out, nil
		}
		if err != nil {
			return nil, translate(err)
		}
		after = key(o.id)
		var live bool
		if err := db.read.QueryRowContext(ctx, webhookLiveSQL, o.org, o.id).Scan(&live); err != nil {
			return nil, translate(err)
		}
		if !live {
			out = append(out, o)
		}
	}
}

const webhookLiveSQL = `SELECT EXISTS (SELECT 1 FROM webhooks WHERE organization_id = ? AND id = ?)`

// purgeOrphans deletes the deliveries of the orphans, with their
// attempts. Each batch checks again, in the writer, that the webhook is
// gone, so that what it deletes rests on nothing read before: intake
// writes a delivery only for a webhook it finds, in the same transaction,
// so a webhook seen gone has no deliveries to come.
func (db *DB) purgeOrphans(ctx context.Context, orphans []orphan) error {
	for _, o := range orphans {
		_, err := db.deleteInBatches(ctx, func(tx *txn, limit int) (int, error) {
			var live bool
			if err := tx.QueryRowContext(ctx, webhookLiveSQL, o.org, o.id).Scan(&live); err != nil || live {
				return 0, err
			}
			seqs, err := selectSeqs(ctx, tx, `SELECT seq FROM deliveries WHERE webhook_id = ? LIMIT ?`, key(o.id), limit)
			if err != nil || len(seqs) == 0 {
				return 0, err
			}
			return len(seqs), deleteDeliveries(ctx, tx, seqList(seqs))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// A purge (retention, a webhook's delete) goes one transaction at a time,
// each of a batch of rows with their children, sized so that its
// statements hold the one writer about deleteHold: a request that comes
// while one runs waits about that long at most (see writer.purge). A
// batch of a fixed number of rows could not promise that, as a row's cost
// varies with its children (a fan-out's event has a hundred deliveries)
// and with the machine. With batches of 200 deliveries (about 2.5 ms
// each here) intake's p99 was 3.0–3.5 ms while a webhook with 100,000
// went, 2.7–5.2 times its own; sized for 200 µs (10–20 deliveries),
// 0.9–1.6 ms, 1.1–1.3 times its own (TestWebhookDeleteStall, six runs
// each). 300 µs gave up to 2.5 times.
const (
	deleteHold = 200 * time.Microsecond
	// deleteBatchFirst is small because a row's cost is not known yet:
	// ten of a fan-out's events are a thousand deliveries, 10–20 ms here.
	// Batches double from there while they are quick.
	deleteBatchFirst = 10
	deleteBatchMax   = 1000
	// deleteQuiet is how long after another's write a purge still pauses
	// between its batches: intake at a thousand events a second leaves
	// gaps between its writes longer than a batch, and a purge that went
	// on back to back in them raised intake's p99 by about half (1.7–2.2
	// ms against 1.1–1.5, with batches of 300 µs).
	deleteQuiet = 100 * time.Millisecond
)

// nextDeleteBatch sizes the batch after one of limit rows whose
// statements took took: in proportion to the time, but at least a quarter
// and at most twice the last (one batch slowed by a garbage collection, or
// quick because its pages were in memory, is no rate to rely on), and
// between 1 and deleteBatchMax rows.
func nextDeleteBatch(limit int, took time.Duration) int {
	n := 2 * limit
	if took > 0 {
		n = min(n, max(limit/4, int(int64(limit)*int64(deleteHold)/int64(took))))
	}
	return max(1, min(n, deleteBatchMax))
}

// purgePace tells a purge whether to pause after a batch: while others
// write, within deleteQuiet of the last time it saw a group that was not
// its own (the writer counts them).
type purgePace struct {
	groups   uint64    // the writer's count after the last batch
	othersAt time.Time // when others last wrote, as far as it saw
}

// pause takes the writer's count after a batch and says whether to pause.
func (p *purgePace) pause(groups uint64, now time.Time) bool {
	if groups-p.groups > 1 { // more groups since the last batch than this one's own
		p.othersAt = now
	}
	p.groups = groups
	return now.Sub(p.othersAt) <= deleteQuiet
}

// deleteInBatches runs batch, which deletes at most limit rows and says
// how many, one transaction at a time until it deletes fewer, and returns
// how many it deleted. Each batch is sized by how long the last one's
// statements took (nextDeleteBatch). While others write (purgePace), a
// pause as long as those statements follows each batch, so the purge
// leaves the busy writer gaps as long as its batches; alone, it goes
// straight on.
//
// The batches commit without waiting for the disk (writer.purge): a
// batch lost to a power cut only leaves rows the next purge deletes, and
// every durable commit after it (any API write or intake) syncs its frames
// too.
func (db *DB) deleteInBatches(ctx context.Context, batch func(tx *txn, limit int) (int, error)) (int, error) {
	total, limit := 0, deleteBatchFirst
	pace := purgePace{groups: db.w.groups.Load()}
	for {
		var (
			n    int
			took time.Duration
		)
		err := db.w.purge(ctx, func(tx *txn) error {
			start := time.Now()
			var err error
			n, err = batch(tx, limit)
			took = time.Since(start)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < limit {
			return total, nil
		}
		limit = nextDeleteBatch(limit, took)
		if !pace.pause(db.w.groups.Load(), time.Now()) {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			continue
		}
		pause := time.NewTimer(took)
		select {
		case <-ctx.Done():
			pause.Stop()
			return total, ctx.Err()
		case <-pause.C:
		}
	}
}
