package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// WebhookChange is an edit or a delete of one stored webhook, decided
// against the row as it is inside the writing transaction (locked until
// it commits), never against an earlier read: a field the change does not
// name keeps the value stored when the write commits, and the audit
// entry's "before" is that row.
type WebhookChange struct {
	OrganizationID uuid.UUID
	ID             uuid.UUID
	// Apply is called with the stored webhook (secrets in clear). For
	// WebhookUpdate it changes w in place; for both it returns the audit
	// entry recording the change (nil: nothing to record) or an error
	// that aborts the change and is returned as it is. A store may call
	// it more than once (a retried transaction), each time on a fresh
	// row. A nil Apply changes nothing and records nothing.
	Apply func(w *Webhook) (*AuditEntry, error)
}

// Run calls Apply, if any.
func (c WebhookChange) Run(w *Webhook) (*AuditEntry, error) {
	if c.Apply == nil {
		return nil, nil
	}
	return c.Apply(w)
}

// EditedAt is the UpdatedAt an edit made at now gives a webhook last
// changed at prev: now, or a microsecond after prev when now is not
// after it (the clock stamping the edit is behind the one that stamped
// prev: another node's, or this one's, stepped back). A version never
// goes back: the dispatcher gives back the deliveries it holds that read
// the webhook before an edit by comparing their UpdatedAt with the
// edit's (delivery.Dispatcher.Edited), so an edit dated earlier than
// the version they read would let them go out as the webhook was. Both
// backends write hookd's own disable by the same rule, in SQL (see
// DisabledWebhook). A source's edit takes it too: its ETag sees a new
// secret only through UpdatedAt, so an edit dated as the version it
// replaces would keep that version's ETag.
func EditedAt(prev, now time.Time) time.Time {
	if now.After(prev) {
		return now
	}
	return prev.Add(time.Microsecond)
}

// ETag is an opaque strong validator of what the API shows of w: it
// changes with every edit, a person's or hookd's own disable (UpdatedAt,
// which every edit moves forward, EditedAt, and the fields an edit
// changes). It hashes nothing sealed (the target URL, the secrets): a
// delete reads a webhook whose key is gone with those cleared, and its
// ETag must still be the one its owner last read, as a source's.
func (w *Webhook) ETag() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%q\x00%t\x00%q\x00%q\x00%q\x00%q",
		w.UpdatedAt.UnixMicro(), w.Kind, w.Description, w.Enabled,
		w.Events, w.ProjectNamesFilter, w.EnvironmentTypesFilter, w.DisabledReason)
	return `"` + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18]) + `"`
}

// Sendable returns nil when the dispatcher can send to w, or a conflict
// that says what to do before doing (sending a test event, a retry):
// it sends nothing to a disabled webhook, and cannot to one whose target
// it cannot decrypt, so what was queued would fail unsent, or wait.
func (w *Webhook) Sendable(doing string) error {
	if w.Unreadable != nil {
		return Undecryptable("webhook", "target URL and secret", doing)
	}
	if !w.Enabled {
		return Errorf(EConflict, "the webhook is disabled: enable it before %s", doing)
	}
	return nil
}

// CheckIfMatch applies an If-Match header (RFC 9110 §13.1.1) to w: empty
// asks for nothing, "*" for any existing webhook, and a list of entity
// tags for one of them (compared strongly, so a weak tag never matches).
// It returns a Precondition error when none matches.
func (w *Webhook) CheckIfMatch(header string) error {
	return checkIfMatch(header, w.ETag(), "webhook")
}

// SourceChange is an edit of one stored source, decided against the row
// as it is inside the writing transaction, as WebhookChange is for a
// webhook: a concurrent edit either committed before and is seen (and
// an If-Match naming the version before it fails), or waits.
type SourceChange struct {
	Ref SourceRef
	// Apply is called with the stored source (secret in clear), changes
	// it in place and returns the audit entry recording the change (nil:
	// nothing to record), or an error that aborts the change and is
	// returned as it is. A store may call it more than once, each time on
	// a fresh row.
	Apply func(s *Source) (*AuditEntry, error)
}

// Run calls Apply, if any.
func (c SourceChange) Run(s *Source) (*AuditEntry, error) {
	if c.Apply == nil {
		return nil, nil
	}
	return c.Apply(s)
}

// ETag is an opaque strong validator of what the API shows of s: it
// changes with every edit (UpdatedAt, which every edit moves forward,
// EditedAt). It hashes nothing of the secret, not even whether one is
// set: every source has one, and a delete reads a source whose key is
// gone with its secret cleared, whose ETag must still be the one its
// owner last read.
func (s *Source) ETag() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%q\x00%q",
		s.UpdatedAt.UnixMicro(), s.Kind, s.Name, s.EnvironmentTypes)
	return `"` + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18]) + `"`
}

// CheckIfMatch applies an If-Match header to s, as Webhook.CheckIfMatch.
func (s *Source) CheckIfMatch(header string) error {
	return checkIfMatch(header, s.ETag(), "source")
}

// checkIfMatch is RFC 9110's If-Match against the current ETag of a
// resource called what.
func checkIfMatch(header, current, what string) error {
	header = strings.TrimSpace(header)
	if header == "" || header == "*" {
		return nil
	}
	for _, tag := range strings.Split(header, ",") {
		if strings.TrimSpace(tag) == current {
			return nil
		}
	}
	return Errorf(EPrecondition, "the %s changed since you read it (If-Match does not match its ETag %s); read it again", what, current)
}
