package webhook

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// DeliveryRecoverParams selects the deliveries DeliveryRecover makes due
// again: those of one webhook created in [Since, Until) whose last
// attempt got an answer in LastStatus, and that either failed or, with
// Pending, wait for a retry.
type DeliveryRecoverParams struct {
	OrganizationID uuid.UUID
	WebhookID      uuid.UUID
	Since          time.Time
	Until          time.Time
	LastStatus     *StatusRange // nil: whatever the last answer was
	// Pending also makes due at Now the pending deliveries that wait for a
	// retry: attempted at least once and due after Now. They keep their
	// attempt count: the retry they waited for is only made sooner, and
	// the schedule goes on from it. A pending delivery never attempted is
	// already due, waiting only for room, and one running is in flight:
	// neither is touched.
	Pending bool
	// Now is when the deliveries become due (PostgreSQL: the database's
	// now(), but under UseCallerClock), and their UpdatedAt.
	Now time.Time
	// Audit is recorded in the transaction of the change, with the
	// counts RecoveredCount adds. Nil records nothing.
	Audit *AuditEntry
}

// Recovered is what a recovery made due, by what each delivery was.
type Recovered struct {
	Failed  int // failed, now pending for one more attempt
	Pending int // pending for a later retry, now due (with Pending alone)
}

// Total is how many deliveries the recovery made due.
func (r Recovered) Total() int { return r.Failed + r.Pending }

// StatusRange is a range of HTTP status codes, both ends included; 0 is
// "no answer" (a timeout, a refused connection).
type StatusRange struct{ Min, Max int }

// ParseStatusRange reads the status filter of a recovery: "" (nil: any
// answer), "none" (no answer at all), a class such as "5xx", or one code
// such as "503".
func ParseStatusRange(s string) (*StatusRange, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return nil, nil
	case s == "none":
		return &StatusRange{0, 0}, nil
	case len(s) == 3 && s[0] >= '1' && s[0] <= '5' && s[1:] == "xx":
		c := int(s[0]-'0') * 100
		return &StatusRange{c, c + 99}, nil
	}
	if c, err := strconv.Atoi(s); err == nil && c >= 100 && c <= 599 {
		return &StatusRange{c, c}, nil
	}
	return nil, Invalid("status", "must be an HTTP status code such as 503, a class such as 5xx, or none (no answer), not %q", s)
}

// String is the filter as ParseStatusRange reads it.
func (r *StatusRange) String() string {
	switch {
	case r == nil:
		return ""
	case r.Max == 0:
		return "none"
	case r.Min == r.Max:
		return strconv.Itoa(r.Min)
	}
	return fmt.Sprintf("%dxx", r.Min/100)
}

// MaxRecoverWindow bounds how far back a recovery may reach; retention
// removes older deliveries anyway.
const MaxRecoverWindow = 90 * 24 * time.Hour

// ValidateRecover checks a recovery's window at now: since is required,
// until (zero: now) comes after it, and neither is in the future.
func ValidateRecover(since, until, now time.Time) error {
	switch {
	case since.IsZero():
		return Invalid("since", "is required: an RFC 3339 time such as %s", now.Add(-time.Hour).UTC().Format(time.RFC3339))
	case since.After(now):
		return Invalid("since", "is in the future")
	case !until.IsZero() && !until.After(since):
		return Invalid("until", "must be after since")
	case now.Sub(since) > MaxRecoverWindow:
		return Invalid("since", "is more than %d days ago", int(MaxRecoverWindow/(24*time.Hour)))
	}
	return nil
}

// RecoverAudit returns the entry that records a recovery of w's
// deliveries, made by by at the given time; the store adds how many it
// re-queued (RecoveredCount). The window and filter are its changes'
// "after" values, so the trail says exactly what was asked.
func RecoverAudit(by Actor, at time.Time, w *Webhook, p DeliveryRecoverParams) *AuditEntry {
	e := &AuditEntry{CreatedAt: at, Actor: by, Action: AuditWebhookRecovered, OrganizationID: w.OrganizationID, ResourceID: w.ID,
		ResourceName: RedactedURL(w.TargetURL)}
	e.Changes = append(e.Changes, Change{Field: "since", After: jsonValue(p.Since.UTC())}, Change{Field: "until", After: jsonValue(p.Until.UTC())})
	if p.LastStatus != nil {
		e.Changes = append(e.Changes, Change{Field: "status", After: jsonValue(p.LastStatus.String())})
	}
	return e
}

// RecoveredCount sets in p's entry how many deliveries the recovery made
// due: "deliveries" in all, as every recovery records it, and with
// p.Pending how many of them were "failed" and how many "pending", so the
// trail tells a recovery that asked for pending ones from one that did
// not. Counts set before are replaced: a store that recovers in batches
// sets them again with each batch. A nil entry is left alone.
func RecoveredCount(p DeliveryRecoverParams, r Recovered) {
	if p.Audit == nil {
		return
	}
	cs := p.Audit.Changes[:0]
	for _, c := range p.Audit.Changes {
		if c.Field != "deliveries" && c.Field != "failed" && c.Field != "pending" {
			cs = append(cs, c)
		}
	}
	cs = append(cs, Change{Field: "deliveries", After: jsonValue(r.Total())})
	if p.Pending {
		cs = append(cs, Change{Field: "failed", After: jsonValue(r.Failed)}, Change{Field: "pending", After: jsonValue(r.Pending)})
	}
	p.Audit.Changes = cs
}
