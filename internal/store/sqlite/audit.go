package sqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

const auditColumns = `organization_id, id, created_at, actor_kind, actor_id, action, resource_id, resource_name, changes`

// insertAudit writes e in tx, the transaction of the change it records,
// for the organization and resource of the row changed. A nil e is
// nothing to record.
func insertAudit(ctx context.Context, tx *txn, e *webhook.AuditEntry, orgID, resourceID uuid.UUID) error {
	if e == nil {
		return nil
	}
	if e.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		e.ID = id
	}
	e.OrganizationID, e.ResourceID = orgID, resourceID
	changes, err := marshalChanges(e.Changes)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_entries (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.OrganizationID, e.ID, micros(e.CreatedAt), e.Actor.Kind, webhook.StoredText(e.Actor.ID), e.Action, e.ResourceID,
		webhook.StoredText(e.ResourceName), changes)
	err = translate(err)
	if webhook.ErrorCode(err) == webhook.EConflict {
		return webhook.Errorf(webhook.EConflict, "audit entry %s already exists", e.ID)
	}
	return err
}

// updateAuditChanges stores e's changes again, in the transaction of a
// later part of the change it records (a recovery's batch). A nil e is
// nothing to record.
func updateAuditChanges(ctx context.Context, tx *txn, e *webhook.AuditEntry) error {
	if e == nil {
		return nil
	}
	changes, err := marshalChanges(e.Changes)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE audit_entries SET changes = ? WHERE organization_id = ? AND id = ?`, changes, e.OrganizationID, e.ID)
	return err
}

// marshalChanges encodes changes; none is stored as [].
func marshalChanges(cs []webhook.Change) (string, error) {
	if len(cs) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(cs)
	if err != nil {
		return "", fmt.Errorf("sqlite: audit changes: %w", err)
	}
	return string(b), nil
}

// AuditList returns the organization's audit entries, newest first.
func (db *DB) AuditList(ctx context.Context, p webhook.AuditListParams) ([]*webhook.AuditEntry, error) {
	q := `SELECT ` + auditColumns + ` FROM audit_entries WHERE organization_id = ?`
	args := []any{p.OrganizationID}
	if p.Before != uuid.Nil {
		q += ` AND id < ?`
		args = append(args, p.Before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(p.Limit))
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []*webhook.AuditEntry{}
	for rows.Next() {
		var (
			e       webhook.AuditEntry
			created int64
			changes string
		)
		if err := rows.Scan(&e.OrganizationID, &e.ID, &created, &e.Actor.Kind, &e.Actor.ID, &e.Action,
			&e.ResourceID, &e.ResourceName, &changes); err != nil {
			return nil, translate(err)
		}
		e.CreatedAt = fromMicros(created)
		e.Changes = []webhook.Change{}
		if err := json.Unmarshal([]byte(changes), &e.Changes); err != nil {
			return nil, fmt.Errorf("sqlite: audit entry %s: bad changes: %w", e.ID, err)
		}
		out = append(out, &e)
	}
	return out, translate(rows.Err())
}
