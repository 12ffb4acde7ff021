package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/hookd/hookd/internal/webhook"
)

const tokenColumns = `id, organization_id, name, hash, created_at, last_used_at, revoked_at`

func scanToken(row scanner) (*webhook.Token, error) {
	var (
		t             webhook.Token
		created       int64
		used, revoked sql.NullInt64
	)
	if err := row.Scan(&t.ID, &t.OrganizationID, &t.Name, &t.Hash, &created, &used, &revoked); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = fromMicros(created), fromNullMicros(used), fromNullMicros(revoked)
	return &t, nil
}

// TokenCreate stores t and its audit entry.
func (db *DB) TokenCreate(ctx context.Context, t *webhook.Token, audit *webhook.AuditEntry) error {
	return db.transact(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.OrganizationID, t.Name, t.Hash, micros(t.CreatedAt), nullMicros(t.LastUsedAt), nullMicros(t.RevokedAt))
		if webhook.ErrorCode(translate(err)) == webhook.EConflict {
			return webhook.Errorf(webhook.EConflict, "token already exists")
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, t.OrganizationID, t.ID)
	})
}

// TokenGetByHash returns the unrevoked token with that hash.
func (db *DB) TokenGetByHash(ctx context.Context, hash []byte) (*webhook.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx,
		`SELECT `+tokenColumns+` FROM api_tokens WHERE hash = ? AND revoked_at IS NULL`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("token")
	}
	return t, translate(err)
}

// TokenList returns the organization's tokens, revoked ones included, oldest first.
func (db *DB) TokenList(ctx context.Context, orgID uuid.UUID) ([]*webhook.Token, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT `+tokenColumns+` FROM api_tokens WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []*webhook.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, t)
	}
	return out, translate(rows.Err())
}

// TokenRevoke revokes a token. Revoking again keeps the first time, which
// is when the token stopped working, and records no second audit entry.
func (db *DB) TokenRevoke(ctx context.Context, id uuid.UUID, at time.Time, audit *webhook.AuditEntry) error {
	return db.transact(ctx, func(tx *txn) error {
		var (
			org     uuid.UUID
			name    string
			revoked sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT organization_id, name, revoked_at FROM api_tokens WHERE id = ?`, id).Scan(&org, &name, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("token")
		}
		if err != nil || revoked.Valid {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ?`, micros(at), id); err != nil {
			return err
		}
		if audit != nil {
			audit.ResourceName = name
		}
		return insertAudit(ctx, tx, audit, org, id)
	})
}

// TokenTouch records that the token was used at the given time.
func (db *DB) TokenTouch(ctx context.Context, id uuid.UUID, at time.Time) error {
	// Lazy: a power cut costs only a timestamp, and the caller (throttled
	// per token) should not wait for the disk.
	return db.transactLazy(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, micros(at), id)
		return affectedOne(res, err, "token")
	})
}
