package webhook

import (
	"encoding/json"
	"math"
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
	// (same organization, within KeyWindow(SourceKind)) return this event.
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
	// SourceKind is the kind of the source whose tool sent the event, ""
	// for an event an API caller reported: it decides how long the
	// event's key is remembered (KeyWindow). It is not stored.
	SourceKind SourceKind
}

// IdempotencyWindow is how long an Idempotency-Key an API caller chose
// is remembered: long enough for any sender's retries, short enough that
// a caller may reuse its keys a day later.
const IdempotencyWindow = 24 * time.Hour

// KeyKept is the window of a key that names one delivery of a tool's,
// which no later event can mean otherwise: it is remembered for as long
// as its event is kept (HOOKD_RETENTION removes it).
const KeyKept = time.Duration(math.MaxInt64)

// KeyWindow returns how long the idempotency key of an event from kind's
// tool is remembered ("": an API caller's Idempotency-Key).
//
// GitHub's, GitLab's and Qovery's keys are the tool's id of one
// delivery, which the tool can send again long after a day: GitHub
// redelivers any delivery of the past 3 days (a redelivery too, so a
// chain of them goes on), GitLab resends any of its request log's 2
// days, and a hookd feeding another through a QOVERY source recovers
// failed deliveries under their first webhook-id. Forgetting such a key
// would only turn a copy into a second notification to every webhook, so
// it is kept with its event. Flux's and Argo CD's keys are made from what
// the event says (an object, a revision, a reason), which a later
// deployment can say again (the same revision applied anew, a failure
// that persists): they last IdempotencyWindow, as an API caller's, which
// covers the tools' own retries (neither keeps a log of its requests to
// resend an old one from, as GitHub and GitLab do).
func KeyWindow(kind SourceKind) time.Duration {
	switch kind {
	case SourceGitHub, SourceGitLab, SourceQovery:
		return KeyKept
	}
	return IdempotencyWindow
}

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
