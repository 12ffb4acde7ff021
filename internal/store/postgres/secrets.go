package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// WebhookSecrets returns every webhook that has a secret, across
// organizations, with only OrganizationID, ID and TargetSecret (as stored)
// set: what `hookd migrate --reencrypt` rewrites.
func (db *DB) WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT organization_id, id, target_secret FROM webhooks WHERE target_secret <> '' ORDER BY created_at, id`)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, func(row rowScanner) (*webhook.Webhook, error) {
		var w webhook.Webhook
		return &w, row.Scan(&w.OrganizationID, &w.ID, &w.TargetSecret)
	})
}

// WebhookSetSecret replaces a webhook's stored secret with next if it is
// still prev, so that a re-encryption never undoes an edit another node
// made while it ran. updated_at stays: the webhook did not change for its
// owner.
func (db *DB) WebhookSetSecret(ctx context.Context, orgID, id uuid.UUID, prev, next string) (bool, error) {
	tag, err := db.pool.Exec(ctx,
		`UPDATE webhooks SET target_secret = $3 WHERE organization_id = $1 AND id = $2 AND target_secret = $4`,
		orgID, id, next, prev)
	if err != nil {
		return false, translate(err)
	}
	return tag.RowsAffected() == 1, nil
}
