package webhook

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// AuditAction names what an audit entry records.
type AuditAction string

const (
	AuditWebhookCreated AuditAction = "webhook.created"
	// AuditWebhookUpdated is an edit that left `enabled` as it was; an
	// edit that flips it is AuditWebhookEnabled or AuditWebhookDisabled
	// (with the other fields it changed in the same entry), so "who
	// turned this off" is one filter on the action.
	AuditWebhookUpdated  AuditAction = "webhook.updated"
	AuditWebhookEnabled  AuditAction = "webhook.enabled"
	AuditWebhookDisabled AuditAction = "webhook.disabled"
	AuditWebhookDeleted  AuditAction = "webhook.deleted"
	// AuditWebhookRecovered is a caller re-queueing a webhook's failed
	// deliveries in bulk, and perhaps its pending ones waiting for a
	// retry (DeliveryRecover); its changes are the window asked for and
	// how many deliveries were re-queued (see RecoveredCount).
	AuditWebhookRecovered AuditAction = "webhook.recovered"
	AuditTokenCreated     AuditAction = "token.created"
	AuditTokenRevoked     AuditAction = "token.revoked"
	AuditSourceCreated    AuditAction = "source.created"
	AuditSourceUpdated    AuditAction = "source.updated"
	AuditSourceDeleted    AuditAction = "source.deleted"
)

// AuditActions lists every action, in the API's order.
var AuditActions = []AuditAction{AuditWebhookCreated, AuditWebhookUpdated, AuditWebhookEnabled, AuditWebhookDisabled,
	AuditWebhookDeleted, AuditWebhookRecovered, AuditTokenCreated, AuditTokenRevoked, AuditSourceCreated, AuditSourceUpdated, AuditSourceDeleted}

// ResourceType is the kind of thing the action is about: "webhook",
// "token" or "source", the part of the action before the dot.
func (a AuditAction) ResourceType() string {
	t, _, _ := strings.Cut(string(a), ".")
	return t
}

// ActorKind says what kind of caller made a change.
type ActorKind string

const (
	ActorToken ActorKind = "token" // an API token; the actor's ID is the token's id
	ActorJWT   ActorKind = "jwt"   // a JWT; the actor's ID is its sub claim
	ActorCLI   ActorKind = "cli"   // the hookd command on the server's machine; the ID is the OS user, if known
	ActorHookd ActorKind = "hookd" // hookd itself (a webhook disabled after a 410); no ID
)

// ActorKinds lists every actor kind, in the API's order.
var ActorKinds = []ActorKind{ActorToken, ActorJWT, ActorCLI, ActorHookd}

// Actor is who made a change.
type Actor struct {
	Kind ActorKind
	ID   string
}

// SecretChange says what happened to a value the audit trail never
// records: a webhook's secret, or the credentials in its target URL.
type SecretChange string

const (
	SecretSet     SecretChange = "set"
	SecretChanged SecretChange = "changed"
	SecretRemoved SecretChange = "removed"
)

