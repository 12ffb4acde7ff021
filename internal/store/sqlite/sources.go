package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

const sourceColumns = `organization_id, id, created_at, updated_at, kind, name, secret, environment_types`

// scanSource reads a source and opens its secret with keys: the one way
// a source leaves the database, so none leaves it sealed. A secret that
// cannot be opened fails the read, unless lenient (see OpenSource).
func scanSource(row scanner, keys *secrets.Keyring, lenient bool) (*webhook.Source, error) {
	var (
		s                webhook.Source
		created, updated int64
		rules            string
	)
	if err := row.Scan(&s.OrganizationID, &s.ID, &created, &updated, &s.Kind, &s.Name, &s.Secret, &rules); err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = fromMicros(created), fromMicros(updated)
	s.EnvironmentTypes = []webhook.EnvironmentRule{}
	if err := json.Unmarshal([]byte(rules), &s.EnvironmentTypes); err != nil {
		return nil, fmt.Errorf("sqlite: source %s: bad environment_types: %w", s.ID, err)
	}
	if err := keys.OpenSource(&s, lenient); err != nil {
		return nil, err
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

// SourceCreate stores src and its audit entry. The count and the insert
// share one write transaction, and SQLite has one writer, so no other
// create slips in between.
func (db *DB) SourceCreate(ctx context.Context, src *webhook.Source, maxPerOrg int, audit *webhook.AuditEntry) error {
	sealed, err := db.keys.SealSource(src)
	if err != nil {
		return err
	}
	return db.transact(ctx, func(tx *txn) error {
		if maxPerOrg > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sources WHERE organization_id = ?`, src.OrganizationID).Scan(&n); err != nil {
				return err
			}
			if n >= maxPerOrg {
				return webhook.TooManySources(maxPerOrg)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sources (`+sourceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			src.OrganizationID, src.ID, micros(src.CreatedAt), micros(src.UpdatedAt), src.Kind, src.Name, sealed.Secret,
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

// SourceGet returns one of the organization's sources.
func (db *DB) SourceGet(ctx context.Context, ref webhook.SourceRef) (*webhook.Source, error) {
	s, err := scanSource(db.read.QueryRowContext(ctx,
		`SELECT `+sourceColumns+` FROM sources WHERE organization_id = ? AND id = ?`, ref.OrganizationID, ref.ID), db.keys, true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("source")
	}
	return s, translate(err)
}

// SourceList returns the organization's sources, oldest first.
func (db *DB) SourceList(ctx context.Context, orgID uuid.UUID) ([]*webhook.Source, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT `+sourceColumns+` FROM sources WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []*webhook.Source{}
	for rows.Next() {
		s, err := scanSource(rows, db.keys, true)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, s)
	}
	return out, translate(rows.Err())
}

// sourceForChange reads the source c names inside tx and lets c.Apply
// decide on it, returning the source as Apply left it and the audit
// entry it returned. An edit must see its secret opened (it writes it
// back sealed anew); a delete need not (lenient), so a source whose key
// is gone can still be deleted, its secret cleared for c.Apply.
func sourceForChange(ctx context.Context, tx *txn, c webhook.SourceChange, lenient bool) (*webhook.Source, *webhook.AuditEntry, error) {
	src, err := scanSource(tx.QueryRowContext(ctx,
		`SELECT `+sourceColumns+` FROM sources WHERE organization_id = ? AND id = ?`, c.Ref.OrganizationID, c.Ref.ID), tx.db.keys, lenient)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, notFound("source")
	}
	if err != nil {
		return nil, nil, err
	}
	audit, err := c.Run(src)
	return src, audit, err
}

// SourceUpdate reads the source and writes it back changed in one write
// transaction: SQLite has one writer, so the row c.Apply sees is the row
// as it is when the change commits (see WebhookUpdate).
func (db *DB) SourceUpdate(ctx context.Context, c webhook.SourceChange) (*webhook.Source, error) {
	var src *webhook.Source
	err := db.transact(ctx, func(tx *txn) error {
		var audit *webhook.AuditEntry
		var err error
		src, audit, err = sourceForChange(ctx, tx, c, false)
		if err != nil {
			return err
		}
		sealed, err := db.keys.SealSource(src)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE sources SET updated_at = ?, kind = ?, name = ?, secret = ?, environment_types = ?
			WHERE organization_id = ? AND id = ?`,
			micros(src.UpdatedAt), src.Kind, src.Name, sealed.Secret, environmentRules(src.EnvironmentTypes), c.Ref.OrganizationID, c.Ref.ID)
		if err := affectedOne(res, err, "source"); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, c.Ref.OrganizationID, c.Ref.ID)
	})
	if err != nil {
		return nil, err
	}
	return src, nil
}

// SourceDelete removes the source and stores its audit entry, in one
// write transaction that decides (c.Apply) on the row as it is then, as
// SourceUpdate does.
func (db *DB) SourceDelete(ctx context.Context, c webhook.SourceChange) error {
	return db.transact(ctx, func(tx *txn) error {
		_, audit, err := sourceForChange(ctx, tx, c, true)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM sources WHERE organization_id = ? AND id = ?`, c.Ref.OrganizationID, c.Ref.ID)
		if err := affectedOne(res, err, "source"); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, c.Ref.OrganizationID, c.Ref.ID)
	})
}

// SourceSecrets returns every source with its stored secret, across
// organizations: what `hookd migrate --reencrypt` rewrites.
func (db *DB) SourceSecrets(ctx context.Context) ([]*webhook.Source, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT organization_id, id, secret FROM sources ORDER BY created_at, id`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []*webhook.Source{}
	for rows.Next() {
		var s webhook.Source
		if err := rows.Scan(&s.OrganizationID, &s.ID, &s.Secret); err != nil {
			return nil, translate(err)
		}
		out = append(out, &s)
	}
	return out, translate(rows.Err())
}

// SourceSetSecret replaces a source's stored secret if it still is was's,
// so that a re-encryption never undoes an edit made while it ran.
func (db *DB) SourceSetSecret(ctx context.Context, was *webhook.Source, secret string) (bool, error) {
	var n int64
	err := db.transact(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE sources SET secret = ? WHERE organization_id = ? AND id = ? AND secret = ?`,
			secret, was.OrganizationID, was.ID, was.Secret)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}
