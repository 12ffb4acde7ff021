package sqlite

import (
	"context"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// WebhookSecrets returns every webhook, across organizations, with only
// OrganizationID, ID and the sealed fields (TargetURL, TargetSecret,
// PreviousSecret, as stored) set: what `hookd migrate --reencrypt`
// rewrites. With SourceSecrets, the only methods that return values as
// stored, past the row codec, and neither is part of webhook.Store.
func (db *DB) WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT organization_id, id, target_url, target_secret, previous_secret
		FROM webhooks ORDER BY created_at, id`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []*webhook.Webhook{}
	for rows.Next() {
		var w webhook.Webhook
		if err := rows.Scan(&w.OrganizationID, &w.ID, &w.TargetURL, &w.TargetSecret, &w.PreviousSecret); err != nil {
			return nil, translate(err)
		}
		out = append(out, &w)
	}
	return out, translate(rows.Err())
}

// WebhookSetSecrets replaces a webhook's stored sealed fields with
// sealed's if they still are was's, so that a re-encryption never undoes
// an edit made while it ran. updated_at stays: the webhook did not change
// for its owner.
func (db *DB) WebhookSetSecrets(ctx context.Context, was, sealed *webhook.Webhook) (bool, error) {
	var n int64
	err := db.transact(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET target_url = ?, target_secret = ?, previous_secret = ?
			WHERE organization_id = ? AND id = ? AND target_url = ? AND target_secret = ? AND previous_secret = ?`,
			sealed.TargetURL, sealed.TargetSecret, sealed.PreviousSecret,
			was.OrganizationID, was.ID, was.TargetURL, was.TargetSecret, was.PreviousSecret)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}

// Compact rebuilds the database file (VACUUM) and empties its WAL, so
// that no copy of a value rewritten or deleted since, such as a secret or
// URL stored in clear before it was sealed, survives in free pages or in
// old WAL frames. It blocks writers while it runs: a maintenance step of
// `hookd migrate --reencrypt`, not of serving, and the one write outside
// the writer (VACUUM cannot run in a transaction); the checkpoint syncs
// the file whatever synchronous is. It reports whether the WAL
// could be emptied (a reader of another process may hold it).
func (db *DB) Compact(ctx context.Context) (bool, error) {
	if _, err := db.write.ExecContext(ctx, `VACUUM`); err != nil {
		return false, translate(err)
	}
	// A checkpoint that finds another one running (this store's own
	// checkpointer runs a PASSIVE one every checkpointEvery) gives up at
	// once with busy set, whatever the busy timeout: try again for a
	// while before saying a reader holds the WAL.
	deadline := time.Now().Add(compactPatience)
	for {
		var busy, frames, done int
		if err := db.write.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil {
			return false, translate(err)
		}
		if busy == 0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(checkpointEvery / 4):
		}
	}
}

// compactPatience bounds how long Compact tries to empty the WAL.
const compactPatience = 5 * time.Second
