package api

import (
	"net/http"
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
	p := webhook.AuditListParams{OrganizationID: org}
	var err error
	if p.Before, p.Limit, err = pageQuery(r.URL.Query()); err != nil {
		return err
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
		page.NextCursor = nextCursor(list[len(list)-1].ID)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
