// Package api serves hookd's HTTP API: Qovery's organization webhook
// operations, deployment-event intake, the delivery log, health and
// metrics. Handlers return errors, which become Qovery's error body in one
// place (errors.go).
//
// It never logs a secret, a token or an Authorization header, and never
// lets one organization's caller see anything of another organization.
package api

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/hookd/hookd/internal/auth"
	"github.com/hookd/hookd/internal/webhook"
)

// Deps is what the server needs from the rest of hookd.
type Deps struct {
	Store webhook.Store
	Auth  *auth.Authenticator
	// Intake commits events; nil means Store.EventsCreate, one event at a
	// time (internal/intake's Committer groups them).
	Intake Intake
	// Dispatcher is this node's delivery dispatcher; nil when the node
	// does not deliver (HOOKD_ROLE=api).
	Dispatcher Dispatcher
	Log        *slog.Logger
	Now        func() time.Time
	Registry   prometheus.Registerer
	Metrics    http.Handler // served at /metrics when not nil
	// Extra routes served beside the API (the console), by pattern.
	Extra map[string]http.Handler
	// Limits are the abuse limits; the zero value has none.
	Limits Limits
	// SecretRotationGrace is how long deliveries are signed with a
	// webhook's previous secret too, to show when that ends.
	SecretRotationGrace time.Duration
	// Tracer records a span per intake request (nil: none).
	Tracer trace.Tracer
	// IntakeTimeout is how long an intake request may wait for the
	// database (zero: IntakeTimeout, 10 s; tests shorten it).
	IntakeTimeout time.Duration
	// APITimeout is how long a management request may wait for the
	// database (zero: apiTimeout, 10 s; tests shorten it).
	APITimeout time.Duration
	// Alive says why hookd is wedged and should be restarted, nil while
	// it is not: /healthz answers 503 with it. It must look only at what
	// hookd itself owns, never at the database server, whose outage a
	// restart (of every node at once) would not cure. nil: always alive.
	Alive func() error
}

// Dispatcher is what the API tells the node's delivery dispatcher.
type Dispatcher interface {
	// Wake says deliveries are due now: the dispatcher claims them at
	// once rather than at its next poll.
	Wake()
	// Forget says a webhook was deleted: the dispatcher sends none of its
	// deliveries that it holds and has not started.
	Forget(webhookID uuid.UUID)
	// Edited says a webhook was edited, its UpdatedAt now updatedAt: the
	// dispatcher sends none of the deliveries it holds and has not
	// started as the webhook was before.
	Edited(webhookID uuid.UUID, updatedAt time.Time)
}

// noDispatcher is the Dispatcher of a node that does not deliver.
type noDispatcher struct{}

func (noDispatcher) Wake()                       {}
func (noDispatcher) Forget(uuid.UUID)            {}
func (noDispatcher) Edited(uuid.UUID, time.Time) {}

// Intake commits one event with its deliveries. Accept returns only once
// they are durable: its receipt is a promise of delivery.
type Intake interface {
	Accept(ctx context.Context, ev *webhook.Event) (webhook.EventReceipt, error)
}

// storeIntake commits each event in its own transaction.
type storeIntake struct{ store webhook.Store }

func (i storeIntake) Accept(ctx context.Context, ev *webhook.Event) (webhook.EventReceipt, error) {
	r, err := i.store.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{})
	if err != nil {
		return webhook.EventReceipt{}, err
	}
	return r[0], nil
}

// Server is the API's http.Handler.
type Server struct {
	store      webhook.Store
	auth       *auth.Authenticator
	intake     Intake
	dispatcher Dispatcher
	log        *slog.Logger
	now        func() time.Time
	mux        *http.ServeMux
	metrics    *metrics
	// unwritableAt is when a write last failed with ErrUnwritable (unix
	// nanoseconds; 0: never): /readyz fails for a while after it.
	unwritableAt atomic.Int64
	sources      *sourceMetrics
	// intakeTimeout bounds an intake request's wait for the database,
	// and outage logs what that refuses.
	intakeTimeout time.Duration
	outage        outage
	// apiTimeout bounds a management request's wait for the database.
	apiTimeout time.Duration
	// statsSlots holds a place for each webhook's stats computed at once
	// (see webhookStats).
	statsSlots chan struct{}
	// unreadableSources logs ingests refused for a source whose secret
	// cannot be decrypted, a line per source a minute at most.
	unreadableSources repeats

	apiRate      *rateLimiter // per credential; nil: no limit
	intakeRate   *rateLimiter // per organization; nil: no limit
	authFailures *rateLimiter // failed authentications per client address; nil: no limit
	limits       Limits
	tracer       trace.Tracer

	secretGrace time.Duration
	alive       func() error
}

