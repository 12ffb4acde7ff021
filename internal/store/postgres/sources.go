package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

const sourceCols = `organization_id, id, created_at, updated_at, kind, name, secret, environment_types`

// sourceScan returns the one codec a source row is read with: it opens
// the secret with keys, so none leaves the package sealed. A secret that
// cannot be opened fails the read, unless lenient (see OpenSource).
func sourceScan(keys *secrets.Keyring, lenient bool) func(rowScanner) (*webhook.Source, error) {
	return func(row rowScanner) (*webhook.Source, error) {
		s, err := scanSourceRow(row)
		if err != nil {
			return nil, err
		}
		if err := keys.OpenSource(s, lenient); err != nil {
			return nil, err
		}
		return s, nil
	}
}

// scanSourceRow decodes the columns; only sourceScan calls it.
func scanSourceRow(row rowScanner) (*webhook.Source, error) {
	var (
		s                    webhook.Source
		createdAt, updatedAt time.Time
		rules                []byte
	)
	if err := row.Scan(&s.OrganizationID, &s.ID, &createdAt, &updatedAt, &s.Kind, &s.Name, &s.Secret, &rules); err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = createdAt.UTC(), updatedAt.UTC()
	s.EnvironmentTypes = []webhook.EnvironmentRule{}
	if err := json.Unmarshal(rules, &s.EnvironmentTypes); err != nil {
		return nil, fmt.Errorf("postgres: source %s: bad environment_types: %w", s.ID, err)
	}
	return &s, nil
}

// environmentRules encodes a source's rules; none is stored as [].
func environmentRules(rules []webhook.EnvironmentRule) string {
	if len(rules) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(rules) // strings always marshal
	return string(b)
}

// sourceCountLock is the first key of the advisory lock SourceCreate
// counts under, as webhookCountLock is WebhookCreate's.
const sourceCountLock = 0x686b6473 // "hkds"

// SourceCreate counts and inserts under a per-organization advisory lock,
// as WebhookCreate does, so that two nodes cannot both count max-1 and
// both insert. The audit entry is written in the same transaction.
func (db *DB) SourceCreate(ctx context.Context, src *webhook.Source, maxPerOrg int, audit *webhook.AuditEntry) error {
	sealed, err := db.keys.SealSource(src)
	if err != nil {
		return err
	}
	return db.transact(ctx, func(tx pgx.Tx) error {
		if maxPerOrg > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, sourceCountLock, src.OrganizationID.String()); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM sources WHERE organization_id = $1`, src.OrganizationID).Scan(&n); err != nil {
				return err
			}
			if n >= maxPerOrg {
				return webhook.TooManySources(maxPerOrg)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO sources (`+sourceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			src.OrganizationID, src.ID, ts(src.CreatedAt), ts(src.UpdatedAt), string(src.Kind), text(src.Name), sealed.Secret,
			environmentRules(src.EnvironmentTypes))
		if webhook.ErrorCode(translate(err)) == webhook.EConflict {
			return webhook.Errorf(webhook.EConflict, "source %s already exists", src.ID)
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, src.OrganizationID, src.ID)
	})
}

func (db *DB) SourceGet(ctx context.Context, ref webhook.SourceRef) (*webhook.Source, error) {
	s, err := sourceScan(db.keys, true)(db.pool.QueryRow(ctx, `SELECT `+sourceCols+` FROM sources
		WHERE organization_id = $1 AND id = $2`, ref.OrganizationID, ref.ID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("source", ref.ID)
	}
	if err != nil {
		return nil, translate(err)
	}
	return s, nil
}

func (db *DB) SourceList(ctx context.Context, orgID uuid.UUID) ([]*webhook.Source, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sourceCols+` FROM sources
		WHERE organization_id = $1 ORDER BY created_at, id`, orgID)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, sourceScan(db.keys, true))
}

// sourceForChange locks the row c names (SELECT … FOR UPDATE) before
// c.Apply sees it, so a concurrent edit either committed before and is
// seen, or waits for this one; it returns the source as Apply left it
// and the audit entry it returned. An edit must see its secret opened
// (it writes it back sealed anew); a delete need not (lenient), so a
// source whose key is gone can still be deleted, its secret cleared for
// c.Apply.
func (db *DB) sourceForChange(ctx context.Context, tx pgx.Tx, c webhook.SourceChange, lenient bool) (*webhook.Source, *webhook.AuditEntry, error) {
	src, err := sourceScan(db.keys, lenient)(tx.QueryRow(ctx, `SELECT `+sourceCols+` FROM sources
		WHERE organization_id = $1 AND id = $2 FOR UPDATE`, c.Ref.OrganizationID, c.Ref.ID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, notFound("source", c.Ref.ID)
	}
	if err != nil {
		return nil, nil, err
	}
	audit, err := c.Run(src)
	return src, audit, err
}

// SourceUpdate applies c to the row as sourceForChange locks it. It
// leaves created_at alone: no edit changes it.
func (db *DB) SourceUpdate(ctx context.Context, c webhook.SourceChange) (*webhook.Source, error) {
	var src *webhook.Source
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var audit *webhook.AuditEntry
		var err error
		src, audit, err = db.sourceForChange(ctx, tx, c, false)
		if err != nil {
			return err
		}
		sealed, err := db.keys.SealSource(src)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sources SET updated_at = $3, kind = $4, name = $5, secret = $6, environment_types = $7
			WHERE organization_id = $1 AND id = $2`,
			c.Ref.OrganizationID, c.Ref.ID, ts(src.UpdatedAt), string(src.Kind), text(src.Name), sealed.Secret, environmentRules(src.EnvironmentTypes)); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, c.Ref.OrganizationID, c.Ref.ID)
	})
	if err != nil {
		return nil, err
	}
	return src, nil
}

// SourceDelete removes the source once c.Apply has decided on the row
// as sourceForChange locks it.
func (db *DB) SourceDelete(ctx context.Context, c webhook.SourceChange) error {
	return db.transact(ctx, func(tx pgx.Tx) error {
		_, audit, err := db.sourceForChange(ctx, tx, c, true)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sources WHERE organization_id = $1 AND id = $2`, c.Ref.OrganizationID, c.Ref.ID); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, c.Ref.OrganizationID, c.Ref.ID)
	})
}

// SourceSecrets returns every source with its stored secret, across
// organizations: what `hookd migrate --reencrypt` rewrites.
func (db *DB) SourceSecrets(ctx context.Context) ([]*webhook.Source, error) {
	rows, err := db.pool.Query(ctx, `SELECT organization_id, id, secret FROM sources ORDER BY created_at, id`)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, func(row rowScanner) (*webhook.Source, error) {
		var s webhook.Source
		return &s, row.Scan(&s.OrganizationID, &s.ID, &s.Secret)
	})
}

// SourceSetSecret replaces a source's stored secret if it still is was's,
// so that a re-encryption never undoes an edit another node made.
func (db *DB) SourceSetSecret(ctx context.Context, was *webhook.Source, secret string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE sources SET secret = $3 WHERE organization_id = $1 AND id = $2 AND secret = $4`,
		was.OrganizationID, was.ID, secret, was.Secret)
	if err != nil {
		return false, translate(err)
	}
	return tag.RowsAffected() == 1, nil
}
