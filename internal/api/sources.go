package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/source"
	"github.com/hookd/hookd/internal/webhook"
)

// sourceRequest is SourceRequest. Pointers tell an absent field from an
// empty one; unknown fields (an answer sent back) are ignored.
type sourceRequest struct {
	Kind             *string                   `json:"kind"`
	Name             *string                   `json:"name"`
	Secret           *string                   `json:"secret"`
	EnvironmentTypes []webhook.EnvironmentRule `json:"environment_types"`
}

func (q *sourceRequest) spec(creating bool) (webhook.SourceSpec, error) {
	s := webhook.SourceSpec{Secret: q.Secret, EnvironmentTypes: q.EnvironmentTypes}
	if q.Kind != nil {
		s.Kind = webhook.SourceKind(*q.Kind)
	}
	if q.Name != nil {
		s.Name = *q.Name
	}
	return s, s.Validate(creating)
}

// sourceResponse is SourceResponse. The secret never appears.
type sourceResponse struct {
	ID               uuid.UUID                 `json:"id"`
	CreatedAt        time.Time                 `json:"created_at"`
	UpdatedAt        time.Time                 `json:"updated_at"`
	Kind             webhook.SourceKind        `json:"kind"`
	Name             string                    `json:"name"`
	SecretSet        bool                      `json:"secret_set"`
	EnvironmentTypes []webhook.EnvironmentRule `json:"environment_types"`
	IngestURL        string                    `json:"ingest_url"`
	// SecretUnreadable: the secret cannot be decrypted (Source.Unreadable),
	// so nothing can authenticate to the source.
	SecretUnreadable bool `json:"secret_unreadable"`
}

// newSourceResponse answers r with src. The ingest URL is built from the
// request's own scheme and host: the address the caller reached hookd at.
func newSourceResponse(r *http.Request, src *webhook.Source) sourceResponse {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return sourceResponse{
		ID:               src.ID,
		CreatedAt:        src.CreatedAt.UTC(),
		UpdatedAt:        src.UpdatedAt.UTC(),
		Kind:             src.Kind,
		Name:             src.Name,
		SecretSet:        src.Secret != "",
		EnvironmentTypes: nonNil(src.EnvironmentTypes),
		IngestURL:        scheme + "://" + r.Host + "/organization/" + src.OrganizationID.String() + "/source/" + src.ID.String() + "/ingest",
		SecretUnreadable: src.Unreadable != nil,
	}
}