// NewServer returns the API handler.
func NewServer(d Deps) *Server {
	s := &Server{store: d.Store, auth: d.Auth, intake: d.Intake, dispatcher: d.Dispatcher, log: d.Log, now: d.Now, mux: http.NewServeMux(),
		apiRate:      newRateLimiter(d.Limits.APIRate, d.Limits.APIBurst),
		intakeRate:   newRateLimiter(d.Limits.IntakeRate, d.Limits.IntakeBurst),
		authFailures: newRateLimiter(d.Limits.AuthFailureRate, d.Limits.AuthFailureBurst),
		limits:       d.Limits,

		secretGrace:   d.SecretRotationGrace,
		alive:         d.Alive,
		intakeTimeout: cmp.Or(d.IntakeTimeout, IntakeTimeout),
		apiTimeout:    cmp.Or(d.APITimeout, apiTimeout),
		statsSlots:    make(chan struct{}, statsAtOnce),
	}
	if s.intake == nil {
		s.intake = storeIntake{d.Store}
	}
	if s.dispatcher == nil {
		s.dispatcher = noDispatcher{}
	}
	if s.tracer = d.Tracer; s.tracer == nil {
		s.tracer = noop.NewTracerProvider().Tracer("")
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.alive == nil {
		s.alive = func() error { return nil }
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	reg := d.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(reg)
	s.sources = newSourceMetrics(reg)
	s.routes(d.Metrics, d.Extra)
	return s
}

// ServeHTTP answers from the route table; the router's own 404 and 405
// answers are rewritten as Qovery's JSON error body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // it sets the path values Handler does not
		return
	}
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	switch rec.status {
	case http.StatusMethodNotAllowed:
		writeStatus(w, rec.status, r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+rec.header.Get("Allow"))
	default:
		writeStatus(w, http.StatusNotFound, "no such resource: "+r.URL.Path)
	}
}

// statusRecorder captures what the router would answer, without a body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }

