// Package webhook is hookd's domain: organizations' webhooks, the
// deployment events they subscribe to, the deliveries that carry an event
// to a webhook, the attempts of each delivery, and API tokens. It defines
// the Store interface every backend implements.
//
// It imports no adapter (no database driver, no net/http): the store
// backends, the API and the dispatcher import it, never the reverse.
package webhook

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Kind says how a webhook's requests are shaped.
type Kind string

const (
	KindStandard Kind = "STANDARD" // Qovery's JSON envelope, signed
	KindSlack    Kind = "SLACK"    // a Slack incoming-webhook message
)

// Kinds lists every kind, in the API's order.
var Kinds = []Kind{KindStandard, KindSlack}

// EventType is the kind of deployment event a webhook subscribes to.
type EventType string

const (
	EventDeploymentStarted    EventType = "DEPLOYMENT_STARTED"
	EventDeploymentCancelled  EventType = "DEPLOYMENT_CANCELLED"
	EventDeploymentFailure    EventType = "DEPLOYMENT_FAILURE"
	EventDeploymentSuccessful EventType = "DEPLOYMENT_SUCCESSFUL"
)

// EventTypes lists every event type, in the API's order.
var EventTypes = []EventType{EventDeploymentStarted, EventDeploymentCancelled, EventDeploymentFailure, EventDeploymentSuccessful}

// EnvironmentMode is the mode of the environment a deployment runs in.
type EnvironmentMode string

const (
	ModeDevelopment EnvironmentMode = "DEVELOPMENT"
	ModePreview     EnvironmentMode = "PREVIEW"
	ModeProduction  EnvironmentMode = "PRODUCTION"
	ModeStaging     EnvironmentMode = "STAGING"
)

// EnvironmentModes lists every environment mode, in the API's order.
var EnvironmentModes = []EnvironmentMode{ModeDevelopment, ModePreview, ModeProduction, ModeStaging}

// Limits on what a webhook may hold; each one has its own clear error.
const (
	MaxTargetURLLength     = 2048
	MaxDescriptionLength   = 1024
	MaxProjectFilters      = 100
	MaxProjectFilterLength = 255
	MaxSecretLength        = 1024
)

// Webhook is an organization's subscription: where to send which events.
type Webhook struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	CreatedAt      time.Time
	UpdatedAt      time.Time

	Kind                   Kind
	TargetURL              string
	TargetSecret           string // never returned, logged or shown
	Description            string
	Enabled                bool
	Events                 []EventType
	ProjectNamesFilter     []string
	EnvironmentTypesFilter []EnvironmentMode

	// DisabledReason says why hookd itself disabled the webhook (410 Gone,
	// failing for too long); empty when enabled or disabled by a person.
	DisabledReason string
	// FailingSince is when the first failed attempt after the last success
	// happened; zero while the webhook is healthy.
	FailingSince time.Time

	// PreviousSecret is the secret TargetSecret replaced, at
	// SecretRotatedAt: deliveries are signed with it too for a grace
	// period (see SigningSecrets), so receivers can roll their key
	// without losing one. Like TargetSecret it is never returned, logged
	// or shown; both are empty and zero when there is nothing to roll.
	PreviousSecret  string
	SecretRotatedAt time.Time

	// Unreadable is why its sealed fields (TargetURL and the secrets)
	// could not be decrypted, naming the key (not configured, or the
	// value damaged), nil when they were: they are then empty, and the
	// webhook can be shown and deleted, not sent to or edited. Only the
	// reads that can go on without them return such a webhook (WebhookGet,
	// WebhookList, a delete's, intake's and a claim's, which send nothing
	// to it); the others fail with this error instead. For logs only: it
	// names keys, which callers are not told.
	Unreadable error
}

// Spec is what a caller chooses about a webhook: the body of create and
// edit. Nil pointers are fields the caller did not send.
type Spec struct {
	Kind                   Kind
	TargetURL              string
	TargetSecret           *string // nil: keep the stored secret (edit) or none (create)
	Description            string
	Enabled                *bool // nil: keep the stored state (edit) or enabled (create)
	Events                 []EventType
	ProjectNamesFilter     []string
	EnvironmentTypesFilter []EnvironmentMode
}

// Normalize removes duplicates from the spec's lists, keeping order.
func (s *Spec) Normalize() {
	s.Events = dedupe(s.Events)
	s.ProjectNamesFilter = dedupe(s.ProjectNamesFilter)
	s.EnvironmentTypesFilter = dedupe(s.EnvironmentTypesFilter)
}

