package postgres

import (
	"context"

	"github.com/hookd/hookd/internal/webhook"
)

// WebhookSecrets returns every webhook, across organizations, with only
// OrganizationID, ID and the sealed fields (TargetURL, TargetSecret,
// PreviousSecret, as stored) set: what `hookd migrate --reencrypt`
// rewrites. With SourceSecrets, the only methods that return values as
// stored, past the row codec, and neither is part of webhook.Store.
func (db *DB) WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error) {
	rows, err := db.pool.Query(ctx, `SELECT organization_id, id, target_url, target_secret, previous_secret
		FROM webhooks ORDER BY created_at, id`)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, func(row rowScanner) (*webhook.Webhook, error) {
		var w webhook.Webhook
		return &w, row.Scan(&w.OrganizationID, &w.ID, &w.TargetURL, &w.TargetSecret, &w.PreviousSecret)
	})
}

// WebhookSetSecrets replaces a webhook's stored sealed fields with
// sealed's if they still are was's, so that a re-encryption never undoes
// an edit another node made while it ran. updated_at stays: the webhook
// did not change for its owner.
func (db *DB) WebhookSetSecrets(ctx context.Context, was, sealed *webhook.Webhook) (bool, error) {
	tag, err := db.pool.Exec(ctx, `UPDATE webhooks SET target_url = $3, target_secret = $4, previous_secret = $5
		WHERE organization_id = $1 AND id = $2 AND target_url = $6 AND target_secret = $7 AND previous_secret = $8`,
		was.OrganizationID, was.ID, sealed.TargetURL, sealed.TargetSecret, sealed.PreviousSecret,
		was.TargetURL, was.TargetSecret, was.PreviousSecret)
	if err != nil {
		return false, translate(err)
	}
	return tag.RowsAffected() == 1, nil
}
