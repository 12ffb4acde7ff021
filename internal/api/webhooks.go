package api

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

// webhookRequest is OrganizationWebhookCreateRequest. Pointers tell an
// absent field from an empty one; unknown fields (Qovery's console sends
// the whole response object back) are ignored.
type webhookRequest struct {
	Kind                   *string  `json:"kind"`
	TargetURL              *string  `json:"target_url"`
	TargetSecret           *string  `json:"target_secret"`
	Description            *string  `json:"description"`
	Enabled                *bool    `json:"enabled"`
	Events                 []string `json:"events"`
	ProjectNamesFilter     []string `json:"project_names_filter"`
	EnvironmentTypesFilter []string `json:"environment_types_filter"`
}

// spec turns the request into a validated webhook.Spec. An absent
// `enabled` is left nil: true for a new webhook, and on edit the state
// stored when the edit commits.
func (q *webhookRequest) spec() (webhook.Spec, error) {
	s := webhook.Spec{
		TargetSecret:           q.TargetSecret,
		Enabled:                q.Enabled,
		Events:                 convert[webhook.EventType](q.Events),
		ProjectNamesFilter:     q.ProjectNamesFilter,
		EnvironmentTypesFilter: convert[webhook.EnvironmentMode](q.EnvironmentTypesFilter),
	}
	if q.Kind != nil {
		s.Kind = webhook.Kind(*q.Kind)
	}
	if q.TargetURL != nil {
		s.TargetURL = *q.TargetURL
	}
	if q.Description != nil {
		s.Description = *q.Description
	}
	s.Normalize()
	return s, s.Validate()
}

func convert[T ~string](in []string) []T {
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = T(v)
	}
	return out
}