// Change is one field a change set. Before and After are the field's JSON
// values as the API shows them, absent when the field did not exist
// before (a creation) or after (a deletion). A secret's value is never
// recorded: target_secret's Change has no values, only Secret. A
// target_url with user:password has its password masked, and Secret
// "changed" when the password alone changed.
type Change struct {
	Field  string          `json:"field"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
	Secret SecretChange    `json:"secret,omitempty"`
}

// AuditEntry records one change to an organization's webhooks or API
// tokens: who made it, when, and what it changed. The store writes it in
// the same transaction as the change it describes.
type AuditEntry struct {
	ID             uuid.UUID // UUIDv7: ordering by ID is ordering by when it was recorded
	OrganizationID uuid.UUID
	CreatedAt      time.Time
	Actor          Actor
	Action         AuditAction
	ResourceID     uuid.UUID // the webhook's or token's id
	// ResourceName names the resource as a person knows it: a webhook's
	// target URL (credentials masked), a token's name.
	ResourceName string
	Changes      []Change
}

// WebhookAudit returns the entry that records a change of a webhook from
// before to after (before nil: a creation; after nil: a deletion), made by
// by at the given time, or nil when no field a person can see changed.
// Its ID is left for the store to set.
func WebhookAudit(by Actor, at time.Time, before, after *Webhook) *AuditEntry {
	e := &AuditEntry{CreatedAt: at, Actor: by, Changes: WebhookChanges(before, after)}
	switch {
	case before == nil && after == nil:
		return nil
	case before == nil:
		e.Action, e.OrganizationID, e.ResourceID, e.ResourceName = AuditWebhookCreated, after.OrganizationID, after.ID, RedactedURL(after.TargetURL)
		return e
	case after == nil:
		e.Action, e.OrganizationID, e.ResourceID, e.ResourceName = AuditWebhookDeleted, before.OrganizationID, before.ID, RedactedURL(before.TargetURL)
		return e
	}
	if len(e.Changes) == 0 {
		return nil
	}
	e.OrganizationID, e.ResourceID, e.ResourceName = after.OrganizationID, after.ID, RedactedURL(after.TargetURL)
	switch {
	case !before.Enabled && after.Enabled:
		e.Action = AuditWebhookEnabled
	case before.Enabled && !after.Enabled:
		e.Action = AuditWebhookDisabled
	default:
		e.Action = AuditWebhookUpdated
	}
	return e
}

// DisabledByHookdAudit returns the entry that records hookd disabling a
// webhook by itself (a 410 Gone, or failing for too long), for the
// webhook's target URL and the reason it stores. A webhook that is enabled
// has no disabled reason (a person enabling it clears it), hence the
// empty "before".
func DisabledByHookdAudit(at time.Time, targetURL, reason string) *AuditEntry {
	return &AuditEntry{
		CreatedAt:    at,
		Actor:        Actor{Kind: ActorHookd},
		Action:       AuditWebhookDisabled,
		ResourceName: RedactedURL(targetURL),
		Changes: []Change{
			{Field: "enabled", Before: jsonValue(true), After: jsonValue(false)},
			{Field: "disabled_reason", Before: jsonValue(""), After: jsonValue(reason)},
		},
	}
}

// WebhookChanges lists the fields that differ between two states of a
// webhook, named and ordered as in the API. With before nil (after nil)
// every field is listed with only its After (Before) value, except an
// absent secret and an empty disabled reason.
func WebhookChanges(before, after *Webhook) []Change {
	var zero Webhook
	b, a := before, after
	if b == nil {
		b = &zero
	}
	if a == nil {
		a = &zero
	}
	whole := before == nil || after == nil
	var out []Change
	add := changeAdder(&out, before != nil, after != nil)
	add("kind", b.Kind, a.Kind, b.Kind == a.Kind)
	if whole || b.TargetURL != a.TargetURL {
		add("target_url", RedactedURL(b.TargetURL), RedactedURL(a.TargetURL), false)
		if last := &out[len(out)-1]; !whole && RedactedURL(b.TargetURL) == RedactedURL(a.TargetURL) {
			last.Secret = SecretChanged // only the masked password differs
		}
	}
	if s := secretChange(b.TargetSecret, a.TargetSecret); s != "" {
		out = append(out, Change{Field: "target_secret", Secret: s})
	}
	add("description", b.Description, a.Description, b.Description == a.Description)
	add("enabled", b.Enabled, a.Enabled, b.Enabled == a.Enabled)
	add("events", nonNil(b.Events), nonNil(a.Events), slices.Equal(b.Events, a.Events))
	add("project_names_filter", nonNil(b.ProjectNamesFilter), nonNil(a.ProjectNamesFilter), slices.Equal(b.ProjectNamesFilter, a.ProjectNamesFilter))
	add("environment_types_filter", nonNil(b.EnvironmentTypesFilter), nonNil(a.EnvironmentTypesFilter), slices.Equal(b.EnvironmentTypesFilter, a.EnvironmentTypesFilter))
	if b.DisabledReason != a.DisabledReason {
		add("disabled_reason", b.DisabledReason, a.DisabledReason, false)
	}
	return out
}

// changeAdder returns a function that appends to out the change of one
// field, with its Before value when there is a before and its After when
// there is an after. A field that is the same on both sides is left out,
// unless one side is missing (a creation or a deletion lists every field).
func changeAdder(out *[]Change, hasBefore, hasAfter bool) func(field string, bv, av any, same bool) {
	whole := !hasBefore || !hasAfter
	return func(field string, bv, av any, same bool) {
		if same && !whole {
			return
		}
		c := Change{Field: field}
		if hasBefore {
			c.Before = jsonValue(bv)
		}
		if hasAfter {
			c.After = jsonValue(av)
		}
		*out = append(*out, c)
	}
}

func secretChange(before, after string) SecretChange {
	switch {
	case before == after:
		return ""
	case before == "":
		return SecretSet
	case after == "":
		return SecretRemoved
	}
	return SecretChanged
}

// jsonValue encodes a value of a webhook field; they all marshal.
func jsonValue(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// AuditListParams selects audit entries, newest first. Before is a cursor:
// only entries with a smaller ID (older) are returned.
type AuditListParams struct {
	OrganizationID uuid.UUID
	Before         uuid.UUID // uuid.Nil: from the newest
	Limit          int
}

// TokenAudit returns the entry that records creating or revoking t, made
// by by at the given time. A revocation needs only t.ID: the store fills
// in the organization and the name from the token it revokes.
func TokenAudit(by Actor, at time.Time, action AuditAction, t *Token) *AuditEntry {
	e := &AuditEntry{CreatedAt: at, Actor: by, Action: action, OrganizationID: t.OrganizationID, ResourceID: t.ID, ResourceName: t.Name,
		Changes: []Change{}}
	if action == AuditTokenCreated {
		e.Changes = []Change{{Field: "name", After: jsonValue(t.Name)}}
	}
	return e
}
