package api

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// recoverRequest is WebhookRecoverRequest. Times are strings so that a
// bad one gets an error naming its field.
type recoverRequest struct {
	Since   *string `json:"since"`
	Until   *string `json:"until"`
	Status  *string `json:"status"`
	Pending bool    `json:"pending"`
}

// recoverResponse is WebhookRecoverResponse.
type recoverResponse struct {
	Deliveries int       `json:"deliveries"`
	Failed     int       `json:"failed"`
	Pending    int       `json:"pending"`
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
}

// params validates the request at now into the store's parameters.
func (q *recoverRequest) params(org uuid.UUID, h *webhook.Webhook, now time.Time) (webhook.DeliveryRecoverParams, error) {
	p := webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: h.ID, Until: now, Now: now, Pending: q.Pending}
	var err error
	if q.Since != nil {
		if p.Since, err = parseTime("since", *q.Since, now); err != nil {
			return p, err
		}
	}
	if q.Until != nil && *q.Until != "" {
		if p.Until, err = parseTime("until", *q.Until, now); err != nil {
			return p, err
		}
		// A window ending later than now ends now: nothing newer exists.
		if p.Until.After(now) {
			p.Until = now
		}
	}
	if q.Status != nil {
		if p.LastStatus, err = webhook.ParseStatusRange(*q.Status); err != nil {
			return p, err
		}
	}
	return p, webhook.ValidateRecover(p.Since, p.Until, now)
}

func parseTime(field, v string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, webhook.Invalid(field, "must be an RFC 3339 time such as %s, not %q", now.Add(-time.Hour).Format(time.RFC3339), v)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// recoverWebhook re-queues the webhook's failed deliveries of a window,
// and on request makes those waiting for a retry due now: the first thing
// to do once a receiver is back after an outage.
func (s *Server) recoverWebhook(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	h, err := s.webhookFromPath(r, org)
	if err != nil {
		return err
	}
	var req recoverRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	p, err := req.params(org, h, now)
	if err != nil {
		return err
	}
	if err := h.Sendable("recovering its deliveries"); err != nil {
		return err // they would fail at once without being sent, or wait
	}
	by, err := actor(r)
	if err != nil {
		return err
	}
	p.Audit = webhook.RecoverAudit(by, now, h, p)
	// Not under the API's bound: a recovery of hundreds of thousands of
	// deliveries rightly takes longer (201,000: 10–14 s on PostgreSQL),
	// and cut off it would be rolled back every time it was tried. The
	// reads above were bounded, so a silent database has been answered
	// 503 already; a PostgreSQL that goes silent now fails the connection
	// within 30 s (TCP_USER_TIMEOUT).
	n, err := s.store.DeliveryRecover(withoutDeadline(r.Context()), p)
	if err != nil {
		return err
	}
	if n.Total() > 0 {
		s.dispatcher.Wake()
	}
	writeJSON(w, http.StatusAccepted, recoverResponse{Deliveries: n.Total(), Failed: n.Failed, Pending: n.Pending, Since: p.Since, Until: p.Until})
	return nil
}
