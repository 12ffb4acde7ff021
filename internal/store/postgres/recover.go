package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/webhook"
)

// DeliveryRecover makes a webhook's failed deliveries of a window due now
// in one statement. Two nodes recovering at once each lock the rows they
// change; the second re-checks `status = 'failed'` on the row the first
// committed, finds it pending and skips it, so each delivery is re-queued
// once, and never one that is pending, running or succeeded.
func (db *DB) DeliveryRecover(ctx context.Context, p webhook.DeliveryRecoverParams) (int, error) {
	var n int64
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
		n = tag.RowsAffected()
		webhook.RecoveredCount(p.Audit, int(n))
		return insertAudit(ctx, tx, p.Audit, p.OrganizationID, p.WebhookID)
	})
	if err != nil {
		return 0, err
	}
	if n > 0 {
		db.notifier.notify()
	}
	return int(n), nil
}
