package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

type eventAccepted struct {
	ID         uuid.UUID `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	Deliveries int       `json:"deliveries"`
}

// createDeploymentEvent answers 202 only once the event and its
// deliveries are committed: the answer is a promise of delivery.
func (s *Server) createDeploymentEvent(w http.ResponseWriter, r *http.Request, org uuid.UUID) (err error) {
	r, span := s.startIntakeSpan(r, org)
	defer func() { endSpan(span, err) }()
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return webhook.Invalid("Idempotency-Key", "is longer than %d characters", maxIdempotencyKey)
	}
	var d webhook.DeploymentEvent
	if err := decode(w, r, &d); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	ev := webhook.NewEvent(org, &d, id, s.now().UTC().Truncate(time.Microsecond), key)
	receipt, err := s.intake.Accept(r.Context(), ev)
	if err != nil {
		if webhook.ErrorCode(err) == webhook.EUnavailable {
			s.metrics.throttled.WithLabelValues("intake_unavailable").Inc()
		}
		return err
	}
	s.traceEvent(r.Context(), span, receipt)
	if !receipt.Replayed {
		s.metrics.eventsAccepted.WithLabelValues(string(ev.Type)).Inc()
		// Deliveries leased at intake are on their way already; the
		// others wait for the dispatcher to claim them.
		if receipt.Deliveries > len(receipt.Tasks) {
			s.wake()
		}
	}
	writeJSON(w, http.StatusAccepted, eventAccepted{ID: receipt.ID, CreatedAt: receipt.CreatedAt.UTC(), Deliveries: receipt.Deliveries})
	return nil
}

// webhookEventResponse is Qovery's WebhookEventResponse: one record per
// attempt, with hookd's extensions after Qovery's fields.
type webhookEventResponse struct {
	ID                       uuid.UUID         `json:"id"`
	CreatedAt                time.Time         `json:"created_at"`
	Kind                     webhook.Kind      `json:"kind"`
	MatchedEvent             webhook.EventType `json:"matched_event"`
	TargetURLUsed            string            `json:"target_url_used"`
	Request                  json.RawMessage   `json:"request"`
	TargetResponseStatusCode int               `json:"target_response_status_code"`
	TargetResponseBody       string            `json:"target_response_body"`
	DeliveryID               uuid.UUID         `json:"delivery_id"`
	Attempt                  int               `json:"attempt"`
	DurationMS               int64             `json:"duration_ms"`
	Error                    string            `json:"error"`
}

// maxEventLog is how many attempts listWebhookEvent returns: Qovery's
// operation has no pagination, the delivery endpoint has.
const maxEventLog = 100

func (s *Server) listWebhookEvents(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	h, err := s.webhookFromPath(r, org)
	if err != nil {
		return err
	}
	attempts, err := s.store.AttemptList(r.Context(), webhook.AttemptListParams{OrganizationID: org, WebhookID: h.ID, Limit: maxEventLog})
	if err != nil {
		return err
	}
	out := results[webhookEventResponse]{Results: make([]webhookEventResponse, len(attempts))}
	for i, a := range attempts {
		out.Results[i] = newWebhookEventResponse(a)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func newWebhookEventResponse(a *webhook.Attempt) webhookEventResponse {
	resp := webhookEventResponse{
		ID:                       a.ID,
		CreatedAt:                a.CreatedAt.UTC(),
		Kind:                     a.Kind,
		TargetURLUsed:            a.TargetURL,
		Request:                  json.RawMessage(`{}`),
		TargetResponseStatusCode: a.StatusCode,
		TargetResponseBody:       a.ResponseBody,
		DeliveryID:               a.DeliveryID,
		Attempt:                  a.Number,
		DurationMS:               a.Duration.Milliseconds(),
		Error:                    a.Error,
	}
	if a.Event != nil {
		resp.MatchedEvent = a.Event.Type
		// The request is rendered from the stored event by the same code
		// that sent it, rather than stored once per attempt.
		resp.Request = webhook.Render(a.Kind, a.Event)
	}
	return resp
}
