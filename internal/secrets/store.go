package secrets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// Store is a webhook.Store whose webhooks' sealed fields (SealedFields:
// the target URL, which may carry credentials, and the secrets) are
// sealed in the database: it seals them on WebhookCreate and
// WebhookUpdate, and opens them in what WebhookGet, WebhookList,
// DeliveryClaim and EventsCreate (the deliveries leased at intake)
// return. Everything else goes to the embedded Store as is.
type Store struct {
	webhook.Store
	Keys *Keyring
}

var _ webhook.Store = (*Store)(nil)

// WebhookCreate stores w with its secrets sealed; w itself is unchanged,
// so the caller goes on with the plaintext. The audit entry passes
// through: it never holds a secret, sealed or not.
func (s *Store) WebhookCreate(ctx context.Context, w *webhook.Webhook, maxPerOrg int, audit *webhook.AuditEntry) error {
	sealed, err := s.sealed(w)
	if err != nil {
		return err
	}
	return s.Store.WebhookCreate(ctx, sealed, maxPerOrg, audit)
}

// WebhookUpdate opens the stored secrets before c.Apply sees the webhook
// and seals them anew (with a fresh nonce and the newest key) after, so
// Apply and the audit entry deal in plaintext and the database in
// ciphertext; it returns the webhook as written, in clear.
func (s *Store) WebhookUpdate(ctx context.Context, c webhook.WebhookChange) (*webhook.Webhook, error) {
	var plain webhook.Webhook
	change := c
	change.Apply = func(w *webhook.Webhook) (*webhook.AuditEntry, error) {
		if err := s.open(w); err != nil {
			return nil, err
		}
		audit, err := c.Run(w)
		if err != nil {
			return nil, err
		}
		plain = *w
		sealed, err := s.sealed(w)
		if err != nil {
			return nil, err
		}
		*w = *sealed
		return audit, nil
	}
	if _, err := s.Store.WebhookUpdate(ctx, change); err != nil {
		return nil, err
	}
	return &plain, nil
}

// WebhookDelete opens the stored secrets before c.Apply sees the
// webhook. One that cannot be opened (its key is gone) is still deleted:
// Apply sees the sealed value, which tells only that a secret was set.
func (s *Store) WebhookDelete(ctx context.Context, c webhook.WebhookChange) error {
	change := c
	change.Apply = func(w *webhook.Webhook) (*webhook.AuditEntry, error) {
		opened := *w
		if s.open(&opened) == nil {
			*w = opened
		}
		return c.Run(w)
	}
	return s.Store.WebhookDelete(ctx, change)
}

// SealedFields lists the fields of w sealed at rest. Sealing another
// one takes a line here, and the column in the backends' WebhookSecrets
// and WebhookSetSecrets, so `hookd migrate --reencrypt` rewrites it too.
// A value stored before it was sealed (no "enc:v1:" prefix) still opens,
// as it is, and is sealed on the next write or re-encryption.
func SealedFields(w *webhook.Webhook) []*string {
	return []*string{&w.TargetURL, &w.TargetSecret, &w.PreviousSecret}
}

func (s *Store) sealed(w *webhook.Webhook) (*webhook.Webhook, error) {
	c := *w
	for _, f := range SealedFields(&c) {
		var err error
		if *f, err = s.Keys.Seal(w.ID, *f); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// open opens w's sealed fields in place.
func (s *Store) open(w *webhook.Webhook) error {
	for _, f := range SealedFields(w) {
		var err error
		if *f, err = s.Keys.Open(w.ID, *f); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) WebhookGet(ctx context.Context, orgID, id uuid.UUID) (*webhook.Webhook, error) {
	w, err := s.Store.WebhookGet(ctx, orgID, id)
	if err != nil {
		return nil, err
	}
	if err := s.open(w); err != nil {
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
		if err := s.open(w); err != nil {
			return nil, err
		}
	}
	return hooks, nil
}

// EventsCreate opens the secrets of each delivery leased at intake. One
// whose secrets cannot be opened is left out of its receipt's Tasks (the
// events are committed: this is no reason to fail the intake) and given
// back to the queue, due as if it had never been leased, so that
// DeliveryClaim meets it at once and reports why it cannot be sent.
func (s *Store) EventsCreate(ctx context.Context, events []*webhook.Event, lease webhook.Lease) ([]webhook.EventReceipt, error) {
	receipts, err := s.Store.EventsCreate(ctx, events, lease)
	if err != nil {
		return nil, err
	}
	var bad []webhook.DeliveryRef
	var due time.Time
	for i := range receipts {
		tasks := receipts[i].Tasks[:0]
		for _, t := range receipts[i].Tasks {
			if err := s.open(&t.Webhook); err != nil {
				bad = append(bad, t.Ref())
				due = t.Delivery.CreatedAt
				continue
			}
			tasks = append(tasks, t)
		}
		receipts[i].Tasks = tasks
	}
	if len(bad) > 0 {
		// If this fails, the leases expire and the same happens later.
		_ = s.Store.DeliveryRelease(context.WithoutCancel(ctx), bad, due)
	}
	return receipts, nil
}

// DeliveryClaim opens the secrets of each claimed task's webhook. If one
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
		ref := t.Ref()
		if err := s.open(&t.Webhook); err != nil {
			bad = append(bad, ref)
			if failed == nil {
				failed = err
			}
			continue
		}
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
