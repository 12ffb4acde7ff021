package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

const webhookCols = `organization_id, id, created_at, updated_at, kind, target_url, target_secret,
	description, enabled, events, project_names_filter, environment_types_filter,
	disabled_reason, failing_since, previous_secret, secret_rotated_at`

// webhookScan returns the one codec a webhook row is read with: it opens
// the sealed fields (secrets.SealedFields) with keys, so none leaves the
// package sealed. A webhook whose fields cannot be opened (their key is
// not configured) fails the read, unless lenient: then it is returned
// with those fields cleared and marked Unreadable, for the callers that
// can go on without them (showing it, an intake or a claim that will not
// send it, a delete).
func webhookScan(keys *secrets.Keyring, lenient bool) func(rowScanner) (*webhook.Webhook, error) {
	return func(row rowScanner) (*webhook.Webhook, error) {
		w, err := scanWebhookRow(row)
		if err != nil {
			return nil, err
		}
		if err := keys.OpenWebhook(w); err != nil && !(lenient && secrets.Unreadable(err)) {
			return nil, err
		}
		return w, nil
	}
}

// scanWebhookRow decodes the columns; only webhookScan calls it.
func scanWebhookRow(row rowScanner) (*webhook.Webhook, error) {
	var (
		w                    webhook.Webhook
		events, envs         []string
		failingSince         *time.Time
		rotatedAt            *time.Time
		createdAt, updatedAt time.Time
	)
	err := row.Scan(&w.OrganizationID, &w.ID, &createdAt, &updatedAt, &w.Kind, &w.TargetURL, &w.TargetSecret,
		&w.Description, &w.Enabled, &events, &w.ProjectNamesFilter, &envs,
		&w.DisabledReason, &failingSince, &w.PreviousSecret, &rotatedAt)
	if err != nil {
		return nil, err
	}
	w.CreatedAt, w.UpdatedAt = createdAt.UTC(), updatedAt.UTC()
	w.Events = typedOf[webhook.EventType](events)
	w.EnvironmentTypesFilter = typedOf[webhook.EnvironmentMode](envs)
	if w.ProjectNamesFilter == nil {
		w.ProjectNamesFilter = []string{}
	}
	w.FailingSince = fromNullTime(failingSince)
	w.SecretRotatedAt = fromNullTime(rotatedAt)
	return &w, nil
}

// webhookCountLock is the first key of the pg_advisory_xact_lock(int,
// int) that serializes webhook creates per organization (the second is a
// hash of the organization id); the two-key space never meets the one-key
// space of migrationLock.
const webhookCountLock = 0x686b6477 // "hkdw"

// WebhookCreate counts and inserts under a per-organization advisory lock:
// without it two nodes could both count max-1 and both insert. The lock
// is taken before the count, and READ COMMITTED gives the count a fresh
// snapshot, so it sees what the previous holder committed. The audit
// entry is written in the same transaction.
func (db *DB) WebhookCreate(ctx context.Context, w *webhook.Webhook, maxPerOrg int, audit *webhook.AuditEntry) error {
	s, err := db.keys.SealWebhook(w)
	if err != nil {
		return err
	}
	return db.transact(ctx, func(tx pgx.Tx) error {
		if maxPerOrg > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, webhookCountLock, w.OrganizationID.String()); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE organization_id = $1`, w.OrganizationID).Scan(&n); err != nil {
				return err
			}
			if n >= maxPerOrg {
				return webhook.TooManyWebhooks(maxPerOrg)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO webhooks (`+webhookCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			w.OrganizationID, w.ID, ts(w.CreatedAt), ts(w.UpdatedAt), string(w.Kind), s.TargetURL, s.TargetSecret,
			w.Description, w.Enabled, stringsOf(w.Events), stringsOf(w.ProjectNamesFilter), stringsOf(w.EnvironmentTypesFilter),
			w.DisabledReason, nullTime(w.FailingSince), s.PreviousSecret, nullTime(w.SecretRotatedAt))
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, w.OrganizationID, w.ID)
	})
}

