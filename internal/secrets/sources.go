package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// A source's secret is sealed like a webhook's, bound to the source's id,
// so it never reaches the database in the clear and a sealed value copied
// onto another row does not open.

// SourceCreate stores src with its secret sealed; src is unchanged.
func (s *Store) SourceCreate(ctx context.Context, src *webhook.Source, audit *webhook.AuditEntry) error {
	sealed, err := s.sealedSource(src)
	if err != nil {
		return err
	}
	return s.Store.SourceCreate(ctx, sealed, audit)
}

// SourceUpdate stores src with its secret sealed anew; src is unchanged.
func (s *Store) SourceUpdate(ctx context.Context, src *webhook.Source, audit *webhook.AuditEntry) error {
	sealed, err := s.sealedSource(src)
	if err != nil {
		return err
	}
	return s.Store.SourceUpdate(ctx, sealed, audit)
}

func (s *Store) SourceGet(ctx context.Context, ref webhook.SourceRef) (*webhook.Source, error) {
	src, err := s.Store.SourceGet(ctx, ref)
	if err != nil {
		return nil, err
	}
	if src.Secret, err = s.Keys.Open(src.ID, src.Secret); err != nil {
		return nil, err
	}
	return src, nil
}

func (s *Store) SourceList(ctx context.Context, orgID uuid.UUID) ([]*webhook.Source, error) {
	list, err := s.Store.SourceList(ctx, orgID)
	if err != nil {
		return nil, err
	}
	for _, src := range list {
		if src.Secret, err = s.Keys.Open(src.ID, src.Secret); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func (s *Store) sealedSource(src *webhook.Source) (*webhook.Source, error) {
	c := *src
	var err error
	c.Secret, err = s.Keys.Seal(src.ID, src.Secret)
	return &c, err
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
		sealed, err := resealed(keys, src.ID, src.Secret)
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
