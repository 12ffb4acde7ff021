package api

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/internal/webhook"
)

// deliveryResponse is WebhookDelivery.
type deliveryResponse struct {
	ID             uuid.UUID              `json:"id"`
	WebhookID      uuid.UUID              `json:"webhook_id"`
	EventID        uuid.UUID              `json:"event_id"`
	EventType      webhook.EventType      `json:"event_type"`
	CreatedAt      time.Time              `json:"created_at"`
	UpdatedAt      time.Time              `json:"updated_at"`
	Status         webhook.DeliveryStatus `json:"status"`
	Attempts       int                    `json:"attempts"`
	LastStatusCode int                    `json:"last_status_code"`
	LastError      string                 `json:"last_error"`
	NextAttemptAt  *time.Time             `json:"next_attempt_at"`
}

func newDeliveryResponse(d *webhook.Delivery) deliveryResponse {
	resp := deliveryResponse{
		ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), Status: d.Status,
		Attempts: d.Attempts, LastStatusCode: d.LastStatusCode, LastError: d.LastError,
	}
	if d.Status == webhook.DeliveryPending || d.Status == webhook.DeliveryRunning {
		due := d.DueAt.UTC()
		resp.NextAttemptAt = &due
	}
	return resp
}

type deliveryPage struct {
	Results    []deliveryResponse `json:"results"`
	NextCursor *string            `json:"next_cursor"`
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	h, err := s.webhookFromPath(r, org)
	if err != nil {
		return err
	}
	p := webhook.DeliveryListParams{OrganizationID: org, WebhookID: h.ID}
	q := r.URL.Query()
	if v := q.Get("status"); v != "" {
		p.Status = webhook.DeliveryStatus(v)
		if !slices.Contains(webhook.DeliveryStatuses, p.Status) {
			return webhook.Invalid("status", "must be one of pending, running, succeeded, failed")
		}
	}
	if p.Before, p.Limit, err = pageQuery(q); err != nil {
		return err
	}
	list, err := s.store.DeliveryList(r.Context(), p)
	if err != nil {
		return err
	}
	page := deliveryPage{Results: make([]deliveryResponse, len(list))}
	for i, d := range list {
		page.Results[i] = newDeliveryResponse(d)
	}
	if len(list) == p.Limit {
		page.NextCursor = nextCursor(list[len(list)-1].ID)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// pageQuery reads the cursor and limit every paginated list takes: the
// cursor is the last ID of the previous page (lists are newest first and
// IDs are UUIDv7), the limit 1 to 100, 50 by default.
func pageQuery(q url.Values) (before uuid.UUID, limit int, err error) {
	limit = 50
	if v := q.Get("cursor"); v != "" {
		if before, err = uuid.Parse(v); err != nil {
			return uuid.Nil, 0, webhook.Invalid("cursor", "is not a cursor returned by this endpoint")
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 100 {
			return uuid.Nil, 0, webhook.Invalid("limit", "must be a whole number from 1 to 100")
		}
	}
	return before, limit, nil
}

// nextCursor is the cursor of the page after a full one ending at last.
func nextCursor(last uuid.UUID) *string {
	s := last.String()
	return &s
}

func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	h, err := s.webhookFromPath(r, org)
	if err != nil {
		return err
	}
	id, err := pathUUID(r, "deliveryId")
	if err != nil {
		return err
	}
	if err := h.Sendable("retrying its deliveries"); err != nil {
		return err // as a recovery: it would fail unsent, or wait
	}
	d, err := s.store.DeliveryRetry(r.Context(), org, h.ID, id, s.now().UTC())
	if err != nil {
		return err
	}
	s.dispatcher.Wake()
	writeJSON(w, http.StatusAccepted, newDeliveryResponse(d))
	return nil
}

type testResponse struct {
	EventID    uuid.UUID `json:"event_id"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

// testWebhook sends a sample event to this webhook alone, whatever its
// filters say, so a person can check the target end to end.
func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	h, err := s.webhookFromPath(r, org)
	if err != nil {
		return err
	}
	if err := h.Sendable("sending it a test event"); err != nil {
		return err // it would be answered 202, then fail unsent
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	ev := webhook.NewEvent(org, sampleEvent(h), id, s.now().UTC().Truncate(time.Microsecond), "")
	ev.OnlyWebhookID = h.ID
	receipt, err := s.intake.Accept(r.Context(), ev)
	if err != nil {
		return err
	}
	if len(receipt.DeliveryIDs) != 1 {
		return webhook.Errorf(webhook.EInternal, "test event made %d deliveries", len(receipt.DeliveryIDs))
	}
	tracing.RecordEvent(r.Context(), s.tracer, receipt.ID, receipt.CreatedAt, attribute.Bool("hookd.event.test", true))
	if len(receipt.Tasks) == 0 {
		s.dispatcher.Wake()
	}
	writeJSON(w, http.StatusAccepted, testResponse{EventID: receipt.ID, DeliveryID: receipt.DeliveryIDs[0]})
	return nil
}

// sampleEvent is what "Send test event" sends: the first event type the
// webhook subscribes to, for a made-up project.
func sampleEvent(h *webhook.Webhook) *webhook.DeploymentEvent {
	t := webhook.EventDeploymentSuccessful
	if len(h.Events) > 0 {
		t = h.Events[0]
	}
	d := &webhook.DeploymentEvent{EventType: t, CurrentStatus: "DEPLOYED", DesiredStatus: "DEPLOYED"}
	d.Project.Name = "hookd-test"
	d.Environment.Name = "test"
	d.Environment.Mode = webhook.ModeDevelopment
	return d
}
