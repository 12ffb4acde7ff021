package webhook

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
)

// OutcomeRules decide what follows an attempt: the delivery's next status
// and due time, and whether its webhook is disabled. The dispatcher sends;
// these rules, not it, decide.
type OutcomeRules struct {
	Schedule Schedule
	// DisableAfter disables a webhook failing continuously this long.
	DisableAfter time.Duration
	// Rand varies retry delays (see Schedule.Next); nil: math/rand/v2.
	Rand func() float64
}

// Decide returns the outcome of attempt a of a delivery to w, as w was
// when the delivery was claimed. a carries the attempt's Number, its
// CreatedAt (when it started), and what came back: StatusCode (0 without
// an answer) and Error (set when the attempt failed without an answer,
// or its answer could not be read). retryAfter is the delay the target
// asked for, honoured on a 429 or 503 only.
//
// In order: a webhook disabled since the delivery was made gets nothing
// more; a 2xx succeeds; a 410 Gone fails the delivery and disables the
// webhook; a webhook failing since at least DisableAfter ago is disabled;
// the last attempt of the schedule fails the delivery; anything else is
// retried when the schedule says, or later if the target's Retry-After
// (bounded by the schedule's longest delay) says so.
func (r OutcomeRules) Decide(w *Webhook, a Attempt, retryAfter time.Duration) Outcome {
	o := Outcome{Attempt: a, Status: DeliveryFailed, WebhookUpdatedAt: w.UpdatedAt}
	start := a.CreatedAt
	switch {
	case !w.Enabled:
		return o
	case a.Error == "" && a.StatusCode >= 200 && a.StatusCode < 300:
		o.Status = DeliverySucceeded
		return o
	case a.StatusCode == http.StatusGone:
		o.DisableReason = fmt.Sprintf("the target answered 410 Gone at %s", start.UTC().Format(time.RFC3339))
		return o
	case !w.FailingSince.IsZero() && start.Sub(w.FailingSince) >= r.DisableAfter:
		o.DisableReason = fmt.Sprintf("every attempt failed since %s (%s) with no success",
			w.FailingSince.UTC().Format(time.RFC3339), r.DisableAfter)
		// The retry this failure gets should the streak it judged have
		// ended by the time it is recorded (see AgainstStored).
		o.FailingSince, o.NextAttemptAt = w.FailingSince, r.retry(a, retryAfter)
		return o
	}
	if next := r.retry(a, retryAfter); !next.IsZero() {
		o.Status, o.NextAttemptAt = DeliveryPending, next
	}
	return o
}

// retry returns when the schedule retries a failed attempt a, zero if
// it has no attempt left. A target's Retry-After only moves the retry
// later: each answer uses up one attempt of the schedule, so a shorter
// one (a proxy's "Retry-After: 1" through a deploy) spent the whole
// schedule in seconds, where the schedule rides out a day's outage.
func (r OutcomeRules) retry(a Attempt, retryAfter time.Duration) time.Time {
	start := a.CreatedAt
	next, ok := r.Schedule.Next(a.Number, start, r.Rand)
	if !ok {
		return time.Time{}
	}
	if retryAfter > 0 && (a.StatusCode == http.StatusTooManyRequests || a.StatusCode == http.StatusServiceUnavailable) {
		if asked := start.Add(r.Schedule.Clamp(retryAfter)); asked.After(next) {
			next = asked
		}
	}
	return next
}

// Against is o against its webhook as stored when o is recorded, at
// version updatedAt (its UpdatedAt, which both backends keep to the
// microsecond). If the webhook was edited after the attempt read it
// (moved to a new URL, say, while the old one answered 410 Gone, or
// enabled again after hookd disabled it), an answer about the webhook as
// it was does not disable it as it is now: the delivery is due again at
// once, to be claimed, and sent or refused, as the webhook now is, and
// the outcome is Outdated, counted in no webhook's health. An outcome
// that disables nothing stands as it is, whatever the version.
func (o Outcome) Against(updatedAt time.Time) Outcome {
	if o.DisableReason == "" || o.WebhookUpdatedAt.UnixMicro() == updatedAt.UnixMicro() {
		return o
	}
	return o.outdated()
}

// outdated is o, which disables its webhook, made to disable nothing: its
// delivery due again at once, counted in no webhook's health.
func (o Outcome) outdated() Outcome {
	o.DisableReason, o.Status, o.NextAttemptAt, o.Outdated, o.Retried = "", DeliveryPending, o.Attempt.CreatedAt, true, true
	return o
}

// streakEnded is o, which disables its webhook for failing too long, once
// the streak it judged has ended: the failure it is, without the disable,
// counted in its webhook's health (it starts the new streak). Retried when
// the schedule says (the NextAttemptAt Decide gave it), so that the
// dispatcher counts it as the retry it is; or, if the schedule had no
// attempt left, failed for good like any last failure.
func (o Outcome) streakEnded() Outcome {
	o.DisableReason, o.FailingSince = "", time.Time{}
	if !o.NextAttemptAt.IsZero() {
		o.Status, o.Retried = DeliveryPending, true
	}
	return o
}

