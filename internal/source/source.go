// Package source turns what deployment tools send on their own (GitHub,
// GitLab, Flux, Argo CD, Qovery) into hookd's deployment event: it checks
// that a request comes from the tool a source was made for (its signature
// or shared token, compared in constant time), and translates the tool's
// payload, or says why it is ignored.
//
// It must never log, return or put in an error a secret, a signature or a
// token, nor compare one with anything but a constant-time comparison;
// and it never touches the store: what it returns is handed to intake
// like any other event.
package source

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// Result is what a tool's request comes to.
type Result struct {
	// Event is the deployment event to accept; nil when the request is
	// ignored.
	Event *webhook.DeploymentEvent
	// DeliveryID is the tool's own id of what it sent, the same on each of
	// its retries ("" when it has none): the event's idempotency key. Where
	// the tool signs, it comes from what the signature covers, or a signed
	// request sent again under a new id would be a new event.
	DeliveryID string
	// Ignored says why nothing is sent, when Event is nil.
	Ignored string
	// Ping is a tool checking the URL works (GitHub's ping): answered 200.
	Ping bool
}

// translator is one kind's handling: verify that the request comes from
// the tool, then translate it.
type translator struct {
	verify    func(secret string, h http.Header, body []byte, now time.Time) error
	translate func(src *webhook.Source, h http.Header, body []byte) (Result, error)
}

var translators = map[webhook.SourceKind]translator{
	webhook.SourceGitHub: {verifyGitHub, translateGitHub},
	webhook.SourceGitLab: {verifyGitLab, translateGitLab},
	webhook.SourceFlux:   {verifyFlux, translateFlux},
	webhook.SourceArgoCD: {verifyArgoCD, translateArgoCD},
	webhook.SourceQovery: {verifyQovery, translateQovery},
}

// Verify checks that the request was signed (or authenticated) with the
// source's secret. Its error is EUnauthorized and names the header
// expected, never a value.
func Verify(src *webhook.Source, h http.Header, body []byte, now time.Time) error {
	t, ok := translators[src.Kind]
	if !ok {
		return webhook.Errorf(webhook.EInternal, "source: unknown kind %q", src.Kind)
	}
	if src.Secret == "" {
		return unauthorized("this source has no secret, so nothing can authenticate to it; set one")
	}
	return t.verify(src.Secret, h, body, now)
}

// Translate turns a verified request into a Result. A body that is not
// the JSON the tool sends is EInvalid; an event hookd has no use for is
// a Result with Ignored set, never an error.
func Translate(src *webhook.Source, h http.Header, body []byte) (Result, error) {
	t, ok := translators[src.Kind]
	if !ok {
		return Result{}, webhook.Errorf(webhook.EInternal, "source: unknown kind %q", src.Kind)
	}
	return t.translate(src, h, body)
}

func unauthorized(format string, args ...any) error {
	return &webhook.Error{Code: webhook.EUnauthorized, Message: fmt.Sprintf(format, args...)}
}

func ignored(format string, args ...any) (Result, error) {
	return Result{Ignored: fmt.Sprintf(format, args...)}, nil
}

// verifyToken checks a header that carries the secret as it is (where the
// tool does not sign); missing says what to do when it is absent.
func verifyToken(header string, h http.Header, secret, missing string) error {
	token := h.Get(header)
	if token == "" {
		return unauthorized("%s", missing)
	}
	if !equalSecret(token, secret) {
		return unauthorized("the %s header does not match this source's secret", header)
	}
	return nil
}

// equalSecret compares a presented token with the secret in constant time
// (of their hashes, so not even the length leaks).
func equalSecret(presented, secret string) bool {
	a, b := sha256.Sum256([]byte(presented)), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// verifyHexHMAC checks a "<algorithm>=<hex HMAC of body>" header, as
// GitHub's X-Hub-Signature-256 and Flux's X-Signature are; missing says
// what to set in the tool when it is absent.
func verifyHexHMAC(header, value, secret string, body []byte, algorithms map[string]func() hash.Hash, missing string) error {
	if value == "" {
		return unauthorized("the request has no %s header: %s", header, missing)
	}
	alg, sig, ok := strings.Cut(strings.TrimSpace(value), "=")
	newHash, known := algorithms[strings.ToLower(alg)]
	if !ok || !known {
		return unauthorized("the %s header must be <algorithm>=<hex HMAC of the body>", header)
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return unauthorized("the %s header's signature is not hexadecimal", header)
	}
	mac := hmac.New(newHash, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return unauthorized("the %s header does not match: the request was not signed with this source's secret", header)
	}
	return nil
}

// decodeJSON reads the tool's body into v, with the tool named in errors.
func decodeJSON(tool string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			return webhook.Errorf(webhook.EInvalid, "malformed JSON at byte %d: this is not a %s payload", syntax.Offset, tool)
		case errors.As(err, &typ) && typ.Field != "":
			return webhook.Invalid(typ.Field, "must not be %s in a %s payload", typ.Value, tool)
		}
		return webhook.Errorf(webhook.EInvalid, "the body is not a %s JSON payload", tool)
	}
	return nil
}

// deployment is what every tool's payload comes to, before it becomes the
// intake body.
type deployment struct {
	eventType                      webhook.EventType
	project, projectID             string
	environment                    string
	cluster                        string
	deploymentID                   string
	status                         string // the tool's own, as it sent it
	application                    application
	projectField, environmentField string // the tool's names for them, for errors
}

// application is the one entry of the event's applications list: what was
// deployed (at which commit) and where to read about it in the tool.
type application struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	CommitID string `json:"commit_id,omitempty"`
	Branch   string `json:"branch,omitempty"`
	URL      string `json:"url,omitempty"`
}

// result returns the Result of a translated deployment, or an EInvalid
// naming the tool's field when the project or environment is missing.
func (d *deployment) result(src *webhook.Source, deliveryID string) (Result, error) {
	if strings.TrimSpace(d.project) == "" {
		return Result{}, webhook.Invalid(d.projectField, "is required: it names the project of the deployment")
	}
	if strings.TrimSpace(d.environment) == "" {
		return Result{}, webhook.Invalid(d.environmentField, "is required: it names the environment of the deployment")
	}
	apps, err := json.Marshal([]application{d.application})
	if err != nil {
		return Result{}, err
	}
	return Result{
		DeliveryID: deliveryID,
		Event: &webhook.DeploymentEvent{
			EventType:     d.eventType,
			DeploymentID:  d.deploymentID,
			CurrentStatus: d.status,
			Project:       webhook.DeploymentProject{ID: d.projectID, Name: d.project},
			Environment: webhook.DeploymentEnvironment{
				Name:        d.environment,
				Mode:        src.EnvironmentType(d.environment),
				ClusterName: d.cluster,
			},
			Applications: apps,
		},
	}, nil
}

// jsonID is an id a tool sends as a number or a string.
type jsonID string

func (id *jsonID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*id = jsonID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*id = jsonID(n.String())
	return nil
}

func (id jsonID) String() string { return string(id) }

// firstOf returns the first non-empty value.
func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
