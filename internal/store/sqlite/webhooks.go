package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

const webhookColumns = `organization_id, id, created_at, updated_at, kind, target_url, target_secret,
	description, enabled, events, project_names_filter, environment_types_filter, disabled_reason, failing_since,
	previous_secret, secret_rotated_at`

type scanner interface{ Scan(dest ...any) error }

// webhookRow holds a webhook's columns while they are scanned, so the
// same code reads a webhook alone or joined with other tables. It is the
// one way a webhook leaves the database, and the sealed fields
// (secrets.SealedFields) leave it opened.
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

// webhook decodes the row and opens its sealed fields with keys. A field
// that cannot be opened (its key is not configured) is cleared and the
// error returned with the webhook, so that the few callers that can go on
// without it (an intake that will not send it, a delete) do; every other
// caller fails on the error.
func (r *webhookRow) webhook(keys *secrets.Keyring) (*webhook.Webhook, error) {
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
	return &w, keys.OpenWebhook(&w)
}

// scanWebhook reads one webhook, failing if its sealed fields cannot be
// opened, unless lenient: then it returns the webhook with them cleared,
// marked Unreadable.
func scanWebhook(row scanner, keys *secrets.Keyring, lenient bool) (*webhook.Webhook, error) {
	var r webhookRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	w, err := r.webhook(keys)
	if err != nil && !(lenient && w != nil && secrets.Unreadable(err)) {
		return nil, err
	}
	return w, nil
}

// WebhookCreate stores w and its audit entry. The count and the insert
// share one write transaction, and SQLite has one writer (BEGIN
// IMMEDIATE, across processes too), so no other create slips in between.
func (db *DB) WebhookCreate(ctx context.Context, w *webhook.Webhook, maxPerOrg int, audit *webhook.AuditEntry) error {
	s, err := db.keys.SealWebhook(w)
	if err != nil {
		return err
	}
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
			w.OrganizationID, w.ID, micros(w.CreatedAt), micros(w.UpdatedAt), w.Kind, s.TargetURL, s.TargetSecret,
			w.Description, w.Enabled, jsonList(w.Events), jsonList(w.ProjectNamesFilter), jsonList(w.EnvironmentTypesFilter),
			w.DisabledReason, nullMicros(w.FailingSince), s.PreviousSecret, nullMicros(w.SecretRotatedAt))
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
		`SELECT `+webhookColumns+` FROM webhooks WHERE organization_id = ? AND id = ?`, orgID, id), db.keys, true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("webhook")
	}
	if err != nil {
		return nil, translate(err)
	}
	return w, nil
}

// orgWebhooksSQL reads an organization's webhooks, oldest first: the
// order of WebhookList, and the order intake matches them in.
const orgWebhooksSQL = `SELECT ` + webhookColumns + ` FROM webhooks WHERE organization_id = ? ORDER BY created_at, id`

// WebhookList returns the organization's webhooks, oldest first.
func (db *DB) WebhookList(ctx context.Context, orgID uuid.UUID) ([]*webhook.Webhook, error) {
	rows, err := db.read.QueryContext(ctx, orgWebhooksSQL, orgID)
	if err != nil {
		return nil, translate(err)
	}
	return collectWebhooks(rows, db.keys, true)
}

// collectWebhooks reads rows of webhookColumns. A webhook whose sealed
// fields cannot be opened fails it, unless lenient: then the webhook is
// listed with those fields cleared, marked Unreadable.
func collectWebhooks(rows *sql.Rows, keys *secrets.Keyring, lenient bool) ([]*webhook.Webhook, error) {
	defer rows.Close()
	out := []*webhook.Webhook{}
	for rows.Next() {
		var r webhookRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, translate(err)
		}
		w, err := r.webhook(keys)
		if err != nil && !(lenient && w != nil && secrets.Unreadable(err)) {
			return nil, translate(err)
		}
		out = append(out, w)
	}
	return out, translate(rows.Err())
}

// The writer keeps the webhooks it opened, by organization, for intake
// and claims, which read them for every batch and every claim: an index
// range, three JSON lists and an AES-GCM open per webhook, the same rows
// thousands of times a second in a fan-out. An entry is good for one
// version of the webhooks table, which the triggers of migration 0045
// change with every insert, update and delete of a row, whoever makes it
// (this process, another on the same file): the version is read in the
// transaction that uses the entry, so a change it does not see is a
// change that transaction would not see either. The version is random,
// so one read in a transaction that rolled back never comes back with
// other rows under it.
//
// It is one version for the whole table, so any change (an edit, a
// webhook starting or ending a failure streak) empties the cache, and
// the next uses read their organizations' webhooks again, as every use
// did before there was a cache.
type webhookCache struct {
	version int64
	orgs    map[uuid.UUID]cachedWebhooks
	size    int // entries plus webhooks held, at most maxCached
}

type cachedWebhooks struct {
	hooks []*webhook.Webhook             // oldest first
	byID  map[uuid.UUID]*webhook.Webhook // the same, by id
}

// maxCached bounds the cache's memory (a few MB): past it, the cache
// starts over; an organization with more webhooks is not kept.
const maxCached = 10000

// orgWebhooks returns the organization's webhooks as collectWebhooks
// does (oldest first; unreadable ones cleared and marked), from the
// cache when the webhooks table has not changed. The webhooks are shared
// with later callers: read them, never change them (a Task copies its
// Webhook).
func (tx *txn) orgWebhooks(ctx context.Context, org uuid.UUID) ([]*webhook.Webhook, error) {
	e, err := tx.orgEntry(ctx, org)
	return e.hooks, err
}

