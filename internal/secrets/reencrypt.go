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
	// WebhookSecrets returns every webhook that has a secret or a
	// previous secret, across organizations, with only OrganizationID,
	// ID, TargetSecret and PreviousSecret (as stored) set.
	WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error)
	// WebhookSetSecrets replaces a webhook's stored secret and previous
	// secret with target and previous if they still are was's, and
	// reports whether it did: a webhook edited or deleted meanwhile is
	// left alone.
	WebhookSetSecrets(ctx context.Context, was *webhook.Webhook, target, previous string) (bool, error)
}

// ReencryptResult counts what Reencrypt did.
type ReencryptResult struct {
	Rewritten int // webhooks whose secrets were sealed anew with the newest key
	Current   int // webhooks whose secrets were already sealed with the newest key
	Changed   int // edited or deleted while Reencrypt ran: left alone
}

// Reencrypt rewrites every stored secret, current or previous, not yet
// sealed with the newest key (including those stored before encryption).
// It goes on past a secret it cannot open and reports all such failures
// at the end.
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
		if keys.Current(w.TargetSecret) && keys.Current(w.PreviousSecret) {
			res.Current++
			continue
		}
		target, err := resealed(keys, w.ID, w.TargetSecret)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		previous, err := resealed(keys, w.ID, w.PreviousSecret)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok, err := r.WebhookSetSecrets(ctx, w, target, previous)
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

// resealed returns stored sealed with the newest key: as it is if it
// already is, opened and sealed again otherwise.
func resealed(keys *Keyring, webhookID uuid.UUID, stored string) (string, error) {
	if keys.Current(stored) {
		return stored, nil
	}
	plain, err := keys.Open(webhookID, stored)
	if err != nil {
		return "", err
	}
	return keys.Seal(webhookID, plain)
}
