package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// Rewriter is what Reencrypt needs from a backend beyond webhook.Store,
// which addresses webhooks one organization at a time. The SQLite and
// PostgreSQL backends implement it; it is kept out of webhook.Store
// because only `hookd migrate --reencrypt` needs it.
type Rewriter interface {
	// WebhookSecrets returns every webhook that has a secret, across
	// organizations, with only OrganizationID, ID and TargetSecret (as
	// stored) set.
	WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error)
	// WebhookSetSecret replaces a webhook's stored secret with next if it
	// still is prev, and reports whether it did: a webhook edited or
	// deleted meanwhile is left alone.
	WebhookSetSecret(ctx context.Context, orgID, id uuid.UUID, prev, next string) (bool, error)
}

// ReencryptResult counts what Reencrypt did.
type ReencryptResult struct {
	Rewritten int // sealed anew with the newest key
	Current   int // already sealed with the newest key
	Changed   int // edited or deleted while Reencrypt ran: left alone
}

// Reencrypt rewrites every stored secret not yet sealed with the newest
// key (including those stored before encryption). It goes on past a
// secret it cannot open and reports all such failures at the end.
func Reencrypt(ctx context.Context, r Rewriter, keys *Keyring) (ReencryptResult, error) {
	var res ReencryptResult
	if keys.Len() == 0 {
		return res, errors.New("secrets: no encryption key is configured to re-encrypt with")
	}
	hooks, err := r.WebhookSecrets(ctx)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, w := range hooks {
		if keys.Current(w.TargetSecret) {
			res.Current++
			continue
		}
		plain, err := keys.Open(w.ID, w.TargetSecret)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sealed, err := keys.Seal(w.ID, plain)
		if err != nil {
			return res, err
		}
		ok, err := r.WebhookSetSecret(ctx, w.OrganizationID, w.ID, w.TargetSecret, sealed)
		if err != nil {
			return res, fmt.Errorf("secrets: webhook %s: rewriting its secret: %w", w.ID, err)
		}
		if ok {
			res.Rewritten++
		} else {
			res.Changed++
		}
	}
	return res, errors.Join(errs...)
}
