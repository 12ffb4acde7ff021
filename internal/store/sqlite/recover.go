package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/hookd/hookd/internal/webhook"
)

const (
	// recoverFailedSQL makes failed deliveries pending, due now. Only
	// failed rows change, so a delivery pending, running or succeeded is
	// never queued twice.
	recoverFailedSQL = `UPDATE deliveries SET status = 0, due_at = ?, updated_at = ?
		WHERE webhook_id = ? AND status = 3 AND created_at >= ? AND created_at < ?`
	// recoverPendingSQL makes due now the pending deliveries that wait
	// for a retry (attempted, due later), attempts unchanged. Running rows
	// (status 1) are in flight and never match. A row changed after the
	// recovery's time is left for the next one: that is a row another
	// recovery, asked a moment later but run first by the one writer,
	// has just made due, and counting it again would count it twice.
	// The rows are searched in the queue index from now on, the queue's
	// waiting part, never among all the webhook's history, which the
	// planner, without statistics, would pick for the webhook_id term
	// (TestPlansUseKeys); `status < 2` is that partial index's own term.
	recoverPendingSQL = `UPDATE deliveries INDEXED BY deliveries_due SET due_at = ?, updated_at = ?
		WHERE status < 2 AND due_at > ? AND status = 0 AND attempts > 0 AND updated_at <= ?
			AND webhook_id = ? AND created_at >= ? AND created_at < ?`
	recoverStatusSQL = ` AND last_status_code BETWEEN ? AND ?`
)

// DeliveryRecover makes a webhook's failed deliveries of a window due now,
// and with p.Pending those waiting for a retry, one statement each, in
// one transaction; the one writer runs two recoveries one after the
// other, the second finding nothing left to do.
// It holds the writer meanwhile: 50,000 deliveries took 0.28 s on a
// 2-core VM, so intake waits that long; unlike retention it is not cut
// in batches, so the audit entry is written with every delivery it counts.
func (db *DB) DeliveryRecover(ctx context.Context, p webhook.DeliveryRecoverParams) (webhook.Recovered, error) {
	var r webhook.Recovered
	err := db.transact(ctx, func(tx *txn) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE organization_id = ? AND id = ?`, p.OrganizationID, p.WebhookID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("webhook")
		}
		if err != nil {
			return err
		}
		// The webhook is the organization's (checked above): its id alone
		// names its deliveries. Pending first: the failed rows it then
		// makes due are due now, not later, so neither statement sees the
		// other's rows.
		if p.Pending {
			if r.Pending, err = recoverExec(ctx, tx, recoverPendingSQL, p,
				micros(p.Now), micros(p.Now), micros(p.Now), micros(p.Now), key(p.WebhookID), micros(p.Since), micros(p.Until)); err != nil {
				return err
			}
		}
		if r.Failed, err = recoverExec(ctx, tx, recoverFailedSQL, p,
			micros(p.Now), micros(p.Now), key(p.WebhookID), micros(p.Since), micros(p.Until)); err != nil {
			return err
		}
		webhook.RecoveredCount(p, r)
		return insertAudit(ctx, tx, p.Audit, p.OrganizationID, p.WebhookID)
	})
	return r, err
}

// recoverExec runs one of the recovery's updates with p's status filter
// and returns how many rows it changed.
func recoverExec(ctx context.Context, tx *txn, q string, p webhook.DeliveryRecoverParams, args ...any) (int, error) {
	if p.LastStatus != nil {
		q += recoverStatusSQL
		args = append(args, p.LastStatus.Min, p.LastStatus.Max)
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