// Validate reports the first thing wrong with the spec, naming its field.
func (s *Spec) Validate() error {
	if s.Kind == "" {
		return Invalid("kind", "is required (one of %s)", join(Kinds))
	}
	if !slices.Contains(Kinds, s.Kind) {
		return Invalid("kind", "must be one of %s, not %q", join(Kinds), s.Kind)
	}
	if err := ValidateTargetURL(s.TargetURL); err != nil {
		return err
	}
	if len(s.Events) == 0 {
		return Invalid("events", "must list at least one event type (%s)", join(EventTypes))
	}
	for _, e := range s.Events {
		if !slices.Contains(EventTypes, e) {
			return Invalid("events", "%q is not an event type (one of %s)", e, join(EventTypes))
		}
	}
	if err := ValidText("description", s.Description); err != nil {
		return err
	}
	if utf8.RuneCountInString(s.Description) > MaxDescriptionLength {
		return Invalid("description", "is longer than %d characters", MaxDescriptionLength)
	}
	if s.TargetSecret != nil {
		if err := ValidateSecret(*s.TargetSecret); err != nil {
			return err
		}
	}
	if len(s.ProjectNamesFilter) > MaxProjectFilters {
		return Invalid("project_names_filter", "has more than %d entries", MaxProjectFilters)
	}
	for _, p := range s.ProjectNamesFilter {
		if err := ValidText("project_names_filter", p); err != nil {
			return err
		}
		if strings.TrimSpace(p) == "" {
			return Invalid("project_names_filter", "entries must not be empty")
		}
		if utf8.RuneCountInString(p) > MaxProjectFilterLength {
			return Invalid("project_names_filter", "entries must be at most %d characters", MaxProjectFilterLength)
		}
	}
	for _, m := range s.EnvironmentTypesFilter {
		if !slices.Contains(EnvironmentModes, m) {
			return Invalid("environment_types_filter", "%q is not an environment type (one of %s)", m, join(EnvironmentModes))
		}
	}
	return nil
}

// ValidText refuses what no receiver or database can take in a string
// field: invalid UTF-8 and NUL. It is checked here, in the domain, so
// both backends refuse the same input the same way.
func ValidText(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalid(field, "must be valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Invalid(field, "must not contain a NUL character")
	}
	return nil
}

// StoredText is s as every backend stores a string it cannot refuse (a
// target's response body, an error, a name from a token): invalid UTF-8
// and NUL replaced by U+FFFD. PostgreSQL's text holds neither, and
// failing to record an attempt over one would be worse than a replaced
// byte; done the same on SQLite, the delivery log shows one answer the
// same way whichever database holds it.
func StoredText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// whsecPrefix marks a Standard Webhooks secret: base64 of the HMAC key.
const whsecPrefix = "whsec_"

// Sizes a whsec_ secret's key may have: Standard Webhooks libraries
// generate and accept keys of 24 to 64 bytes.
const (
	MinWhsecKeyBytes = 24
	MaxWhsecKeyBytes = 64
)

// ValidateSecret checks that a target secret can be sent and verified:
// it travels in a header (Qovery-Secret), so it must be printable ASCII
// with no space at either end, at most MaxSecretLength long, and a
// "whsec_" secret must be the base64 of a 24 to 64 byte key, or no
// Standard Webhooks library could verify its signatures. "" (no secret)
// is valid.
func ValidateSecret(secret string) error {
	if len(secret) > MaxSecretLength {
		return Invalid("target_secret", "is longer than %d characters", MaxSecretLength)
	}
	if i := headerUnsafe(secret); i >= 0 {
		return Invalid("target_secret", "must be printable ASCII (it is sent in a header); it has a byte 0x%02x at position %d", secret[i], i)
	}
	if strings.TrimSpace(secret) != secret {
		return Invalid("target_secret", "must not start or end with a space")
	}
	if rest, ok := strings.CutPrefix(secret, whsecPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return Invalid("target_secret", "starts with whsec_ but the rest is not valid base64 (a whsec_ secret is the base64 of its key)")
		}
		if len(key) < MinWhsecKeyBytes || len(key) > MaxWhsecKeyBytes {
			return Invalid("target_secret", "is a whsec_ secret of a %d-byte key; it must be %d to %d bytes", len(key), MinWhsecKeyBytes, MaxWhsecKeyBytes)
		}
	}
	return nil
}

