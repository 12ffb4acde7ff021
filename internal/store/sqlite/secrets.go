package sqlite

import (
	"context"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// WebhookSecrets returns every webhook that has a secret, across
// organizations, with only OrganizationID, ID and TargetSecret (as stored)
// set: what `hookd migrate --reencrypt` rewrites.
func (db *DB) WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT organization_id, id, target_secret FROM webhooks WHERE target_secret <> '' ORDER BY created_at, id`)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []*webhook.Webhook{}
	for rows.Next() {
		var w webhook.Webhook
		if err := rows.Scan(&w.OrganizationID, &w.ID, &w.TargetSecret); err != nil {
			return nil, translate(err)
		}
		out = append(out, &w)
	}
	return out, translate(rows.Err())
}

// WebhookSetSecret replaces a webhook's stored secret with next if it is
// still prev, so that a re-encryption never undoes an edit made while it
// ran. updated_at stays: the webhook did not change for its owner.
func (db *DB) WebhookSetSecret(ctx context.Context, orgID, id uuid.UUID, prev, next string) (bool, error) {
	res, err := db.write.ExecContext(ctx,
		`UPDATE webhooks SET target_secret = ? WHERE organization_id = ? AND id = ? AND target_secret = ?`,
		next, orgID, id, prev)
	if err != nil {
		return false, translate(err)
	}
	n, err := res.RowsAffected()
	return n == 1, translate(err)
}
