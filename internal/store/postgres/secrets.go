package postgres

import (
	"context"

	"github.com/hookd/hookd/internal/webhook"
)

// WebhookSecrets returns every webhook that has a secret or a previous
// secret, across organizations, with only OrganizationID, ID,
// TargetSecret and PreviousSecret (as stored) set: what `hookd migrate
// --reencrypt` rewrites.
func (db *DB) WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error) {
	rows, err := db.pool.Query(ctx, `SELECT organization_id, id, target_secret, previous_secret FROM webhooks
		WHERE target_secret <> '' OR previous_secret <> '' ORDER BY created_at, id`)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, func(row rowScanner) (*webhook.Webhook, error) {
		var w webhook.Webhook
		return &w, row.Scan(&w.OrganizationID, &w.ID, &w.TargetSecret, &w.PreviousSecret)
	})
}

// WebhookSetSecrets replaces a webhook's stored secrets with target and
// previous if they still are was's, so that a re-encryption never undoes
// an edit another node made while it ran. updated_at stays: the webhook
// did not change for its owner.
func (db *DB) WebhookSetSecrets(ctx context.Context, was *webhook.Webhook, target, previous string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE webhooks SET target_secret = $3, previous_secret = $4
		WHERE organization_id = $1 AND id = $2 AND target_secret = $5 AND previous_secret = $6`,
		was.OrganizationID, was.ID, target, previous, was.TargetSecret, was.PreviousSecret)
	if err != nil {
		return false, translate(err)
	}
	return tag.RowsAffected() == 1, nil
}
