package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

const webhookColumns = `organization_id, id, created_at, updated_at, kind, target_url, target_secret,
	description, enabled, events, project_names_filter, environment_types_filter, disabled_reason, failing_since,
	previous_secret, secret_rotated_at`

type scanner interface{ Scan(dest ...any) error }

// webhookRow holds a webhook's columns while they are scanned, so the
// same code reads a webhook alone or joined with other tables.
type webhookRow struct {
	w                          webhook.Webhook
	created, updated           int64
	events, projects, envModes string
	failing, rotated           sql.NullInt64
}

func (r *webhookRow) dest() []any {
	return []any{&r.w.OrganizationID, &r.w.ID, &r.created, &r.updated, &r.w.Kind, &r.w.TargetURL, &r.w.TargetSecret,
		&r.w.Description, &r.w.Enabled, &r.events, &r.projects, &r.envModes, &r.w.DisabledReason, &r.failing,
		&r.w.PreviousSecret, &r.rotated}
}

func (r *webhookRow) webhook() (*webhook.Webhook, error) {
	w := r.w
	w.CreatedAt, w.UpdatedAt, w.FailingSince = fromMicros(r.created), fromMicros(r.updated), fromNullMicros(r.failing)
	w.SecretRotatedAt = fromNullMicros(r.rotated)
	var err error
	if w.Events, err = parseList[webhook.EventType](r.events); err != nil {
		return nil, err
	}
	if w.ProjectNamesFilter, err = parseList[string](r.projects); err != nil {
		return nil, err
	}
	if w.EnvironmentTypesFilter, err = parseList[webhook.EnvironmentMode](r.envModes); err != nil {
		return nil, err
	}
	return &w, nil
}

func scanWebhook(row scanner) (*webhook.Webhook, error) {
	var r webhookRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.webhook()
}

// WebhookCreate stores w and its audit entry. The count and the insert
// share one write transaction, and SQLite has one writer (BEGIN
// IMMEDIATE, across processes too), so no other create slips in between.
func (db *DB) WebhookCreate(ctx context.Context, w *webhook.Webhook, maxPerOrg int, audit *webhook.AuditEntry) error {
	return db.transact(ctx, func(tx *txn) error {
		if maxPerOrg > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhooks WHERE organization_id = ?`, w.OrganizationID).Scan(&n); err != nil {
				return err
			}
			if n >= maxPerOrg {
				return webhook.TooManyWebhooks(maxPerOrg)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (`+webhookColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			w.OrganizationID, w.ID, micros(w.CreatedAt), micros(w.UpdatedAt), w.Kind, w.TargetURL, w.TargetSecret,
			w.Description, w.Enabled, jsonList(w.Events), jsonList(w.ProjectNamesFilter), jsonList(w.EnvironmentTypesFilter),
			w.DisabledReason, nullMicros(w.FailingSince), w.PreviousSecret, nullMicros(w.SecretRotatedAt))
		if webhook.ErrorCode(translate(err)) == webhook.EConflict {
			return webhook.Errorf(webhook.EConflict, "webhook %s already exists", w.ID)
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, w.OrganizationID, w.ID)
	})
}

// WebhookGet returns one of the organization's webhooks.
func (db *DB) WebhookGet(ctx context.Context, orgID, id uuid.UUID) (*webhook.Webhook, error) {
	w, err := scanWebhook(db.read.QueryRowContext(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE organization_id = ? AND id = ?`, orgID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("webhook")
	}
	return w, translate(err)
}

// WebhookList returns the organization's webhooks, oldest first.
func (db *DB) WebhookList(ctx context.Context, orgID uuid.UUID) ([]*webhook.Webhook, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE organization_id = ? ORDER BY created_at, id`, orgID)
	if err != nil {
		return nil, translate(err)
	}
	return collectWebhooks(rows)
}

func collectWebhooks(rows *sql.Rows) ([]*webhook.Webhook, error) {
	defer rows.Close()
	out := []*webhook.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, w)
	}
	return out, translate(rows.Err())
}

