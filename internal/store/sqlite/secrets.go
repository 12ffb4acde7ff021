package sqlite

import (
	"context"

	"github.com/hookd/hookd/internal/webhook"
)

// WebhookSecrets returns every webhook that has a secret or a previous
// secret, across organizations, with only OrganizationID, ID,
// TargetSecret and PreviousSecret (as stored) set: what `hookd migrate
// --reencrypt` rewrites.
func (db *DB) WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT organization_id, id, target_secret, previous_secret FROM webhooks
		WHERE target_secret <> '' OR previous_secret <> '' ORDER BY created_at, id`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []*webhook.Webhook{}
	for rows.Next() {
		var w webhook.Webhook
		if err := rows.Scan(&w.OrganizationID, &w.ID, &w.TargetSecret, &w.PreviousSecret); err != nil {
			return nil, translate(err)
		}
		out = append(out, &w)
	}
	return out, translate(rows.Err())
}

// WebhookSetSecrets replaces a webhook's stored secrets with target and
// previous if they still are was's, so that a re-encryption never undoes
// an edit made while it ran. updated_at stays: the webhook did not change
// for its owner.
func (db *DB) WebhookSetSecrets(ctx context.Context, was *webhook.Webhook, target, previous string) (bool, error) {
	res, err := db.write.ExecContext(ctx, `UPDATE webhooks SET target_secret = ?, previous_secret = ?
		WHERE organization_id = ? AND id = ? AND target_secret = ? AND previous_secret = ?`,
		target, previous, was.OrganizationID, was.ID, was.TargetSecret, was.PreviousSecret)
	if err != nil {
		return false, translate(err)
	}
	n, err := res.RowsAffected()
	return n == 1, translate(err)
}
