package webhook

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// SourceKind is the tool a source receives deployment events from.
type SourceKind string

const (
	SourceGitHub SourceKind = "GITHUB" // deployment_status events, X-Hub-Signature-256
	SourceGitLab SourceKind = "GITLAB" // Deployment Hook, X-Gitlab-Token
	SourceFlux   SourceKind = "FLUX"   // notification-controller generic-hmac, X-Signature
	SourceArgoCD SourceKind = "ARGOCD" // notifications webhook, the secret in a header
	SourceQovery SourceKind = "QOVERY" // Qovery's STANDARD webhook deliveries
)

// SourceKinds lists every source kind, in the API's order.
var SourceKinds = []SourceKind{SourceGitHub, SourceGitLab, SourceFlux, SourceArgoCD, SourceQovery}

// Limits on what a source may hold.
const (
	MaxSourceNameLength = 255
	// MinSourceSecretLength is the shortest secret a source may be given:
	// the secret is the ingest URL's only credential, so it must not be
	// guessable online. Secrets stored before the limit keep working.
	MinSourceSecretLength = 16
	MaxEnvironmentRules   = 100
	MaxRulePatternLength  = 255
)

// EnvironmentRule maps the tool's environment names matching Pattern
// (case-insensitive, '*' for any run of characters, as project_names_filter)
// to an environment type.
type EnvironmentRule struct {
	Pattern string          `json:"pattern"`
	Type    EnvironmentMode `json:"type"`
}

// Source is where an organization's deployment events come from when a
// tool reports them itself: each source has its own ingest URL and the
// shared secret that tool signs (or authenticates) its requests with.
type Source struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	CreatedAt      time.Time
	UpdatedAt      time.Time

	Kind   SourceKind
	Name   string
	Secret string // never returned, logged or shown
	// EnvironmentTypes are tried in order; the first match decides.
	EnvironmentTypes []EnvironmentRule
	// Unreadable is why Secret could not be decrypted, nil when it was,
	// as Webhook.Unreadable: Secret is then empty, the source can be
	// shown and deleted, not edited, and nothing can authenticate to it.
	Unreadable error
}

// EnvironmentType returns the type of the tool's environment name: that
// of the first rule whose pattern matches it, DEVELOPMENT when none does.
func (s *Source) EnvironmentType(name string) EnvironmentMode {
	for _, r := range s.EnvironmentTypes {
		if MatchProjectName(r.Pattern, name) {
			return r.Type
		}
	}
	return ModeDevelopment
}

// SourceSpec is what a caller chooses about a source: the body of create
// and edit.
type SourceSpec struct {
	Kind             SourceKind
	Name             string
	Secret           *string // nil: keep the stored secret (edit only)
	EnvironmentTypes []EnvironmentRule
}

// Validate reports the first thing wrong with the spec, naming its field.
// A source cannot be without a secret: it is the ingest URL's only
// credential.
func (s *SourceSpec) Validate(creating bool) error {
	if s.Kind == "" {
		return Invalid("kind", "is required (one of %s)", join(SourceKinds))
	}
	if !slices.Contains(SourceKinds, s.Kind) {
		return Invalid("kind", "must be one of %s, not %q", join(SourceKinds), s.Kind)
	}
	if strings.TrimSpace(s.Name) == "" {
		return Invalid("name", "is required")
	}
	if err := ValidText("name", s.Name); err != nil {
		return err
	}
	if utf8.RuneCountInString(s.Name) > MaxSourceNameLength {
		return Invalid("name", "is longer than %d characters", MaxSourceNameLength)
	}
	switch {
	case s.Secret == nil && creating:
		return Invalid("secret", "is required: it is what the tool signs its requests with, and the ingest URL's only credential")
	case s.Secret != nil && strings.TrimSpace(*s.Secret) == "":
		return Invalid("secret", "must not be empty: it is the ingest URL's only credential")
	case s.Secret != nil && utf8.RuneCountInString(*s.Secret) < MinSourceSecretLength:
		return Invalid("secret", "is shorter than %d characters: it is the ingest URL's only credential (try `openssl rand -hex 32`)", MinSourceSecretLength)
	case s.Secret != nil && utf8.RuneCountInString(*s.Secret) > MaxSecretLength:
		return Invalid("secret", "is longer than %d characters", MaxSecretLength)
	}
	if s.Secret != nil {
		if err := ValidText("secret", *s.Secret); err != nil {
			return err
		}
		if err := s.Kind.checkHeaderSecret(*s.Secret); err != nil {
			return err
		}
	}
	if len(s.EnvironmentTypes) > MaxEnvironmentRules {
		return Invalid("environment_types", "has more than %d rules", MaxEnvironmentRules)
	}
	for _, r := range s.EnvironmentTypes {
		if strings.TrimSpace(r.Pattern) == "" {
			return Invalid("environment_types", "every rule needs a pattern")
		}
		if utf8.RuneCountInString(r.Pattern) > MaxRulePatternLength {
			return Invalid("environment_types", "patterns must be at most %d characters", MaxRulePatternLength)
		}
		if err := ValidText("environment_types", r.Pattern); err != nil {
			return err
		}
		if !slices.Contains(EnvironmentModes, r.Type) {
			return Invalid("environment_types", "%q is not an environment type (one of %s)", r.Type, join(EnvironmentModes))
		}
	}
	return nil
}

