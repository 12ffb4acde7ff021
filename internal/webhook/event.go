package webhook

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event is a deployment event an organization reported. Its payload is
// stored once, already shaped as the "payload" object of Qovery's
// envelope, and every delivery renders its request from it.
type Event struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	CreatedAt      time.Time
	Type           EventType
	// IdempotencyKey, when set, makes a repeated intake with the same key
	// (same organization, within IdempotencyWindow) return this event.
	IdempotencyKey  string
	ProjectName     string
	EnvironmentMode EnvironmentMode
	Payload         json.RawMessage
	// ContentHash is what a reuse of IdempotencyKey is compared by (see
	// ContentHash); nil matches any content.
	ContentHash []byte

	// OnlyWebhookID, when set, sends the event to that webhook alone,
	// ignoring its filters and whether it is enabled (the "test" endpoint).
	OnlyWebhookID uuid.UUID
}

// IdempotencyWindow is how long an Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// EventReceipt is what intake answers once an event is committed.
type EventReceipt struct {
	ID         uuid.UUID
	CreatedAt  time.Time
	Deliveries int
	// Replayed is true when the Idempotency-Key matched an earlier event:
	// nothing new was stored.
	Replayed bool
	// DeliveryIDs are the deliveries created (empty when Replayed).
	DeliveryIDs []uuid.UUID
	// Tasks are the deliveries leased to the caller (see Lease).
	Tasks []*Task
}