// webhookResponse is OrganizationWebhookResponse (and the identical
// create response). The secret never appears: only whether one is set.
type webhookResponse struct {
	ID                     uuid.UUID                 `json:"id"`
	CreatedAt              time.Time                 `json:"created_at"`
	UpdatedAt              time.Time                 `json:"updated_at"`
	Kind                   webhook.Kind              `json:"kind"`
	TargetURL              string                    `json:"target_url"`
	TargetSecretSet        bool                      `json:"target_secret_set"`
	Description            string                    `json:"description"`
	Enabled                bool                      `json:"enabled"`
	Events                 []webhook.EventType       `json:"events"`
	ProjectNamesFilter     []string                  `json:"project_names_filter"`
	EnvironmentTypesFilter []webhook.EnvironmentMode `json:"environment_types_filter"`
	DisabledReason         string                    `json:"disabled_reason"`
	// FailingSince and PreviousSecretExpiresAt are read-only extensions,
	// null when the webhook is healthy or no secret rotation is under way.
	FailingSince            *time.Time `json:"failing_since"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	// SecretsUnreadable is a read-only extension: the target URL and
	// secret cannot be decrypted (webhook.Webhook.Unreadable); the URL
	// shows as unreadableTargetURL and the secret as unset.
	SecretsUnreadable bool `json:"secrets_unreadable"`
}

// unreadableTargetURL stands for a target URL that cannot be decrypted:
// Qovery's schema wants an absolute URI there, which "" is not, and this
// one says what is the matter wherever a client shows it.
const unreadableTargetURL = "urn:hookd:unreadable"

func (s *Server) newWebhookResponse(w *webhook.Webhook) webhookResponse {
	target := w.TargetURL
	if w.Unreadable != nil {
		target = unreadableTargetURL
	}
	return webhookResponse{
		ID:                      w.ID,
		CreatedAt:               w.CreatedAt.UTC(),
		UpdatedAt:               w.UpdatedAt.UTC(),
		Kind:                    w.Kind,
		TargetURL:               target,
		TargetSecretSet:         w.TargetSecret != "",
		Description:             w.Description,
		Enabled:                 w.Enabled,
		Events:                  nonNil(w.Events),
		ProjectNamesFilter:      nonNil(w.ProjectNamesFilter),
		EnvironmentTypesFilter:  nonNil(w.EnvironmentTypesFilter),
		DisabledReason:          w.DisabledReason,
		FailingSince:            optionalTime(w.FailingSince),
		PreviousSecretExpiresAt: optionalTime(w.GraceEndsAt(s.now(), s.secretGrace)),
		SecretsUnreadable:       w.Unreadable != nil,
	}
}

// optionalTime is a time the API shows as null when it is zero.
func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type results[T any] struct {
	Results []T `json:"results"`
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	hooks, err := s.store.WebhookList(r.Context(), org)
	if err != nil {
		return err
	}
	out := results[webhookResponse]{Results: make([]webhookResponse, len(hooks))}
	for i, h := range hooks {
		out.Results[i] = s.newWebhookResponse(h)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	var req webhookRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	spec, err := req.spec()
	if err != nil {
		return err
	}
	if spec.Enabled == nil {
		enabled := true
		spec.Enabled = &enabled
	}
	by, err := actor(r)
	if err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	h := &webhook.Webhook{ID: id, OrganizationID: org, CreatedAt: now, UpdatedAt: now}
	h.Apply(spec, now)
	if err := s.store.WebhookCreate(r.Context(), h, s.limits.MaxWebhooksPerOrg, webhook.WebhookAudit(by, now, nil, h)); err != nil {
		return err
	}
	s.writeWebhook(w, http.StatusCreated, h)
	return nil
}

// writeWebhook answers with h and its ETag, which If-Match may name.
func (s *Server) writeWebhook(w http.ResponseWriter, status int, h *webhook.Webhook) {
	w.Header().Set("ETag", h.ETag())
	writeJSON(w, status, s.newWebhookResponse(h))
}

// webhookFromPath loads the webhook named by the path, in org.
func (s *Server) webhookFromPath(r *http.Request, org uuid.UUID) (*webhook.Webhook, error) {
	id, err := pathUUID(r, "webhookId")
	if err != nil {
		return nil, err
	}
	return s.store.WebhookGet(r.Context(), org, id)
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	h, err := s.webhookFromPath(r, org)
	if err != nil {
		return err
	}
	s.writeWebhook(w, http.StatusOK, h)
	return nil
}

// editWebhook applies the request to the webhook as stored when the edit
// commits (webhook.WebhookChange), not as read earlier: what the body
// leaves out (the secret, `enabled`) keeps its value at that moment, so a
// concurrent secret removal or hookd's own disable is never undone, and
// the audit entry's "before" is the row this edit replaced.
func (s *Server) editWebhook(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	id, err := pathUUID(r, "webhookId")
	if err != nil {
		return err
	}
	var req webhookRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	spec, err := req.spec()
	if err != nil {
		return err
	}
	by, err := actor(r)
	if err != nil {
		return err
	}
	ifMatch := r.Header.Get("If-Match")
	now := s.now().UTC().Truncate(time.Microsecond)
	h, err := s.store.WebhookUpdate(r.Context(), webhook.WebhookChange{OrganizationID: org, ID: id,
		Apply: func(h *webhook.Webhook) (*webhook.AuditEntry, error) {
			if err := h.CheckIfMatch(ifMatch); err != nil {
				return nil, err
			}
			before := *h
			h.Apply(spec, now)
			h.UpdatedAt = webhook.EditedAt(before.UpdatedAt, now)
			// An edit that changes nothing is not audited.
			return webhook.WebhookAudit(by, now, &before, h), nil
		}})
	if secrets.Unreadable(err) {
		return webhook.Undecryptable("webhook", "target URL and secret", "editing it")
	}
	if err != nil {
		return err
	}
	// The deliveries the dispatcher holds read the webhook as it was:
	// without this, those queued behind a slow target would still go to
	// the old URL, or to a webhook just disabled.
	s.dispatcher.Edited(id, h.UpdatedAt)
	s.writeWebhook(w, http.StatusOK, h)
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	id, err := pathUUID(r, "webhookId")
	if err != nil {
		return err
	}
	by, err := actor(r)
	if err != nil {
		return err
	}
	ifMatch := r.Header.Get("If-Match")
	now := s.now().UTC().Truncate(time.Microsecond)
	err = s.store.WebhookDelete(r.Context(), webhook.WebhookChange{OrganizationID: org, ID: id,
		Apply: func(h *webhook.Webhook) (*webhook.AuditEntry, error) {
			if err := h.CheckIfMatch(ifMatch); err != nil {
				return nil, err
			}
			return webhook.WebhookAudit(by, now, h, nil), nil
		}})
	if err != nil {
		return err
	}
	// Its deliveries are gone from the store, not from the dispatcher's
	// memory: without this, those it holds would still be sent until a
	// lease renewal found them gone, seconds later.
	s.dispatcher.Forget(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
