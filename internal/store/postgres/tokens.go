package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/hookd/hookd/internal/webhook"
	"github.com/jackc/pgx/v5"
)

const tokenCols = `id, organization_id, name, hash, created_at, last_used_at, revoked_at`

func scanToken(row rowScanner) (*webhook.Token, error) {
	var (
		t                   webhook.Token
		createdAt           time.Time
		lastUsed, revokedAt *time.Time
	)
	if err := row.Scan(&t.ID, &t.OrganizationID, &t.Name, &t.Hash, &createdAt, &lastUsed, &revokedAt); err != nil {
		return nil, err
	}
	t.CreatedAt = createdAt.UTC()
	t.LastUsedAt = fromNullTime(lastUsed)
	t.RevokedAt = fromNullTime(revokedAt)
	return &t, nil
}

func (db *DB) TokenCreate(ctx context.Context, t *webhook.Token, audit *webhook.AuditEntry) error {
	return db.transact(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO api_tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			t.ID, t.OrganizationID, t.Name, t.Hash, ts(t.CreatedAt), nullTime(t.LastUsedAt), nullTime(t.RevokedAt))
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, t.OrganizationID, t.ID)
	})
}

func (db *DB) TokenGetByHash(ctx context.Context, hash []byte) (*webhook.Token, error) {
	t, err := scanToken(db.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens
		WHERE hash = $1 AND revoked_at IS NULL`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		// The hash is a credential: the message must not echo it.
		return nil, webhook.Errorf(webhook.ENotFound, "token not found")
	}
	if err != nil {
		return nil, translate(err)
	}
	return t, nil
}

func (db *DB) TokenList(ctx context.Context, orgID uuid.UUID) ([]*webhook.Token, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+tokenCols+` FROM api_tokens
		WHERE organization_id = $1 ORDER BY created_at, id`, orgID)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanToken)
}

// TokenRevoke keeps the first revocation time when called twice, and
// records an audit entry only the first time. The row is locked first so
// that of two concurrent revocations exactly one is audited.
func (db *DB) TokenRevoke(ctx context.Context, id uuid.UUID, at time.Time, audit *webhook.AuditEntry) error {
	return db.transact(ctx, func(tx pgx.Tx) error {
		var (
			org     uuid.UUID
			name    string
			revoked *time.Time
		)
		err := tx.QueryRow(ctx, `SELECT organization_id, name, revoked_at FROM api_tokens WHERE id = $1 FOR UPDATE`, id).
			Scan(&org, &name, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("token", id)
		}
		if err != nil || revoked != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE api_tokens SET revoked_at = $2 WHERE id = $1`, id, ts(at)); err != nil {
			return err
		}
		if audit != nil {
			audit.ResourceName = name
		}
		return insertAudit(ctx, tx, audit, org, id)
	})
}

func (db *DB) TokenTouch(ctx context.Context, id uuid.UUID, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, id, ts(at))
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("token", id)
	}
	return nil
}
