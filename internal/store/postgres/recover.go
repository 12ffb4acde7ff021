package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/webhook"
)

// DeliveryRecover makes a webhook's failed deliveries of a window due now
// in one statement, and with p.Pending those waiting for a retry in
// another. Two nodes recovering at once each lock the rows they change;
// the second re-checks `status = 'failed'` on the row the first
// committed, finds it pending and skips it, so each delivery is re-queued
// once, and never one that is running or succeeded.
func (db *DB) DeliveryRecover(ctx context.Context, p webhook.DeliveryRecoverParams) (webhook.Recovered, error) {
	var r webhook.Recovered
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM webhooks WHERE organization_id = $1 AND id = $2`, p.OrganizationID, p.WebhookID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("webhook", p.WebhookID)
		}
		if err != nil {
			return err
		}
		// A nil filter is the range of every code, 0 (no answer) included.
		lo, hi := 0, 999
		if p.LastStatus != nil {
			lo, hi = p.LastStatus.Min, p.LastStatus.Max
		}
		// Pending first: the failed rows made due below are due now, not
		// later, so neither statement sees the other's rows.
		if p.Pending {
			// A pending row stays pending, so retention, which keeps the
			// events of unfinished deliveries, needs no lock here. Running
			// rows are in flight and never match. The row's due time is
			// compared twice: with now() (the transaction's start), which
			// the queue index can search by, and with clock_timestamp(),
			// read again when a row another recovery held is re-checked
			// after its commit. That one made the row due at its own
			// now(), before that commit, so it is not due later than the
			// time of the re-check and is not counted twice, even by a
			// recovery whose transaction began first.
			tag, err := tx.Exec(ctx, `UPDATE deliveries SET due_at = coalesce($8::timestamptz, now()), updated_at = $1
				WHERE status IN ('pending', 'running') AND due_at > coalesce($8::timestamptz, now())
					AND due_at > coalesce($8::timestamptz, clock_timestamp())
					AND status = 'pending' AND attempts > 0
					AND organization_id = $2 AND webhook_id = $3 AND created_at >= $4 AND created_at < $5
					AND last_status_code BETWEEN $6 AND $7`,
				ts(p.Now), p.OrganizationID, p.WebhookID, ts(p.Since), ts(p.Until), lo, hi, db.clock(p.Now))
			if err != nil {
				return err
			}
			r.Pending = int(tag.RowsAffected())
		}
		// The deliveries' events are locked FOR KEY SHARE first, so that
		// retention, which may be deleting them with their finished
		// deliveries, sees these pending or is seen to have deleted them
		// (see deleteBatch); in retention's order, or the two could each
		// hold an event the other waits for. Only deliveries of events so
		// locked are re-queued: one that failed since the lock's snapshot
		// waits for the next recovery. They are due now on the database's
		// clock, as a retry is (see DeliveryRetry).
		tag, err := tx.Exec(ctx, `WITH ev AS MATERIALIZED (
				SELECT e.organization_id, e.id FROM events e
				WHERE (e.organization_id, e.id) IN (SELECT organization_id, event_id FROM deliveries
					WHERE organization_id = $2 AND webhook_id = $3 AND status = 'failed' AND created_at >= $4 AND created_at < $5
						AND last_status_code BETWEEN $6 AND $7)
				ORDER BY e.created_at, e.organization_id, e.id
				FOR KEY SHARE OF e
			)
			UPDATE deliveries SET status = 'pending', due_at = coalesce($8::timestamptz, now()), updated_at = $1
			WHERE organization_id = $2 AND webhook_id = $3 AND status = 'failed' AND created_at >= $4 AND created_at < $5
				AND last_status_code BETWEEN $6 AND $7
				AND (organization_id, event_id) IN (SELECT organization_id, id FROM ev)`,
			ts(p.Now), p.OrganizationID, p.WebhookID, ts(p.Since), ts(p.Until), lo, hi, db.clock(p.Now))
		if err != nil {
			return err
		}
		r.Failed = int(tag.RowsAffected())
		webhook.RecoveredCount(p, r)
		return insertAudit(ctx, tx, p.Audit, p.OrganizationID, p.WebhookID)
	})
	if err != nil {
		return webhook.Recovered{}, err
	}
	if r.Total() > 0 {
		db.notifier.notify()
	}
	return r, nil
}
