package webhook

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

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

// ETag is an opaque strong validator of what the API shows of w: it
// changes with every edit (UpdatedAt) and with hookd's own disable, which
// does not touch UpdatedAt. It hashes no secret.
func (w *Webhook) ETag() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%q\x00%t\x00%q\x00%t\x00%q\x00%q\x00%q\x00%q",
		w.UpdatedAt.UnixMicro(), w.Kind, w.TargetURL, w.TargetSecret != "", w.Description, w.Enabled,
		w.Events, w.ProjectNamesFilter, w.EnvironmentTypesFilter, w.DisabledReason)
	return `"` + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18]) + `"`
}

// CheckIfMatch applies an If-Match header (RFC 9110 §13.1.1) to w: empty
// asks for nothing, "*" for any existing webhook, and a list of entity
// tags for one of them (compared strongly, so a weak tag never matches).
// It returns a Precondition error when none matches.
func (w *Webhook) CheckIfMatch(header string) error {
	header = strings.TrimSpace(header)
	if header == "" || header == "*" {
		return nil
	}
	current := w.ETag()
	for _, tag := range strings.Split(header, ",") {
		if strings.TrimSpace(tag) == current {
			return nil
		}
	}
	return Errorf(EPrecondition, "the webhook changed since you read it (If-Match does not match its ETag %s); read it again", current)
}