// orgEntry returns the organization's webhooks from the cache when the
// webhooks table has not changed, and otherwise reads and opens them (and
// keeps them, within maxCached). Read them, never change them.
func (tx *txn) orgEntry(ctx context.Context, org uuid.UUID) (cachedWebhooks, error) {
	if err := tx.syncCache(ctx); err != nil {
		return cachedWebhooks{}, err
	}
	c := &tx.db.hooks
	if e, ok := c.orgs[org]; ok {
		return e, nil
	}
	rows, err := tx.QueryContext(ctx, orgWebhooksSQL, org)
	if err != nil {
		return cachedWebhooks{}, err
	}
	var e cachedWebhooks
	if e.hooks, err = collectWebhooks(rows, tx.db.keys, true); err != nil {
		return cachedWebhooks{}, err
	}
	e.byID = make(map[uuid.UUID]*webhook.Webhook, len(e.hooks))
	for _, w := range e.hooks {
		e.byID[w.ID] = w
	}
	if n := 1 + len(e.hooks); n <= maxCached {
		if c.size+n > maxCached {
			c.orgs, c.size = map[uuid.UUID]cachedWebhooks{}, 0
		}
		c.orgs[org] = e
		c.size += n
	}
	return e, nil
}

// cachedByID returns the organization's webhooks by id as this
// transaction sees them if the cache holds them (nil otherwise), and
// never reads them from the table: for a use that can do without them
// (see keptHealth).
func (tx *txn) cachedByID(ctx context.Context, org uuid.UUID) (map[uuid.UUID]*webhook.Webhook, error) {
	if err := tx.syncCache(ctx); err != nil {
		return nil, err
	}
	return tx.db.hooks.orgs[org].byID, nil
}

// syncCache empties the cache if the webhooks table is not at its version
// as this transaction reads it.
func (tx *txn) syncCache(ctx context.Context) error {
	c := &tx.db.hooks
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM webhooks_version`).Scan(&version); err != nil {
		return err
	}
	if c.orgs == nil || version != c.version {
		c.version, c.orgs, c.size = version, map[uuid.UUID]cachedWebhooks{}, 0
	}
	return nil
}

// WebhookUpdate reads the webhook and writes it back changed in one
// write transaction: SQLite has one writer (BEGIN IMMEDIATE, across
// processes too), so the row Apply sees is the row as it is when the
// change commits. created_at is never written: no edit changes it.
func (db *DB) WebhookUpdate(ctx context.Context, c webhook.WebhookChange) (*webhook.Webhook, error) {
	var w *webhook.Webhook
	err := db.transact(ctx, func(tx *txn) error {
		var err error
		if w, err = webhookForChange(ctx, tx, c, false); err != nil {
			return err
		}
		audit, err := c.Run(w)
		if err != nil {
			return err
		}
		s, err := db.keys.SealWebhook(w)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET updated_at = ?, kind = ?,
			target_url = ?, target_secret = ?, description = ?, enabled = ?, events = ?, project_names_filter = ?,
			environment_types_filter = ?, disabled_reason = ?, failing_since = ?, previous_secret = ?, secret_rotated_at = ?
			WHERE organization_id = ? AND id = ?`,
			micros(w.UpdatedAt), w.Kind, s.TargetURL, s.TargetSecret, w.Description, w.Enabled,
			jsonList(w.Events), jsonList(w.ProjectNamesFilter), jsonList(w.EnvironmentTypesFilter),
			w.DisabledReason, nullMicros(w.FailingSince), s.PreviousSecret, nullMicros(w.SecretRotatedAt), c.OrganizationID, c.ID)
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

// webhookForChange reads the webhook c names inside the write
// transaction. An edit must see its secrets opened (it writes them back
// sealed anew); a delete need not (lenient), so a webhook whose key is
// gone can still be deleted, its unreadable fields cleared for c.Apply.
func webhookForChange(ctx context.Context, tx *txn, c webhook.WebhookChange, lenient bool) (*webhook.Webhook, error) {
	w, err := scanWebhook(tx.QueryRowContext(ctx,
		`SELECT `+webhookColumns+` FROM webhooks WHERE organization_id = ? AND id = ?`, c.OrganizationID, c.ID), tx.db.keys, lenient)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("webhook")
	}
	return w, err
}

// WebhookDelete removes the webhook and stores its audit entry, in one
// transaction that decides (c.Apply) on the row as it is then. Its
// deliveries and their attempts go after, in the background (see
// purger): a webhook with a long history held the request, and the stop
// of the server behind it, for as long as its purge took. From the
// commit on the webhook is gone for every reader: the API looks up the
// webhook before its deliveries, and a claim deletes the deliveries it
// finds without one rather than send them. A delete that fails keeps the
// webhook with everything it has.
func (db *DB) WebhookDelete(ctx context.Context, c webhook.WebhookChange) error {
	err := db.transact(ctx, func(tx *txn) error {
		w, err := webhookForChange(ctx, tx, c, true)
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
	if err != nil {
		return err
	}
	db.purger.Wake(orphan{c.OrganizationID, c.ID})
	return nil
}

// deleteDeliveries deletes deliveries, a JSON list of their seqs, and
// their attempts.
func deleteDeliveries(ctx context.Context, tx *txn, seqs string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE delivery_seq IN (SELECT value FROM json_each(?))`, seqs); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE seq IN (SELECT value FROM json_each(?))`, seqs)
	return err
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
