package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// Store is a webhook.Store whose webhook secrets are sealed in the
// database: it seals Webhook.TargetSecret on WebhookCreate and
// WebhookUpdate, and opens it in what WebhookGet, WebhookList and
// DeliveryClaim return. Everything else goes to the embedded Store as is.
type Store struct {
	webhook.Store
	Keys *Keyring
}

var _ webhook.Store = (*Store)(nil)

// WebhookCreate stores w with its secret sealed; w itself is unchanged,
// so the caller goes on with the plaintext.
func (s *Store) WebhookCreate(ctx context.Context, w *webhook.Webhook, maxPerOrg int) error {
	sealed, err := s.sealed(w)
	if err != nil {
		return err
	}
	return s.Store.WebhookCreate(ctx, sealed, maxPerOrg)
}

// WebhookUpdate stores w with its secret sealed anew (with a fresh nonce
// and the newest key), leaving w unchanged.
func (s *Store) WebhookUpdate(ctx context.Context, w *webhook.Webhook) error {
	sealed, err := s.sealed(w)
	if err != nil {
		return err
	}
	return s.Store.WebhookUpdate(ctx, sealed)
}

func (s *Store) sealed(w *webhook.Webhook) (*webhook.Webhook, error) {
	c := *w
	var err error
	c.TargetSecret, err = s.Keys.Seal(w.ID, w.TargetSecret)
	return &c, err
}

func (s *Store) WebhookGet(ctx context.Context, orgID, id uuid.UUID) (*webhook.Webhook, error) {
	w, err := s.Store.WebhookGet(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if w.TargetSecret, err = s.Keys.Open(w.ID, w.TargetSecret); err != nil {
		return nil, err
	}
	return w, nil
}

func (s *Store) WebhookList(ctx context.Context, orgID uuid.UUID) ([]*webhook.Webhook, error) {
	hooks, err := s.Store.WebhookList(ctx, orgID)
	if err != nil {
		return nil, err
	}
	for _, w := range hooks {
		if w.TargetSecret, err = s.Keys.Open(w.ID, w.TargetSecret); err != nil {
			return nil, err
		}
	}
	return hooks, nil
}

// DeliveryClaim opens the secret of each claimed task's webhook. If one
// cannot be opened (its key is not configured), sending it would sign with
// the wrong secret, so nothing is sent: every claimed delivery is given
// back, the unreadable ones due when their lease would have ended (so a
// missing key does not spin the dispatcher) and the others due now, and
// the error, naming the key, is what the dispatcher logs.
func (s *Store) DeliveryClaim(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Task, error) {
	tasks, err := s.Store.DeliveryClaim(ctx, p)
	if err != nil {
		return nil, err
	}
	var failed error
	var good, bad []webhook.DeliveryRef
	for _, t := range tasks {
		ref := webhook.DeliveryRef{OrganizationID: t.Delivery.OrganizationID, ID: t.Delivery.ID}
		secret, err := s.Keys.Open(t.Webhook.ID, t.Webhook.TargetSecret)
		if err != nil {
			bad = append(bad, ref)
			if failed == nil {
				failed = err
			}
			continue
		}
		t.Webhook.TargetSecret = secret
		good = append(good, ref)
	}
	if failed == nil {
		return tasks, nil
	}
	// Give them back even if ctx is done: the deliveries must not stay
	// leased for nothing.
	release := context.WithoutCancel(ctx)
	errs := []error{fmt.Errorf("%d of %d claimed deliveries cannot be signed: %w", len(bad), len(tasks), failed)}
	if len(good) > 0 {
		errs = append(errs, s.Store.DeliveryRelease(release, good, p.Now))
	}
	errs = append(errs, s.Store.DeliveryRelease(release, bad, p.LeaseUntil))
	return nil, errors.Join(errs...)
}
