package secrets

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// Rewriter is what Reencrypt needs from a backend beyond webhook.Store,
// which addresses webhooks one organization at a time. The SQLite and
// PostgreSQL backends implement it; it is kept out of webhook.Store
// because only `hookd migrate --reencrypt` needs it.
type Rewriter interface {
	// WebhookSecrets returns every webhook, across organizations, with
	// only OrganizationID, ID and its SealedFields (as stored) set.
	WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error)
	// WebhookSetSecrets replaces a webhook's stored SealedFields with
	// sealed's if they still are was's, and reports whether it did: a
	// webhook edited or deleted meanwhile is left alone.
	WebhookSetSecrets(ctx context.Context, was, sealed *webhook.Webhook) (bool, error)
}

// ReencryptResult counts what Reencrypt did.
type ReencryptResult struct {
	Rewritten int // webhooks whose secrets were sealed anew with the newest key
	Current   int // webhooks whose secrets were already sealed with the newest key
	Changed   int // edited or deleted while Reencrypt ran: left alone
}

// Reencrypt rewrites every sealed field (the target URL, the current and
// previous secrets) not yet sealed with the newest key, including those
// stored before they were sealed.
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
		stored := SealedFields(w)
		if !slices.ContainsFunc(stored, func(f *string) bool { return !keys.Current(*f) }) {
			res.Current++
			continue
		}
		sealed := &webhook.Webhook{OrganizationID: w.OrganizationID, ID: w.ID}
		var err error
		for i, f := range SealedFields(sealed) {
			if *f, err = resealed(keys, "webhook", w.ID, *stored[i]); err != nil {
				break
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok, err := r.WebhookSetSecrets(ctx, w, sealed)
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
func resealed(keys *Keyring, kind string, id uuid.UUID, stored string) (string, error) {
	if keys.Current(stored) {
		return stored, nil
	}
	plain, err := keys.Open(kind, id, stored)
	if err != nil {
		return "", err
	}
	return keys.Seal(kind, id, plain)
}

// SourceRewriter is what ReencryptSources needs from a backend: every
// source's stored secret across organizations, and a compare-and-set.
type SourceRewriter interface {
	// SourceSecrets returns every source, across organizations, with only
	// OrganizationID, ID and Secret (as stored) set.
	SourceSecrets(ctx context.Context) ([]*webhook.Source, error)
	// SourceSetSecret replaces a source's stored secret with secret if it
	// still is was's, and reports whether it did.
	SourceSetSecret(ctx context.Context, was *webhook.Source, secret string) (bool, error)
}

// ReencryptSources is Reencrypt for sources' secrets: each one not yet
// sealed with the newest key is sealed with it, unless it changed
// meanwhile. It goes on past a secret it cannot open and reports them all.
func ReencryptSources(ctx context.Context, r SourceRewriter, keys *Keyring) (ReencryptResult, error) {
	var res ReencryptResult
	if keys.Len() == 0 {
		return res, errors.New("secrets: no encryption key is configured to re-encrypt with")
	}
	list, err := r.SourceSecrets(ctx)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, src := range list {
		if keys.Current(src.Secret) {
			res.Current++
			continue
		}
		sealed, err := resealed(keys, "source", src.ID, src.Secret)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok, err := r.SourceSetSecret(ctx, src, sealed)
		if err != nil {
			return res, fmt.Errorf("secrets: source %s: rewriting its secret: %w", src.ID, err)
		}
		if ok {
			res.Rewritten++
		} else {
			res.Changed++
		}
	}
	return res, errors.Join(errs...)
}
