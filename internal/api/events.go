package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
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

// appendJSON appends what json.Marshal makes of a, and a newline as
// writeJSON does. Intake answers every event with it, and json.Marshal's
// reflection and buffers were a few per cent of intake's CPU.
func (a eventAccepted) appendJSON(b []byte) []byte {
	b = append(b, `{"id":"`...)
	b = append(b, a.ID.String()...)
	b = append(b, `","created_at":"`...)
	b = a.CreatedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","deliveries":`...)
	b = strconv.AppendInt(b, int64(a.Deliveries), 10)
	return append(b, "}\n"...)
}

// jsonContentType is the Content-Type header of a JSON answer, shared by
// every intake answer instead of allocated for each (nothing in net/http
// changes a header's values in place).
var jsonContentType = []string{"application/json"}

// createDeploymentEvent answers 202 only once the event and its
// deliveries are committed: the answer is a promise of delivery.
func (s *Server) createDeploymentEvent(w http.ResponseWriter, r *http.Request, org uuid.UUID) (err error) {
	r, span := s.startIntakeSpan(r, eventRoute, org)
	defer func() { endSpan(span, err) }()
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return webhook.Invalid("Idempotency-Key", "is longer than %d characters", maxIdempotencyKey)
	}
	if err := webhook.ValidText("Idempotency-Key", key); err != nil {
		return err
	}
	if strings.HasPrefix(key, sourceKeyPrefix) {
		// A caller could otherwise take a tool's delivery id before the
		// tool: its delivery would be answered as a replay, or refused.
		return webhook.Invalid("Idempotency-Key", "must not begin with %q: event sources' keys do", sourceKeyPrefix)
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
			s.dispatcher.Wake()
		}
	}
	body := eventAccepted{ID: receipt.ID, CreatedAt: receipt.CreatedAt.UTC(), Deliveries: receipt.Deliveries}.appendJSON(make([]byte, 0, 128))
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusAccepted)
	w.Write(body)
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