// StoredWebhook is what AgainstStored reads of a webhook as stored when a
// batch of outcomes is recorded, before the batch: its version
// (UpdatedAt) and its FailingSince (zero: not failing).
type StoredWebhook struct {
	UpdatedAt, FailingSince time.Time
}

// AgainstStored puts each outcome of a batch that disables its webhook
// against the webhook as stored (stored, before the batch; a webhook not
// in it was deleted, and its outcomes stand as they are), as if the
// batch's outcomes were applied one by one, in order: one about an
// older version is Against it, and one that disables the webhook for
// failing too long (its FailingSince set) is the plain failure it is
// (streakEnded) if the streak of failures it judged has ended, a success
// having been recorded since the attempt read the webhook (stored, or
// earlier in the batch): the webhook has not failed for that long. Such
// a failure, decided by a task queued behind the webhook's in-flight
// limit, or claimed on another node, while a success was recorded, would
// otherwise disable a webhook that had just succeeded, and fail every
// delivery waiting for it.
//
// Only the outcomes the store will record move the streak, as in
// HealthChanges: running holds the refs, lease included, of the batch's
// deliveries of those webhooks that are running, as stored before the
// batch, and an outcome is recorded if its ref is there and no earlier
// outcome of the batch was recorded for its delivery. A stale one (its
// lease taken over) records nothing: its success ends no streak, its
// failure starts none.
//
// It returns the outcomes, a copy if one changed: the ones given are
// left as they are (SQLite's writer may run a transaction again).
func AgainstStored(outcomes []Outcome, stored map[WebhookRef]StoredWebhook, running map[DeliveryRef]bool) []Outcome {
	put := outcomes
	since := make(map[WebhookRef]time.Time, len(stored)) // each webhook's FailingSince as the batch goes
	for w, s := range stored {
		since[w] = s.FailingSince
	}
	recorded := map[DeliveryRef]bool{} // deliveries an outcome of the batch is recorded for, by ref without the lease
	for i, o := range outcomes {
		w := WebhookRef{OrganizationID: o.Attempt.OrganizationID, ID: o.Attempt.WebhookID}
		s, ok := stored[w]
		d := o.Ref()
		if !ok || !running[d] {
			continue
		}
		if d.Lease = 0; recorded[d] {
			continue
		}
		recorded[d] = true
		if o.DisableReason != "" {
			a := o.Against(s.UpdatedAt)
			if f := since[w]; !a.Outdated && !o.FailingSince.IsZero() && (f.IsZero() || f.UnixMicro() > o.FailingSince.UnixMicro()) {
				a = o.streakEnded()
			}
			if a.DisableReason == "" {
				if &put[0] == &outcomes[0] {
					put = slices.Clone(outcomes)
				}
				put[i], o = a, a
			}
		}
		// HealthChanges' rule.
		switch {
		case o.Outdated:
		case o.Status == DeliverySucceeded:
			since[w] = time.Time{}
		case since[w].IsZero():
			since[w] = o.Attempt.CreatedAt
		}
	}
	return put
}

// HealthChange is what a batch of recorded outcomes does to the health of
// one webhook (its FailingSince, and whether it is disabled), as if they
// were applied one by one, in order.
type HealthChange struct {
	OrganizationID, WebhookID uuid.UUID
	// Reset says a success came: the stored FailingSince is replaced by
	// Since. Without one, Since is written only if nothing is stored.
	Reset bool
	// Since is the first failure after the last success; zero if none.
	Since time.Time
	// Disable is the first outcome that disables the webhook; nil if none.
	// Later ones would find it disabled already, and a webhook disabled
	// meanwhile (by a person, or another node) keeps its reason.
	Disable *Outcome
}

// HealthChanges folds the outcomes a backend recorded into one change
// per webhook, in the order of each webhook's first outcome. webhooks[i]
// is the webhook of outcome i's delivery as stored (never the one the
// caller named, so an outcome touches only its own delivery's webhook),
// or uuid.Nil if the outcome was not recorded (its lease was gone). An
// Outdated outcome answered for the webhook as it was: it changes
// nothing.
func HealthChanges(outcomes []Outcome, webhooks []uuid.UUID) []HealthChange {
	var changes []HealthChange
	index := map[uuid.UUID]int{}
	for i, o := range outcomes {
		id := webhooks[i]
		if id == uuid.Nil || o.Outdated {
			continue
		}
		j, ok := index[id]
		if !ok {
			j = len(changes)
			index[id] = j
			changes = append(changes, HealthChange{OrganizationID: o.Attempt.OrganizationID, WebhookID: id})
		}
		c := &changes[j]
		switch {
		case o.Status == DeliverySucceeded:
			c.Reset, c.Since = true, time.Time{}
		case c.Since.IsZero():
			c.Since = o.Attempt.CreatedAt
		}
		if o.DisableReason != "" && c.Disable == nil {
			c.Disable = &outcomes[i]
		}
	}
	return changes
}