// ValidateEdit reports what Validate(false) cannot see without the
// stored source: a change of kind that keeps a secret the new kind's tool
// could not send.
func (s *SourceSpec) ValidateEdit(stored *Source) error {
	if s.Secret != nil || s.Kind == stored.Kind {
		return nil
	}
	if s.Kind.checkHeaderSecret(stored.Secret) != nil {
		return Invalid("secret", "is required to change the kind to %s: the stored secret holds what %s cannot carry (anything but printable ASCII, or a space at either end)", s.Kind, sourceSecretHeaders[s.Kind])
	}
	return nil
}

// sourceSecretHeaders names the header each kind's tool sends the secret
// in as it is, for the kinds whose tool does not sign with it.
var sourceSecretHeaders = map[SourceKind]string{
	SourceGitLab: "X-Gitlab-Token",
	SourceArgoCD: "X-Hookd-Token",
	SourceQovery: "Qovery-Signature",
}

// checkHeaderSecret refuses a secret k's tool would send in a header that
// cannot carry it: a header value holds no control character, HTTP drops
// the spaces around it, and tools differ in how they encode anything
// past ASCII, so such a secret could never match what the tool sends.
// It is the rule of webhooks' secrets (ValidateSecret). Kinds whose tool
// signs with the secret (an HMAC key) take any text.
func (k SourceKind) checkHeaderSecret(secret string) error {
	header, ok := sourceSecretHeaders[k]
	if !ok {
		return nil
	}
	if i := headerUnsafe(secret); i >= 0 {
		return Invalid("secret", "must be printable ASCII for %s (its tool sends it in the %s header); it has a byte 0x%02x at position %d", k, header, secret[i], i)
	}
	if strings.TrimSpace(secret) != secret {
		return Invalid("secret", "must not start or end with a space for %s: the %s header drops it", k, header)
	}
	return nil
}

// Apply sets s's chosen fields from spec. A nil secret keeps the stored one.
func (s *Source) Apply(spec SourceSpec) {
	s.Kind = spec.Kind
	s.Name = spec.Name
	if spec.Secret != nil {
		s.Secret = *spec.Secret
	}
	s.EnvironmentTypes = nonNil(spec.EnvironmentTypes)
}

// SourceRef names a source.
type SourceRef struct {
	OrganizationID uuid.UUID
	ID             uuid.UUID
}

// SourceAudit returns the entry that records a change of a source from
// before to after (before nil: a creation; after nil: a deletion), or nil
// when nothing changed. The secret's value is never recorded.
func SourceAudit(by Actor, at time.Time, before, after *Source) *AuditEntry {
	var zero Source
	b, a := before, after
	if b == nil {
		b = &zero
	}
	if a == nil {
		a = &zero
	}
	e := &AuditEntry{CreatedAt: at, Actor: by}
	add := changeAdder(&e.Changes, before != nil, after != nil)
	add("kind", b.Kind, a.Kind, b.Kind == a.Kind)
	add("name", b.Name, a.Name, b.Name == a.Name)
	if s := secretChange(b.Secret, a.Secret); s != "" {
		e.Changes = append(e.Changes, Change{Field: "secret", Secret: s})
	}
	add("environment_types", nonNil(b.EnvironmentTypes), nonNil(a.EnvironmentTypes), slices.Equal(b.EnvironmentTypes, a.EnvironmentTypes))
	switch {
	case before == nil && after == nil:
		return nil
	case before == nil:
		e.Action = AuditSourceCreated
	case after == nil:
		e.Action = AuditSourceDeleted
		a = b
	default:
		if len(e.Changes) == 0 {
			return nil
		}
		e.Action = AuditSourceUpdated
	}
	e.OrganizationID, e.ResourceID, e.ResourceName = a.OrganizationID, a.ID, a.Name
	return e
}
