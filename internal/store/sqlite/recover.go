package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math"

	"github.com/hookd/hookd/internal/webhook"
)

// recoverBatch is how many deliveries one transaction of a recovery
// makes due; a variable for tests.
var recoverBatch = 2000

const (
	// recoverPendingSQL picks the next batch of pending deliveries that
	// wait for a retry (attempted, due later), after the cursor (due_at,
	// seq). Running rows (status 1) are in flight and never match. A row
	// changed after the recovery's time is left for the next recovery:
	// it is one this recovery made due and that has been tried and
	// rescheduled since, or one another recovery, asked a moment later
	// but run first, has just made due; counting it again would count it
	// twice. The rows are searched in the queue index from now on, the
	// queue's waiting part, never among all the webhook's history, which
	// the planner, without statistics, would pick for the webhook_id term
	// (TestPlansUseKeys); `status < 2` is that partial index's own term.
	recoverPendingSQL = `SELECT seq, due_at FROM deliveries INDEXED BY deliveries_due
		WHERE (due_at, seq) > (?, ?) AND status < 2 AND status = 0 AND attempts > 0 AND updated_at <= ?
			AND webhook_id = ? AND created_at >= ? AND created_at < ? AND last_status_code BETWEEN ? AND ?
		ORDER BY due_at, seq LIMIT ?`
	// recoverFailedSQL picks the next batch of failed deliveries after
	// the cursor (created_at, seq), which starts at the window's start,
	// and leaves a row changed after the recovery's time as
	// recoverPendingSQL does: a delivery this recovery re-queued that has
	// failed again since is not taken twice.
	recoverFailedSQL = `SELECT seq, created_at FROM deliveries INDEXED BY deliveries_failed
		WHERE (created_at, seq) > (?, ?) AND webhook_id = ? AND status = 3 AND created_at < ? AND updated_at <= ?
			AND last_status_code BETWEEN ? AND ?
		ORDER BY created_at, seq LIMIT ?`
)

// DeliveryRecover makes a webhook's deliveries of a window due now, the
// pending ones waiting for a retry first (with p.Pending), then the
// failed ones, recoverBatch rows to a transaction: in one transaction
// a recovery holds the one writer throughout (50,000 failed deliveries:
// 0.41 s on a loaded 2-core VM, and an event created meanwhile waited as
// long; a million would hold it seconds, and intake would answer 503),
// where in batches of 2,000 the same took 0.38 s and such an event
// waited 49 ms at most. The audit entry is written with the first batch and its
// counts set again in each later batch's transaction, so that whenever
// the recovery stops (done, an error, a crash) the entry counts exactly
// the deliveries it made due. Each batch goes on from a cursor in index
// order, so rows that do not match are read once, not once a batch. Two
// recoveries at once take turns on the writer, and each row is made due
// by the one that got it first (see recoverPendingSQL).
func (db *DB) DeliveryRecover(ctx context.Context, p webhook.DeliveryRecoverParams) (webhook.Recovered, error) {
	var r webhook.Recovered
	pending := recoverCursor{after: micros(p.Now), seq: math.MaxInt64, done: !p.Pending}
	failed := recoverCursor{after: micros(p.Since), seq: -1}
	for first := true; first || !failed.done; first = false {
		next := r // the counts once this batch commits
		err := db.transact(ctx, func(tx *txn) error {
			if first {
				var one int
				err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE organization_id = ? AND id = ?`, p.OrganizationID, p.WebhookID).Scan(&one)
				if errors.Is(err, sql.ErrNoRows) {
					return notFound("webhook")
				}
				if err != nil {
					return err
				}
			}
			// The webhook is the organization's (checked above): its id
			// alone names its deliveries. Pending first: the failed rows
			// made due after are due now, not later, so neither part
			// sees the other's rows.
			if !pending.done {
				seqs, err := pending.next(ctx, tx, recoverPendingSQL, p, micros(p.Now), key(p.WebhookID), micros(p.Since), micros(p.Until))
				if err != nil {
					return err
				}
				next.Pending += len(seqs)
				if err := recoverUpdate(ctx, tx, `UPDATE deliveries SET due_at = ?, updated_at = ?`, seqs, p); err != nil {
					return err
				}
			} else {
				seqs, err := failed.next(ctx, tx, recoverFailedSQL, p, key(p.WebhookID), micros(p.Until), micros(p.Now))
				if err != nil {
					return err
				}
				next.Failed += len(seqs)
				if err := recoverUpdate(ctx, tx, `UPDATE deliveries SET status = 0, due_at = ?, updated_at = ?`, seqs, p); err != nil {
					return err
				}
			}
			webhook.RecoveredCount(p, next)
			if first {
				return insertAudit(ctx, tx, p.Audit, p.OrganizationID, p.WebhookID)
			}
			return updateAuditChanges(ctx, tx, p.Audit)
		})
		if err != nil {
			// What earlier batches made due stays due, and counted.
			return r, err
		}
		r = next
	}
	return r, nil
}

// recoverCursor is where a recovery's part stopped in its index order.
type recoverCursor struct {
	after, seq int64 // the last row's key column and seq
	done       bool
}

// next picks the batch after c with q, whose arguments are c's two,
// args, p's status filter and the batch's size, and moves c past it.
func (c *recoverCursor) next(ctx context.Context, tx *txn, q string, p webhook.DeliveryRecoverParams, args ...any) ([]int64, error) {
	lo, hi := 0, 999 // no filter: every code, 0 (no answer) included
	if p.LastStatus != nil {
		lo, hi = p.LastStatus.Min, p.LastStatus.Max
	}
	args = append(append([]any{c.after, c.seq}, args...), lo, hi, recoverBatch)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		if err := rows.Scan(&c.seq, &c.after); err != nil {
			return nil, err
		}
		seqs = append(seqs, c.seq)
	}
	c.done = len(seqs) < recoverBatch
	return seqs, rows.Err()
}

// recoverUpdate applies set, whose two arguments are p.Now, to the rows
// seqs names.
func recoverUpdate(ctx context.Context, tx *txn, set string, seqs []int64, p webhook.DeliveryRecoverParams) error {
	if len(seqs) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, set+` WHERE seq IN (SELECT value FROM json_each(?))`, micros(p.Now), micros(p.Now), seqList(seqs))
	return err
}
