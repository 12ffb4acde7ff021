package secrets

import (
	"context"

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
