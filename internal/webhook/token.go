package webhook

import (
	"time"

	"github.com/google/uuid"
)

// Token is an API token: valid for one organization, stored as a hash.
type Token struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	Name           string
	Hash           []byte
	CreatedAt      time.Time
	LastUsedAt     time.Time // zero when never used
	RevokedAt      time.Time // zero while valid
}