// headerUnsafe returns the position of the first byte of s that is not
// printable ASCII, or -1. Such a byte cannot be sent in a header as it is
// (control characters are refused, and tools encode the rest each their
// own way), so a secret holding one could never match.
func headerUnsafe(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return i
		}
	}
	return -1
}

// ValidateTargetURL checks that u is an absolute http(s) URL with a host
// and, if it names a port, a valid one. Whether its address may be
// dialled is decided at connect time, not here.
func ValidateTargetURL(u string) error {
	if u == "" {
		return Invalid("target_url", "is required")
	}
	if len(u) > MaxTargetURLLength {
		return Invalid("target_url", "is longer than %d characters", MaxTargetURLLength)
	}
	if err := ValidText("target_url", u); err != nil {
		return err
	}
	p, err := url.Parse(u)
	if err != nil {
		return Invalid("target_url", "is not a valid URL")
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return Invalid("target_url", "must start with http:// or https://")
	}
	if p.Hostname() == "" {
		return Invalid("target_url", "must name a host")
	}
	if port := p.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return Invalid("target_url", "has port %s; a port is 1 to 65535", port)
		}
	}
	return nil
}

// Apply sets w's chosen fields from spec, at now. An edit is a full
// replace, except the secret and the state: a nil secret keeps it, ""
// removes it, anything else replaces it (see SetSecret); a nil Enabled
// keeps the state, hookd's own disable included. A person enabling a
// webhook clears hookd's reason for disabling it. Applied to the row as
// it is when the write commits (WebhookChange), what the spec leaves out
// can never undo a concurrent change.
func (w *Webhook) Apply(s Spec, now time.Time) {
	w.Kind = s.Kind
	w.TargetURL = s.TargetURL
	if s.TargetSecret != nil {
		w.SetSecret(*s.TargetSecret, now)
	}
	w.Description = s.Description
	if s.Enabled != nil {
		if *s.Enabled {
			w.DisabledReason = ""
			if !w.Enabled {
				w.FailingSince = time.Time{}
			}
		}
		w.Enabled = *s.Enabled
	}
	w.Events = nonNil(s.Events)
	w.ProjectNamesFilter = nonNil(s.ProjectNamesFilter)
	w.EnvironmentTypesFilter = nonNil(s.EnvironmentTypesFilter)
}

// SetSecret makes secret the webhook's secret, at now. Replacing a secret
// keeps the one replaced as PreviousSecret, so that deliveries are signed
// with both for a grace period; replacing it again within that period
// keeps only the one just replaced, as Svix does. Removing the secret
// ends the grace at once: nothing is signed with an old secret after its
// owner said there is none. Setting the same secret again changes nothing.
func (w *Webhook) SetSecret(secret string, now time.Time) {
	if secret == w.TargetSecret {
		return
	}
	if secret == "" || w.TargetSecret == "" {
		w.PreviousSecret, w.SecretRotatedAt = "", time.Time{}
	} else {
		w.PreviousSecret, w.SecretRotatedAt = w.TargetSecret, now
	}
	w.TargetSecret = secret
}

// SigningSecrets returns the secrets a request sent at now is signed
// with: none without a secret, the secret, and during the grace after a
// rotation (now before SecretRotatedAt + grace) the one it replaced after
// it. A grace of 0 signs with the current secret alone.
func (w *Webhook) SigningSecrets(now time.Time, grace time.Duration) []string {
	switch {
	case w.TargetSecret == "":
		return nil
	case w.PreviousSecret != "" && !w.SecretRotatedAt.IsZero() && now.Before(w.SecretRotatedAt.Add(grace)):
		return []string{w.TargetSecret, w.PreviousSecret}
	default:
		return []string{w.TargetSecret}
	}
}

// GraceEndsAt returns when a request sent at now would stop being signed
// with the previous secret too (see SigningSecrets): the end of the grace
// after a rotation, or the zero time when no grace is under way.
func (w *Webhook) GraceEndsAt(now time.Time, grace time.Duration) time.Time {
	if len(w.SigningSecrets(now, grace)) < 2 {
		return time.Time{}
	}
	return w.SecretRotatedAt.Add(grace)
}