// handle registers a public route.
func (s *Server) handle(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// orgHandler serves one organization's resource for an authorized caller.
type orgHandler func(w http.ResponseWriter, r *http.Request, org uuid.UUID) error

// handleOrg registers a route of the management API under
// /organization/{organizationId}: the caller must authenticate (401),
// stay within its credential's rate (429) and may act on that
// organization (403). The rate is checked before the organization so
// that a credential probing other organizations is slowed down too. The
// handler finds the caller in the request's context (auth.FromContext).
// Its waits for the database are bounded (apiDeadline).
func (s *Server) handleOrg(pattern string, h orgHandler) {
	s.handle(pattern, s.apiDeadline(func(w http.ResponseWriter, r *http.Request) error {
		id, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if wait := s.apiRate.reserve(id.Key(), s.now()); wait > 0 {
			s.metrics.throttled.WithLabelValues("api_rate").Inc()
			return &webhook.Error{Code: webhook.ETooManyRequests, RetryAfter: wait, Message: fmt.Sprintf(
				"too many requests with these credentials: at most %g a second, in bursts of %d; retry after the Retry-After header's seconds",
				s.limits.APIRate, max(s.limits.APIBurst, 1))}
		}
		org, err := s.authorize(r, id)
		if err != nil {
			return err
		}
		return h(w, r.WithContext(auth.NewContext(r.Context(), id)), org)
	}))
}

// handleIntake registers intake: as handleOrg, but limited per
// organization (IntakeRate) instead of per credential. Intake is machine
// traffic whose volume follows deployments, thousands of events a second
// from one token in a busy installation, so the management API's rate
// would either cap it or have to be so high it protects nothing. The
// rate is checked only once the caller may act on the organization, so
// nobody can use up another organization's events. Its waits for the
// database are bounded (bounded).
func (s *Server) handleIntake(pattern string, h orgHandler) {
	s.handle(pattern, s.bounded(func(w http.ResponseWriter, r *http.Request) error {
		id, err := s.authenticate(r)
		if err != nil {
			return err
		}
		org, err := s.authorize(r, id)
		if err != nil {
			return err
		}
		if wait := s.intakeRate.reserve(org.String(), s.now()); wait > 0 {
			s.metrics.throttled.WithLabelValues("intake_rate").Inc()
			return &webhook.Error{Code: webhook.ETooManyRequests, RetryAfter: wait, Message: fmt.Sprintf(
				"too many deployment events for organization %s: at most %g a second, in bursts of %d; retry after the Retry-After header's seconds",
				org, s.limits.IntakeRate, max(s.limits.IntakeBurst, 1))}
		}
		return h(w, r.WithContext(auth.NewContext(r.Context(), id)), org)
	}))
}

// authenticate identifies the caller. Each failure counts against the
// client's address (AuthFailureRate), and an address past its rate is
// answered 429 before its credentials are looked at: a wrong token costs
// a database lookup, so guessing and floods of bad credentials are slowed
// per address, whatever credentials they try, and however many at once.
func (s *Server) authenticate(r *http.Request) (id *auth.Identity, err error) {
	a, err := s.admitAuth(clientKey(r))
	if err != nil {
		return nil, err
	}
	// Deferred, so that a lookup that panics (net/http recovers it) still
	// gives its place in flight back.
	defer func() { s.settleAuth(a, err) }()
	return s.auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
}

// admitAuth lets an attempt to authenticate from the client address go
// ahead, or answers 429 to an address past its rate of failed
// authentications (API tokens and ingest signatures alike). Every
// attempt it lets through must be settled (settleAuth).
func (s *Server) admitAuth(client string) (attempt, error) {
	a, wait := s.authFailures.admit(client, s.now())
	if wait <= 0 {
		return a, nil
	}
	s.metrics.throttled.WithLabelValues("auth_failures").Inc()
	return a, &webhook.Error{Code: webhook.ETooManyRequests, RetryAfter: wait, Message: fmt.Sprintf(
		"too many failed authentications from your address: at most %g a second, in bursts of %d; retry after the Retry-After header's seconds with valid credentials",
		s.limits.AuthFailureRate, max(s.limits.AuthFailureBurst, 1))}
}

// settleAuth ends an admitted attempt: a refused credential (err's code
// EUnauthorized) counts against the client's address; anything else
// does not.
func (s *Server) settleAuth(a attempt, err error) {
	s.authFailures.settle(a, webhook.ErrorCode(err) == webhook.EUnauthorized, s.now())
}

// actor is who is calling, for the audit trail. handleOrg puts the
// caller in the context of every request an orgHandler sees; without one
// nothing is changed, since no change may go unsigned.
func actor(r *http.Request) (webhook.Actor, error) {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		return webhook.Actor{}, webhook.Errorf(webhook.EInternal, "api: no caller in the request context")
	}
	return id.Actor(), nil
}

// authorize returns the organization of the path if id may act on it.
func (s *Server) authorize(r *http.Request, id *auth.Identity) (uuid.UUID, error) {
	org, err := pathUUID(r, "organizationId")
	if err != nil {
		return uuid.Nil, err
	}
	if !id.CanAccess(org) {
		return uuid.Nil, webhook.Errorf(webhook.EForbidden, "these credentials do not give access to organization %s", org)
	}
	return org, nil
}

// pathUUID parses a path parameter that must be a UUID.
func pathUUID(r *http.Request, name string) (uuid.UUID, error) {
	v := r.PathValue(name)
	id, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		return uuid.Nil, webhook.Invalid(name, "must be a UUID such as 3fa85f64-5717-4562-b3fc-2c963f66afa6")
	}
	return id, nil
}
