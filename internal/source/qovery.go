package source

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/hookd/hookd/internal/signing"
	"github.com/hookd/hookd/internal/webhook"
)

// Qovery's (and hookd's own) STANDARD webhook deliveries: the envelope
// {created_at, event_type, payload_type, payload_id, payload}, with
// either Standard Webhooks headers (webhook-id, webhook-timestamp,
// webhook-signature) signed with the secret, or Qovery-Signature carrying
// the secret itself, as Qovery sends it.

// QoveryTolerance is how far a Standard Webhooks timestamp may be from now.
const QoveryTolerance = 5 * time.Minute

func verifyQovery(secret string, h http.Header, body []byte, now time.Time) error {
	if sig := h.Get(signing.HeaderSignature); sig != "" {
		if err := signing.Verify([]string{secret}, h.Get(signing.HeaderID), h.Get(signing.HeaderTimestamp), sig, body, now, QoveryTolerance); err != nil {
			return unauthorized("the webhook-signature header does not verify with this source's secret (or its timestamp is more than %v away)", QoveryTolerance)
		}
		return nil
	}
	token := h.Get("Qovery-Signature")
	if token == "" {
		return unauthorized("the request has neither a webhook-signature nor a Qovery-Signature header: set the Qovery webhook's secret to this source's secret")
	}
	if !equalSecret(token, secret) {
		return unauthorized("the Qovery-Signature header does not match this source's secret")
	}
	return nil
}

type qoveryEnvelope struct {
	EventType   webhook.EventType `json:"event_type"`
	PayloadType string            `json:"payload_type"`
	PayloadID   string            `json:"payload_id"`
	Payload     *struct {
		DeploymentID  string                        `json:"deployment_id"`
		CurrentStatus string                        `json:"current_status"`
		DesiredStatus string                        `json:"desired_status"`
		Project       webhook.DeploymentProject     `json:"project"`
		Environment   webhook.DeploymentEnvironment `json:"environment"`
		Applications  json.RawMessage               `json:"applications"`
		Databases     json.RawMessage               `json:"databases"`
		Containers    json.RawMessage               `json:"containers"`
		Jobs          json.RawMessage               `json:"jobs"`
		Logs          json.RawMessage               `json:"logs"`
	} `json:"payload"`
}

func translateQovery(src *webhook.Source, h http.Header, body []byte) (Result, error) {
	var e qoveryEnvelope
	if err := decodeJSON("Qovery webhook", body, &e); err != nil {
		return Result{}, err
	}
	if e.PayloadType != "DEPLOYMENT" {
		return ignored("Qovery payload_type %q is not a deployment", e.PayloadType)
	}
	if !slices.Contains(webhook.EventTypes, e.EventType) {
		return ignored("Qovery event_type %q is not a deployment event hookd knows", e.EventType)
	}
	if e.Payload == nil {
		return Result{}, webhook.Invalid("payload", "is required in a Qovery DEPLOYMENT envelope")
	}
	p := e.Payload
	env := p.Environment
	// Qovery says the environment's mode; the source's rules decide only
	// when it does not.
	if !slices.Contains(webhook.EnvironmentModes, env.Mode) {
		env.Mode = src.EnvironmentType(env.Name)
	}
	d := &webhook.DeploymentEvent{
		EventType:     e.EventType,
		DeploymentID:  p.DeploymentID,
		CurrentStatus: p.CurrentStatus,
		DesiredStatus: p.DesiredStatus,
		Project:       p.Project,
		Environment:   env,
		Applications:  p.Applications,
		Databases:     p.Databases,
		Containers:    p.Containers,
		Jobs:          p.Jobs,
		Logs:          p.Logs,
	}
	if err := d.Validate(); err != nil {
		return Result{}, webhook.Errorf(webhook.EInvalid, "payload.%s", webhook.ErrorMessage(err))
	}
	return Result{Event: d, DeliveryID: firstOf(h.Get(signing.HeaderID), e.PayloadID)}, nil
}
