package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/webhook"
)

const auditCols = `organization_id, id, created_at, actor_kind, actor_id, action, resource_id, resource_name, changes`

// auditArgs prepares e for the row changed (organization and resource)
// and returns its columns in auditCols order. A nil e gives nil.
func auditArgs(e *webhook.AuditEntry, orgID, resourceID uuid.UUID) ([]any, error) {
	if e == nil {
		return nil, nil
	}
	if e.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		e.ID = id
	}
	e.OrganizationID, e.ResourceID = orgID, resourceID
	changes := []byte("[]")
	if len(e.Changes) > 0 {
		var err error
		if changes, err = json.Marshal(e.Changes); err != nil {
			return nil, fmt.Errorf("postgres: audit changes: %w", err)
		}
	}
	return []any{e.OrganizationID, e.ID, ts(e.CreatedAt), string(e.Actor.Kind), text(e.Actor.ID), string(e.Action),
		e.ResourceID, text(e.ResourceName), string(changes)}, nil
}

// insertAudit writes e in tx, the transaction of the change it records.
func insertAudit(ctx context.Context, tx pgx.Tx, e *webhook.AuditEntry, orgID, resourceID uuid.UUID) error {
	args, err := auditArgs(e, orgID, resourceID)
	if err != nil || args == nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_entries (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, args...)
	if webhook.ErrorCode(translate(err)) == webhook.EConflict {
		return webhook.Errorf(webhook.EConflict, "audit entry %s already exists", e.ID)
	}
	return err
}

// disableSQL disables the webhook of delivery ($1, $2) with reason $3 if
// it is still enabled, dated $12 by webhook.EditedAt's rule (see
// webhook.DisabledWebhook), and then only records the audit entry ($4…$10,
// the organization and webhook coming from the rows themselves). It
// returns a row, the webhook it disabled and its new updated_at, or none.
// The WHERE on enabled is re-checked on the newest row version, so of two
// nodes disabling the same webhook at once only one records an entry (and
// reports the disable).
const disableSQL = `WITH w AS (
	UPDATE webhooks w SET enabled = false, disabled_reason = $3,
		updated_at = greatest(w.updated_at + interval '1 microsecond', $12)
	FROM deliveries d
	WHERE d.organization_id = $1 AND d.id = $2 AND d.lease = $11
		AND w.organization_id = d.organization_id AND w.id = d.webhook_id AND w.enabled
	RETURNING w.organization_id, w.id, w.updated_at
), a AS (
	INSERT INTO audit_entries (` + auditCols + `)
	SELECT w.organization_id, $4, $5, $6, $7, $8, w.id, $9, $10 FROM w
)
SELECT organization_id, id, updated_at FROM w`

// queueDisable adds to b the statement that disables the webhook of o's
// delivery, audited, if o says to; the webhook is added to disabled as
// b's results are read, if it was still enabled.
func queueDisable(b *pgx.Batch, o webhook.Outcome, disabled *[]webhook.DisabledWebhook) error {
	if o.DisableReason == "" {
		return nil
	}
	a := o.Attempt
	ended := ts(a.CreatedAt.Add(a.Duration))
	// The attempt's URL is the webhook's as claimed, masked: the name of
	// what hookd gave up on.
	e := webhook.DisabledByHookdAudit(ended, a.TargetURL, o.DisableReason)
	args, err := auditArgs(e, a.OrganizationID, a.WebhookID)
	if err != nil {
		return err
	}
	b.Queue(disableSQL, a.OrganizationID, a.DeliveryID, text(o.DisableReason),
		args[1], args[2], args[3], args[4], args[5], args[7], args[8], o.Lease, ended).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var d webhook.DisabledWebhook
			if err := rows.Scan(&d.OrganizationID, &d.ID, &d.UpdatedAt); err != nil {
				return err
			}
			d.UpdatedAt = d.UpdatedAt.UTC()
			*disabled = append(*disabled, d)
		}
		return rows.Err()
	})
	return nil
}

// AuditList returns the organization's audit entries, newest first.
func (db *DB) AuditList(ctx context.Context, p webhook.AuditListParams) ([]*webhook.AuditEntry, error) {
	var q query
	q.and("organization_id = $%d", p.OrganizationID)
	if p.Before != uuid.Nil {
		q.and("id < $%d", p.Before)
	}
	rows, err := db.pool.Query(ctx, q.sql(`SELECT `+auditCols+` FROM audit_entries`, `ORDER BY id DESC`, p.Limit), q.args...)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanAudit)
}

func scanAudit(row rowScanner) (*webhook.AuditEntry, error) {
	var (
		e       webhook.AuditEntry
		created time.Time
		changes []byte
	)
	if err := row.Scan(&e.OrganizationID, &e.ID, &created, &e.Actor.Kind, &e.Actor.ID, &e.Action,
		&e.ResourceID, &e.ResourceName, &changes); err != nil {
		return nil, err
	}
	e.CreatedAt = created.UTC()
	e.Changes = []webhook.Change{}
	if err := json.Unmarshal(changes, &e.Changes); err != nil {
		return nil, fmt.Errorf("postgres: audit entry %s: bad changes: %w", e.ID, err)
	}
	return &e, nil
}