// WebhookUpdate reads the webhook and writes it back changed in one
// write transaction: SQLite has one writer (BEGIN IMMEDIATE, across
// processes too), so the row Apply sees is the row as it is when the
// change commits. created_at is never written: no edit changes it.
func (db *DB) WebhookUpdate(ctx context.Context, c webhook.WebhookChange) (*webhook.Webhook, error) {
	var w *webhook.Webhook
	err := db.transact(ctx, func(tx *txn) error {
		var err error
		if w, err = webhookForChange(ctx, tx, c); err != nil {
			return err
		}
		audit, err := c.Run(w)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET updated_at = ?, kind = ?,
			target_url = ?, target_secret = ?, description = ?, enabled = ?, events = ?, project_names_filter = ?,
			environment_types_filter = ?, disabled_reason = ?, failing_since = ?, previous_secret = ?, secret_rotated_at = ?
			WHERE organization_id = ? AND id = ?`,
			micros(w.UpdatedAt), w.Kind, w.TargetURL, w.TargetSecret, w.Description, w.Enabled,
			jsonList(w.Events), jsonList(w.ProjectNamesFilter), jsonList(w.EnvironmentTypesFilter),
			w.DisabledReason, nullMicros(w.FailingSince), w.PreviousSecret, nullMicros(w.SecretRotatedAt), c.OrganizationID, c.ID)
		if err := affectedOne(res, err, "webhook"); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, c.OrganizationID, c.ID)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// webhookForChange reads the webhook c names inside the write transaction.
func webhookForChange(ctx context.Context, tx *txn, c webhook.WebhookChange) (*webhook.Webhook, error) {
	w, err := scanWebhook(tx.QueryRowContext(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE organization_id = ? AND id = ?`, c.OrganizationID, c.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("webhook")
	}
	return w, err
}

// WebhookDelete removes the webhook, and stores its audit entry; foreign
// keys cascade to its deliveries and their attempts.
//
// The webhook's finished history goes first, deleteBatch rows per
// transaction, so a webhook with a long history never holds the one writer
// (and every intake behind it) for the whole cascade, nor grows the WAL by
// all of it at once. Only succeeded and failed deliveries go early: the
// queue (pending and running deliveries, promised to the webhook while it
// exists) goes with the webhook in the last transaction, which decides
// (c.Apply) on the row as it is then. A delete that fails half-way leaves
// the webhook with its queue intact and only part of its finished
// history, which the next delete removes; so that a refusal (a missing
// webhook, a stale If-Match) costs no history, c.Apply is asked first on
// the row as read before the batches.
func (db *DB) WebhookDelete(ctx context.Context, c webhook.WebhookChange) error {
	current, err := db.WebhookGet(ctx, c.OrganizationID, c.ID)
	if err != nil {
		return err
	}
	if _, err := c.Run(current); err != nil {
		return err
	}
	for _, q := range []string{
		`DELETE FROM attempts WHERE rowid IN (SELECT a.rowid FROM attempts a
			JOIN deliveries d ON d.organization_id = a.organization_id AND d.id = a.delivery_id
			WHERE a.organization_id = ? AND a.webhook_id = ? AND d.status IN ('succeeded', 'failed') LIMIT ?)`,
		`DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries
			WHERE organization_id = ? AND webhook_id = ? AND status IN ('succeeded', 'failed') LIMIT ?)`,
	} {
		if _, err := db.deleteInBatches(ctx, q, c.OrganizationID, c.ID); err != nil {
			return err
		}
	}
	return db.transact(ctx, func(tx *txn) error {
		w, err := webhookForChange(ctx, tx, c)
		if err != nil {
			return err
		}
		audit, err := c.Run(w)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE organization_id = ? AND id = ?`, c.OrganizationID, c.ID)
		if err := affectedOne(res, err, "webhook"); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, c.OrganizationID, c.ID)
	})
}

// affectedOne turns "no row matched" into a NotFound for what.
func affectedOne(res sql.Result, err error, what string) error {
	if err != nil {
		return translate(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return translate(err)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}

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