func (s *Server) listSources(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	list, err := s.store.SourceList(r.Context(), org)
	if err != nil {
		return err
	}
	out := results[sourceResponse]{Results: make([]sourceResponse, len(list))}
	for i, src := range list {
		out.Results[i] = newSourceResponse(r, src)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createSource(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	var req sourceRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	spec, err := req.spec(true)
	if err != nil {
		return err
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
	src := &webhook.Source{ID: id, OrganizationID: org, CreatedAt: now, UpdatedAt: now}
	src.Apply(spec)
	if err := s.store.SourceCreate(r.Context(), src, s.limits.MaxSourcesPerOrg, webhook.SourceAudit(by, now, nil, src)); err != nil {
		return err
	}
	writeSource(w, r, http.StatusCreated, src)
	return nil
}

// sourceFromPath loads the source named by the path, in org.
func (s *Server) sourceFromPath(r *http.Request, org uuid.UUID) (*webhook.Source, error) {
	id, err := pathUUID(r, "sourceId")
	if err != nil {
		return nil, err
	}
	return s.store.SourceGet(r.Context(), webhook.SourceRef{OrganizationID: org, ID: id})
}

// writeSource answers with src and its ETag, which If-Match may name.
func writeSource(w http.ResponseWriter, r *http.Request, status int, src *webhook.Source) {
	w.Header().Set("ETag", src.ETag())
	writeJSON(w, status, newSourceResponse(r, src))
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	src, err := s.sourceFromPath(r, org)
	if err != nil {
		return err
	}
	writeSource(w, r, http.StatusOK, src)
	return nil
}

// editSource applies the request to the source as stored when the edit
// commits, not as read earlier: an absent secret keeps the one stored
// then, an If-Match is checked against that version, and the audit
// entry's "before" is the row this edit replaced.
func (s *Server) editSource(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	id, err := pathUUID(r, "sourceId")
	if err != nil {
		return err
	}
	var req sourceRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	spec, err := req.spec(false)
	if err != nil {
		return err
	}
	by, err := actor(r)
	if err != nil {
		return err
	}
	ifMatch := r.Header.Get("If-Match")
	now := s.now().UTC().Truncate(time.Microsecond)
	src, err := s.store.SourceUpdate(r.Context(), webhook.SourceChange{Ref: webhook.SourceRef{OrganizationID: org, ID: id},
		Apply: func(src *webhook.Source) (*webhook.AuditEntry, error) {
			if err := src.CheckIfMatch(ifMatch); err != nil {
				return nil, err
			}
			if err := spec.ValidateEdit(src); err != nil {
				return nil, err
			}
			before := *src
			src.Apply(spec)
			// Never back, nor the same: the ETag sees an edit of the secret
			// only through UpdatedAt.
			src.UpdatedAt = webhook.EditedAt(before.UpdatedAt, now)
			return webhook.SourceAudit(by, now, &before, src), nil
		}})
	if secrets.Unreadable(err) {
		return webhook.Undecryptable("source", "secret", "editing it")
	}
	if err != nil {
		return err
	}
	writeSource(w, r, http.StatusOK, src)
	return nil
}

// deleteSource checks an If-Match against the source as stored when the
// delete commits, as editSource does: a delete confirmed for the version
// a person read never removes one edited since.
func (s *Server) deleteSource(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	id, err := pathUUID(r, "sourceId")
	if err != nil {
		return err
	}
	by, err := actor(r)
	if err != nil {
		return err
	}
	ifMatch := r.Header.Get("If-Match")
	now := s.now().UTC().Truncate(time.Microsecond)
	err = s.store.SourceDelete(r.Context(), webhook.SourceChange{Ref: webhook.SourceRef{OrganizationID: org, ID: id},
		Apply: func(src *webhook.Source) (*webhook.AuditEntry, error) {
			if err := src.CheckIfMatch(ifMatch); err != nil {
				return nil, err
			}
			return webhook.SourceAudit(by, now, src, nil), nil
		}})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// sourceMetrics count what the ingest URLs receive.
type sourceMetrics struct {
	ingested *prometheus.CounterVec
}

// Ingest outcomes, the values of the "outcome" label.
var ingestOutcomes = []string{"accepted", "replayed", "ignored", "unauthorized", "invalid", "too_large", "throttled", "auth_throttled", "failed"}

// unknownKind is the "kind" label of requests answered before their
// source is known: those of a throttled address (answered before any
// lookup) and those to a source that does not exist.
const unknownKind = "unknown"

func newSourceMetrics(reg prometheus.Registerer) *sourceMetrics {
	m := &sourceMetrics{ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_source_requests_total",
		Help: "Requests to sources' ingest URLs, by source kind and outcome: accepted, replayed (a retry already accepted), ignored (not a deployment), unauthorized (unsigned or badly signed), invalid, too_large, throttled (the organization's intake rate), auth_throttled (too many failed authentications from the client's address; kind unknown, since the source is not looked up), not_found (kind unknown: no such source, counted as a failed authentication), failed.",
	}, []string{"kind", "outcome"})}
	for _, k := range webhook.SourceKinds {
		for _, o := range ingestOutcomes {
			m.ingested.WithLabelValues(string(k), o)
		}
	}
	m.ingested.WithLabelValues(unknownKind, "auth_throttled")
	m.ingested.WithLabelValues(unknownKind, "not_found")
	reg.MustRegister(m.ingested)
	return m
}

// ingestAnswer is SourceIngestResponse: the event accepted, or why none was.
type ingestAnswer struct {
	ID         *uuid.UUID `json:"id,omitempty"`
	CreatedAt  *time.Time `json:"created_at,omitempty"`
	Deliveries *int       `json:"deliveries,omitempty"`
	Ignored    bool       `json:"ignored"`
	Reason     string     `json:"reason,omitempty"`
}

// ingestSource receives what a tool sends to a source's ingest URL. No
// API token: the request's signature (or the tool's shared token) is the
// credential, checked before anything in the body is read as JSON. A
// refused one, or an unknown source id, counts against the client's
// address like a wrong API token (AuthFailureRate), and an address past
// that rate is answered 429 before the source is looked up or its body
// read, so neither a secret nor a source id can be guessed online. The
// translated event goes through the same intake as
// /deployment-event (batching, leasing, idempotency), keyed by the
// tool's own delivery id so that its retries are not delivered twice.
func (s *Server) ingestSource(w http.ResponseWriter, r *http.Request) (err error) {
	// A throttled address is answered before the source is looked up: it
	// costs no database work, and learns nothing of which ids exist.
	a, err := s.admitAuth(clientKey(r))
	if err != nil {
		s.sources.ingested.WithLabelValues(unknownKind, "auth_throttled").Inc()
		return err
	}
	// The attempt is settled once its credential is decided (or the
	// request ends before that), not after intake.
	settled := false
	settle := func(failed bool) {
		if !settled {
			settled = true
			s.authFailures.settle(a, failed, s.now())
		}
	}
	defer settle(false)
	org, err := pathUUID(r, "organizationId")
	if err != nil {
		return err
	}
	id, err := pathUUID(r, "sourceId")
	if err != nil {
		return err
	}
	src, err := s.store.SourceGet(r.Context(), webhook.SourceRef{OrganizationID: org, ID: id})
	if webhook.ErrorCode(err) == webhook.ENotFound {
		// An unknown id is a failed authentication too: the ingest URL is
		// a credential, and its ids must not be probed without limit.
		settle(true)
		s.sources.ingested.WithLabelValues(unknownKind, "not_found").Inc()
		return err
	}
	if err != nil {
		return err
	}
	count := func(outcome string) { s.sources.ingested.WithLabelValues(string(src.Kind), outcome).Inc() }
	if src.Unreadable != nil {
		// Nothing can authenticate to it: the operator's doing, not the
		// tool's, so a 500 and a log line naming the key (one a minute
		// however often the URL is asked), and no failed authentication.
		count("failed")
		s.unreadableSources.error(s.log, src.ID.String(), s.now(), "ingest refused: nothing can authenticate to the source",
			"organization", org, "source", src.ID, "err", src.Unreadable)
		return logged{fmt.Errorf("api: nothing can authenticate to source %s: %w", src.ID, src.Unreadable)}
	}
	body, err := readBody(w, r)
	if err != nil {
		if webhook.ErrorCode(err) == webhook.ETooLarge {
			count("too_large")
		} else {
			count("invalid")
		}
		return err
	}
	err = source.Verify(src, r.Header, body, s.now())
	settle(webhook.ErrorCode(err) == webhook.EUnauthorized)
	if err != nil {
		count("unauthorized")
		return err
	}
	// Traced from here, once the tool is known, as an event sent to
	// /deployment-event is: without the event's own span (traceEvent),
	// its attempts' spans would have a parent no trace holds.
	r, span := s.startIntakeSpan(r, ingestRoute, org)
	defer func() { endSpan(span, err) }()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("hookd.source.id", src.ID.String()), attribute.String("hookd.source.kind", string(src.Kind)))
	}
	res, err := source.Translate(src, r.Header, body)
	if err != nil {
		count("invalid")
		return err
	}
	if res.Event == nil {
		count("ignored")
		status := http.StatusAccepted
		if res.Ping {
			status = http.StatusOK
		}
		writeJSON(w, status, ingestAnswer{Ignored: true, Reason: res.Ignored})
		return nil
	}
	if err := res.Event.Validate(); err != nil {
		count("invalid")
		return err
	}
	if wait := s.intakeRate.reserve(org.String(), s.now()); wait > 0 {
		count("throttled")
		s.metrics.throttled.WithLabelValues("intake_rate").Inc()
		return &webhook.Error{Code: webhook.ETooManyRequests, RetryAfter: wait,
			Message: "too many deployment events for this organization; retry after the Retry-After header's seconds"}
	}
	eventID, err := uuid.NewV7()
	if err != nil {
		return err
	}
	ev := webhook.NewEvent(org, res.Event, eventID, s.now().UTC().Truncate(time.Microsecond), sourceKey(src.ID, res.DeliveryID))
	// A tool sends a delivery id again only to repeat that delivery: it
	// is a replay whatever it translates to now. Its content can change
	// between the two (the source's environment rules were edited, say),
	// and a tool cannot take a 422 and choose a new key.
	ev.ContentHash = nil
	// How long its key is remembered depends on how long the tool can
	// send a copy (webhook.KeyWindow).
	ev.SourceKind = src.Kind
	receipt, err := s.intake.Accept(r.Context(), ev)
	if err != nil {
		count("failed")
		if webhook.ErrorCode(err) == webhook.EUnavailable {
			s.metrics.throttled.WithLabelValues("intake_unavailable").Inc()
		}
		return err
	}
	s.traceEvent(r.Context(), span, receipt)
	if receipt.Replayed {
		count("replayed")
	} else {
		count("accepted")
		s.metrics.eventsAccepted.WithLabelValues(string(ev.Type)).Inc()
		if receipt.Deliveries > len(receipt.Tasks) {
			s.dispatcher.Wake()
		}
	}
	created := receipt.CreatedAt.UTC()
	writeJSON(w, http.StatusAccepted, ingestAnswer{ID: &receipt.ID, CreatedAt: &created, Deliveries: &receipt.Deliveries})
	return nil
}

// sourceKeyPrefix begins every source's idempotency keys, and no intake
// caller's (createDeploymentEvent refuses it).
const sourceKeyPrefix = "source:"

// sourceKey is the idempotency key of a tool's delivery: the source's id
// and the tool's delivery id, so that two sources (or an intake caller)
// never share one. A key too long, or with what a key may not hold (a
// NUL, invalid UTF-8: parts of it come from the tool's headers and body),
// is hashed. Without a delivery id, there is none: each request is an
// event.
func sourceKey(sourceID uuid.UUID, deliveryID string) string {
	if deliveryID == "" {
		return ""
	}
	key := sourceKeyPrefix + sourceID.String() + ":" + deliveryID
	if len(key) > maxIdempotencyKey || webhook.ValidText("", deliveryID) != nil {
		sum := sha256.Sum256([]byte(deliveryID))
		key = sourceKeyPrefix + sourceID.String() + ":sha256:" + hex.EncodeToString(sum[:])
	}
	return key
}
