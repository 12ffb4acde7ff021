package source

import (
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
	return verifyToken("Qovery-Signature", h, secret, "the request has neither a webhook-signature nor a Qovery-Signature header: set the Qovery webhook's secret to this source's secret")
}

type qoveryEnvelope struct {
	EventType   webhook.EventType `json:"event_type"`
	PayloadType string            `json:"payload_type"`
	PayloadID   string            `json:"payload_id"`
	// The payload holds the intake body's fields but event_type.
	Payload *webhook.DeploymentEvent `json:"payload"`
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
	d := e.Payload
	d.EventType = e.EventType
	// Qovery says the environment's mode; the source's rules decide only
	// when it does not.
	if !slices.Contains(webhook.EnvironmentModes, d.Environment.Mode) {
		d.Environment.Mode = src.EnvironmentType(d.Environment.Name)
	}
	if err := d.Validate(); err != nil {
		return Result{}, webhook.Errorf(webhook.EInvalid, "payload.%s", webhook.ErrorMessage(err))
	}
	return Result{Event: d, DeliveryID: firstOf(h.Get(signing.HeaderID), e.PayloadID)}, nil
}
