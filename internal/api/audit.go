package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// auditEntryResponse is AuditEntry.
type auditEntryResponse struct {
	ID           uuid.UUID           `json:"id"`
	CreatedAt    time.Time           `json:"created_at"`
	Action       webhook.AuditAction `json:"action"`
	Actor        actorResponse       `json:"actor"`
	ResourceType string              `json:"resource_type"`
	ResourceID   uuid.UUID           `json:"resource_id"`
	ResourceName string              `json:"resource_name"`
	Changes      []webhook.Change    `json:"changes"`
}

type actorResponse struct {
	Kind webhook.ActorKind `json:"kind"`
	ID   string            `json:"id"`
}

func newAuditEntryResponse(e *webhook.AuditEntry) auditEntryResponse {
	return auditEntryResponse{
		ID:           e.ID,
		CreatedAt:    e.CreatedAt.UTC(),
		Action:       e.Action,
		Actor:        actorResponse{Kind: e.Actor.Kind, ID: e.Actor.ID},
		ResourceType: e.Action.ResourceType(),
		ResourceID:   e.ResourceID,
		ResourceName: e.ResourceName,
		Changes:      nonNil(e.Changes),
	}
}

type auditPage struct {
	Results    []auditEntryResponse `json:"results"`
	NextCursor *string              `json:"next_cursor"`
}

// listAudit pages through the organization's audit trail, newest first,
// with the cursor and limit of the delivery list.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	p := webhook.AuditListParams{OrganizationID: org, Limit: 50}
	q := r.URL.Query()
	var err error
	if v := q.Get("cursor"); v != "" {
		if p.Before, err = uuid.Parse(v); err != nil {
			return webhook.Invalid("cursor", "is not a cursor returned by this endpoint")
		}
	}
	if v := q.Get("limit"); v != "" {
		if p.Limit, err = strconv.Atoi(v); err != nil || p.Limit < 1 || p.Limit > 100 {
			return webhook.Invalid("limit", "must be a whole number from 1 to 100")
		}
	}
	list, err := s.store.AuditList(r.Context(), p)
	if err != nil {
		return err
	}
	page := auditPage{Results: make([]auditEntryResponse, len(list))}
	for i, e := range list {
		page.Results[i] = newAuditEntryResponse(e)
	}
	if len(list) == p.Limit {
		next := list[len(list)-1].ID.String()
		page.NextCursor = &next
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
