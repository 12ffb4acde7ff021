package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/webhook"
)

// DeliveryRecover makes a webhook's failed deliveries of a window due now
// in one UPDATE. Two nodes recovering at once each lock the rows they
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
		// Each delivery's event is locked FOR KEY SHARE, as DeliveryRetry
		// does, for retention (see deleteBatch).
		tag, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'pending', due_at = $1, updated_at = $1
			WHERE organization_id = $2 AND webhook_id = $3 AND status = 'failed' AND created_at >= $4 AND created_at < $5
			AND last_status_code BETWEEN $6 AND $7
			AND EXISTS (SELECT 1 FROM events e WHERE e.organization_id = deliveries.organization_id AND e.id = deliveries.event_id FOR KEY SHARE)`,
			ts(p.Now), p.OrganizationID, p.WebhookID, ts(p.Since), ts(p.Until), lo, hi)
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