func (db *DB) WebhookGet(ctx context.Context, orgID, id uuid.UUID) (*webhook.Webhook, error) {
	w, err := webhookScan(db.keys, true)(db.pool.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE organization_id = $1 AND id = $2`, orgID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("webhook", id)
	}
	if err != nil {
		return nil, translate(err)
	}
	return w, nil
}

func (db *DB) WebhookList(ctx context.Context, orgID uuid.UUID) ([]*webhook.Webhook, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE organization_id = $1 ORDER BY created_at, id`, orgID)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, webhookScan(db.keys, true))
}

// WebhookUpdate locks the row (SELECT … FOR UPDATE) before Apply sees
// it, so a concurrent edit or hookd's disable (an UPDATE of the same row)
// either committed before and is seen, or waits for this one. It leaves
// created_at alone: it is the one field no edit changes.
func (db *DB) WebhookUpdate(ctx context.Context, c webhook.WebhookChange) (*webhook.Webhook, error) {
	var w *webhook.Webhook
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var err error
		if w, err = db.webhookForChange(ctx, tx, c, false); err != nil {
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
		_, err = tx.Exec(ctx, `UPDATE webhooks SET
				updated_at = $3, kind = $4, target_url = $5, target_secret = $6, description = $7,
				enabled = $8, events = $9, project_names_filter = $10, environment_types_filter = $11,
				disabled_reason = $12, failing_since = $13, previous_secret = $14, secret_rotated_at = $15
			WHERE organization_id = $1 AND id = $2`,
			c.OrganizationID, c.ID, ts(w.UpdatedAt), string(w.Kind), s.TargetURL, s.TargetSecret, w.Description,
			w.Enabled, stringsOf(w.Events), stringsOf(w.ProjectNamesFilter), stringsOf(w.EnvironmentTypesFilter),
			w.DisabledReason, nullTime(w.FailingSince), s.PreviousSecret, nullTime(w.SecretRotatedAt))
		if err != nil {
			return err
		}
		// The other nodes give back its deliveries they hold, read as it
		// was (see Listen). Inside the transaction, as a delete's: edits
		// are rare too.
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, editChannel, editPayload(c.ID, ts(w.UpdatedAt))); err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit, c.OrganizationID, c.ID)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// webhookForChange reads and locks the webhook c names. An edit must see
// its secrets opened (it writes them back sealed anew); a delete need not
// (lenient), so a webhook whose key is gone can still be deleted, its
// unreadable fields cleared for c.Apply.
func (db *DB) webhookForChange(ctx context.Context, tx pgx.Tx, c webhook.WebhookChange, lenient bool) (*webhook.Webhook, error) {
	w, err := webhookScan(db.keys, lenient)(tx.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhooks
		WHERE organization_id = $1 AND id = $2 FOR UPDATE`, c.OrganizationID, c.ID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("webhook", c.ID)
	}
	return w, err
}

// WebhookDelete deletes the webhook row and stores its audit entry, in
// one transaction that decides (c.Run) on the row as it is then, locked
// like WebhookUpdate. Its deliveries and their attempts go after it, in
// the background (see purge.go): a webhook with a long history held the
// request for as long as they took. A delete that fails keeps the
// webhook with everything it had.
//
// The row's FOR UPDATE waits for the completions in flight, which take
// the webhook FOR KEY SHARE (see DeliveryComplete). The transaction then
// takes intakeLock exclusive, which waits for the intakes in flight
// (which may have read the webhook) to commit, so that the purge, which
// starts after this commits, finds their deliveries too. Meanwhile the
// intakes of the organizations sharing the lock wait, a few milliseconds;
// those after it no longer find the webhook.
func (db *DB) WebhookDelete(ctx context.Context, c webhook.WebhookChange) error {
	err := db.transact(ctx, func(tx pgx.Tx) error {
		// Lenient: a webhook whose key is gone can still be deleted.
		w, err := db.webhookForChange(ctx, tx, c, true)
		if err != nil {
			return err
		}
		audit, err := c.Run(w)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, `+intakeLockKey("$2::uuid")+`)`, intakeLock, c.OrganizationID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE organization_id = $1 AND id = $2`, c.OrganizationID, c.ID); err != nil {
			return err
		}
		// The other nodes stop sending its deliveries they hold (see
		// Listen). Inside the transaction, so it is sent only if the
		// delete commits; NOTIFY makes the commit take a lock global to
		// the cluster, which intake avoids (see notifier), but webhook
		// deletes are rare.
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, forgetChannel, c.ID.String()); err != nil {
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
