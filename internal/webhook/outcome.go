package webhook

import (
	"fmt"
	"net/http"
	"time"
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
// retried when the schedule (or the target's Retry-After, bounded by the
// schedule) says.
func (r OutcomeRules) Decide(w *Webhook, a Attempt, retryAfter time.Duration) Outcome {
	o := Outcome{Attempt: a, Status: DeliveryFailed}
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
		return o
	}
	next, ok := r.Schedule.Next(a.Number, start, r.Rand)
	if !ok {
		return o
	}
	if retryAfter > 0 && (a.StatusCode == http.StatusTooManyRequests || a.StatusCode == http.StatusServiceUnavailable) {
		next = start.Add(r.Schedule.Clamp(retryAfter))
	}
	o.Status, o.NextAttemptAt = DeliveryPending, next
	return o
}