// RedactedURL returns the target URL with its credentials masked, for
// logs, the delivery log and the audit trail, anywhere a URL is shown
// rather than dialled: the password of user:password, or the user alone
// when there is no password or an empty one (a token sent as
// https://TOKEN@host or, curl -u style, https://TOKEN:@host is a
// credential too); the token that ends a Slack or Discord incoming-webhook
// URL (hooks.slack.com/services/T…/B…/TOKEN); and the value of every
// query parameter whose name looks like a credential (token, key, secret,
// sig, password, auth, code…).
func RedactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return redactedText(u)
	}
	if p.User != nil {
		if pw, ok := p.User.Password(); ok && pw != "" {
			p.User = url.UserPassword(p.User.Username(), "xxxxx")
		} else {
			p.User = url.User("xxxxx")
		}
	}
	if path, ok := redactedPath(p.Hostname(), p.Path); ok {
		p.Path, p.RawPath = path, ""
	}
	p.RawQuery = redactedQuery(p.RawQuery)
	return p.String()
}

// redactedText masks, by their place in its text, the user information
// and the credential-like query parameters of a URL Go cannot parse (a
// bad escape or port, say): such a URL is shown in the error that
// refuses it.
func redactedText(u string) string {
	scheme, rest := "", u
	if i := strings.Index(u, "://"); i >= 0 {
		scheme, rest = u[:i+3], u[i+3:]
	}
	host := rest
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		host = rest[:end]
	}
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		rest = "xxxxx" + rest[at:]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		query, fragment := rest[q+1:], ""
		if h := strings.IndexByte(query, '#'); h >= 0 {
			query, fragment = query[:h], query[h:]
		}
		rest = rest[:q+1] + redactedQuery(query) + fragment
	}
	return scheme + rest
}

// redactedPath masks the path segment of an incoming-webhook URL that is
// its credential, and reports whether it did. Slack's token ends the path
// (services/T…/B…/TOKEN, workflows/…/TOKEN). Discord's follows the
// webhook's id (api/webhooks/ID/TOKEN), and need not end it: the API may
// be versioned (api/v10/webhooks/…) and its Slack- and GitHub-compatible
// endpoints add /slack or /github after the token, so masking the last
// segment would leave the token itself in plain view. A host name may
// end with the root's dot, as the same host.
func redactedPath(host, path string) (string, bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case host == "hooks.slack.com" || host == "hooks.slack-gov.com": // GovSlack runs on slack-gov.com
		trimmed := strings.TrimSuffix(path, "/")
		if strings.Count(strings.Trim(path, "/"), "/") >= 1 {
			return trimmed[:strings.LastIndexByte(trimmed, '/')+1] + "xxxxx", true
		}
	case host == "discord.com" || host == "discordapp.com" || strings.HasSuffix(host, ".discord.com"):
		segs := strings.Split(path, "/")
		if i := slices.Index(segs, "webhooks"); i >= 0 && i+2 < len(segs) && segs[1] == "api" {
			segs[i+2] = "xxxxx"
			return strings.Join(segs, "/"), true
		}
	}
	return path, false
}

// credentialParams are the parts of a query parameter name that mark its
// value as a credential.
var credentialParams = []string{"token", "key", "secret", "sig", "pass", "pwd", "auth", "code", "credential", "session", "jwt"}

// redactedQuery masks the value of each credential-like parameter of a
// raw query, leaving the rest of it byte for byte. A parameter may also
// start after a ';' (some servers split on it as on '&'; Go's no longer
// does): a credential's value is masked to the end of its '&' part, any
// ';' in it included.
func redactedQuery(raw string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, part := range parts {
		for start := 0; ; {
			name, value, ok := strings.Cut(part[start:], "=")
			if ok && value != "" && !strings.Contains(name, ";") && credentialParam(name) {
				parts[i] = part[:start] + name + "=xxxxx"
				break
			}
			next := strings.IndexByte(part[start:], ';')
			if next < 0 {
				break
			}
			start += next + 1
		}
	}
	return strings.Join(parts, "&")
}

// credentialParam reports whether a query parameter's raw name looks like
// a credential's.
func credentialParam(name string) bool {
	n, err := url.QueryUnescape(name)
	if err != nil {
		n = name
	}
	n = strings.ToLower(n)
	return slices.ContainsFunc(credentialParams, func(c string) bool { return strings.Contains(n, c) })
}

func dedupe[T comparable](in []T) []T {
	out := make([]T, 0, len(in))
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func join[T ~string](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}
