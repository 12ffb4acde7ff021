package webhook

import (
	"math"
	"time"

	"github.com/google/uuid"
)

// DeliveryStatus is where a delivery stands. Pending and running are the
// queue; succeeded and failed are final.
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "pending"   // waiting for its next attempt at DueAt
	DeliveryRunning   DeliveryStatus = "running"   // claimed by a worker whose lease ends at DueAt
	DeliverySucceeded DeliveryStatus = "succeeded" // a 2xx came back
	DeliveryFailed    DeliveryStatus = "failed"    // every attempt failed, or the webhook is gone
)

// DeliveryStatuses lists every status, for validating filters.
var DeliveryStatuses = []DeliveryStatus{DeliveryPending, DeliveryRunning, DeliverySucceeded, DeliveryFailed}

// Delivery carries one event to one webhook, over one or more attempts.
type Delivery struct {
	ID             uuid.UUID // UUIDv7: ordering by ID is ordering by creation
	OrganizationID uuid.UUID
	WebhookID      uuid.UUID
	EventID        uuid.UUID
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Status         DeliveryStatus
	// DueAt is the time of the next attempt while pending, and the end of
	// the worker's lease while running: a running delivery whose lease has
	// passed is due again, which is how a crashed worker's work is taken over.
	DueAt          time.Time
	Attempts       int
	LastStatusCode int
	LastError      string
	EventType      EventType
	// Lease is the fencing token of the delivery's current lease: every
	// claim gives it a new value, so the outcome, renewal or release of a
	// worker whose lease was taken over names an old one and is refused.
	Lease int64
}

// Task is a claimed delivery with everything needed to send it.
type Task struct {
	Delivery Delivery
	Event    Event
	Webhook  Webhook
}

// Ref names the delivery under its current lease, to give it back.
func (d *Delivery) Ref() DeliveryRef {
	return DeliveryRef{OrganizationID: d.OrganizationID, WebhookID: d.WebhookID, ID: d.ID, Lease: d.Lease}
}

// Ref names the task's delivery, to give it back.
func (t *Task) Ref() DeliveryRef { return t.Delivery.Ref() }

// Attempt is one HTTP request of a delivery, and what came back.
type Attempt struct {
	ID             uuid.UUID // UUIDv7
	OrganizationID uuid.UUID
	WebhookID      uuid.UUID
	DeliveryID     uuid.UUID
	EventID        uuid.UUID
	CreatedAt      time.Time
	Number         int // 1 for the first attempt of the delivery
	Kind           Kind
	TargetURL      string // as used, credentials masked
	StatusCode     int    // 0 when no HTTP answer came
	ResponseBody   string // up to 64 KiB
	Duration       time.Duration
	Error          string // why it failed without an answer (timeout, refused address...)

	// Event is filled by AttemptList so the request can be rendered again.
	Event *Event
}

// Outcome is what the dispatcher decided after an attempt.
type Outcome struct {
	Attempt Attempt
	// Lease is the Delivery.Lease the attempt was made under: the outcome
	// is stored only if the delivery is still running under that lease.
	Lease int64
	// Status is the delivery's new status: succeeded, failed, or pending
	// again with NextAttemptAt. A failed outcome that disables its webhook
	// for failing too long also carries, in NextAttemptAt, the retry it
	// gets if the streak it judged has ended (see AgainstStored); the
	// stores read NextAttemptAt only for a pending one.
	Status        DeliveryStatus
	NextAttemptAt time.Time
	// DisableReason, when set, disables the webhook with that reason.
	DisableReason string
	// WebhookUpdatedAt is the webhook's UpdatedAt as the attempt read it:
	// the version of the webhook its answer is about. A disable applies
	// to that version only (see Against).
	WebhookUpdatedAt time.Time
	// FailingSince is, for an outcome that disables its webhook for
	// failing too long (OutcomeRules.DisableAfter), the webhook's
	// FailingSince as the attempt read it: the streak of failures it
	// judged, which a success recorded since has ended (see
	// AgainstStored). Zero for every other outcome.
	FailingSince time.Time
	// Outdated says the webhook was edited after the attempt read it: the
	// outcome disables nothing and counts in no webhook's health (see
	// Against).
	Outdated bool
	// Retried says the store records as a retry an outcome decided as a
	// failure that disables its webhook: one Outdated, or one whose streak
	// of failures has ended (see AgainstStored). DeliveryComplete reports
	// it in CompleteResult.Outdated, so that the dispatcher counts it as
	// the retry it is.
	Retried bool
}

// Ref names the outcome's delivery, under the lease its attempt was made
// under: what DeliveryComplete returns for an outcome it did not store.
func (o *Outcome) Ref() DeliveryRef {
	a := &o.Attempt
	return DeliveryRef{OrganizationID: a.OrganizationID, WebhookID: a.WebhookID, ID: a.DeliveryID, Lease: o.Lease}
}

// ValidateOutcomes checks that each outcome leaves its delivery in a state
// the queue knows, so both backends refuse the same mistakes.
func ValidateOutcomes(outcomes []Outcome) error {
	for _, o := range outcomes {
		switch o.Status {
		case DeliverySucceeded, DeliveryFailed:
		case DeliveryPending:
			if o.NextAttemptAt.IsZero() {
				return Errorf(EInvalid, "a pending outcome needs NextAttemptAt")
			}
		default:
			return Errorf(EInvalid, "%q is not an outcome status", o.Status)
		}
		// A status line has three digits, and both backends store the
		// number as a 32-bit integer. A zero start would read as "not
		// failing" in the webhook's health (see HealthChange.Since).
		switch a := o.Attempt; {
		case a.StatusCode < 0 || a.StatusCode > 999:
			return Errorf(EInvalid, "%d is not an HTTP status code (0 for no answer, else at most 999)", a.StatusCode)
		case a.Number < 1 || a.Number > math.MaxInt32:
			return Errorf(EInvalid, "attempt number %d is out of range (1 to %d)", a.Number, math.MaxInt32)
		case a.CreatedAt.IsZero():
			return Errorf(EInvalid, "an attempt needs its start time (CreatedAt)")
		case a.WebhookID == uuid.Nil || a.DeliveryID == uuid.Nil:
			return Errorf(EInvalid, "an attempt needs its webhook and delivery (WebhookID, DeliveryID): they name the delivery")
		case o.DisableReason != "" && o.WebhookUpdatedAt.IsZero():
			return Errorf(EInvalid, "an outcome that disables its webhook needs the webhook's version the attempt read (WebhookUpdatedAt)")
		}
	}
	return nil
}

// ValidateRefs checks that each ref names a delivery whole: a ref without
// its webhook would find nothing on a backend that looks deliveries up by
// webhook and id, and its lease would read as lost.
func ValidateRefs(refs []DeliveryRef) error {
	for _, r := range refs {
		if r.WebhookID == uuid.Nil || r.ID == uuid.Nil {
			return Errorf(EInvalid, "a delivery ref needs its webhook and id (WebhookID, ID)")
		}
	}
	return nil
}

// Validate checks a release's refs and its delay, which both backends
// refuse alike.
func (p ReleaseParams) Validate() error {
	if p.After < 0 {
		return Errorf(EInvalid, "a release's delay (After) is %s; it cannot be negative", p.After)
	}
	return ValidateRefs(p.Refs)
}
