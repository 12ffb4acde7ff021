package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// IntakeTimeout is the longest an intake request (an event, a source's
// ingest) waits for the database, from its handler's start: its
// credential's lookup, its commit, and the wait between. A healthy
// PostgreSQL answers in milliseconds, tens of them for a full batch under
// heavy load, a few seconds at worst behind a checkpoint on slow disks;
// 10 s without an answer means the connection went silent (a partition
// that drops packets, a host that died), where TCP alone would hold the
// request for minutes. It is also below the senders' usual timeouts (30 s
// and more for most HTTP clients), so that they hear 503 with
// Retry-After, which they retry, rather than nothing. A stop waits for
// the last intake commits, which run to their requests' deadline:
// exported for the bound of a whole stop, which deployments' grace
// periods cover.
const IntakeTimeout = 10 * time.Second

// bounded runs an intake handler under s.intakeTimeout. A request whose
// wait for the database ran out is answered webhook.ErrUnreachable (503,
// Retry-After), as when the connection is reset: its event may have been
// stored all the same (a commit whose answer was lost), which its
// Idempotency-Key makes safe to retry. The bound runs from the handler's
// start, so a body sent slowly uses it up too: a request whose body took
// half of it or more is answered 503 saying so, and is no outage.
func (s *Server) bounded(h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), s.intakeTimeout)
		defer cancel()
		inner := r.WithContext(ctx)
		body := &timedBody{ReadCloser: r.Body}
		inner.Body = body
		err := h(w, inner)
		// A client that left is not the database's doing (writeError).
		timedOut := ctx.Err() == context.DeadlineExceeded && r.Context().Err() == nil
		if !timedOut || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, webhook.ErrUnreachable)) {
			s.outage.note(s.log, err)
			return err
		}
		// Refused for want of time, which the handlers count only when
		// what they were given is already a 503.
		already503 := webhook.ErrorCode(err) == webhook.EUnavailable
		if !already503 {
			s.metrics.throttled.WithLabelValues("intake_unavailable").Inc()
		}
		if body.waited >= s.intakeTimeout/2 {
			// The client's doing: the database had only the rest, which
			// says nothing of it, and no outage is logged.
			return &webhook.Error{Code: webhook.EUnavailable, RetryAfter: time.Second, Message: fmt.Sprintf(
				"the request's body took %s to arrive, which left too little of the %s intake gives a request to store its event; send the body at once",
				body.waited.Round(time.Millisecond), s.intakeTimeout)}
		}
		if !already503 {
			err = fmt.Errorf("api: no answer from the database within %s: %w: %w", s.intakeTimeout, webhook.ErrUnreachable, err)
		}
		s.outage.note(s.log, err)
		return err
	}
}

// apiTimeout is the longest a management request (webhooks, sources,
// deliveries, the audit trail: every route under handleOrg) waits for
// the database, from its handler's start: its credential's lookup, its
// reads, its one write. Each is an indexed read or a transaction of a
// few rows that a healthy database answers in milliseconds, so 10 s
// without an answer means the connection went silent, as for intake.
// The two that read a webhook's whole history of a window, a recovery
// and the stats, run under withoutDeadline once the webhook is read.
// Held longer, people at the console and scripts would wait for as long
// as TCP does (30 s and more), where they can be told to retry; the CLI
// gives up after 60 s.
const apiTimeout = 10 * time.Second

// apiDeadline runs a management handler under s.apiTimeout. A request
// whose wait for the database ran out is answered 503 with Retry-After,
// saying so. Its write, if it got that far, is one transaction: nothing
// of it is kept, unless what commits it (its COMMIT, a retry's one
// statement) had reached the server before the deadline and commits
// there with its answer lost, which the answer warns of: a create sent
// again would make a second one. A store call that may rightly take
// longer on a healthy database runs under withoutDeadline. Every 503 a
// management request is answered, this one or the store's (unreachable,
// busy, full), is counted as api_unavailable, as intake's are as
// intake_unavailable: nothing else reports them (a 503 is not logged).
func (s *Server) apiDeadline(h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), clientContext{}, r.Context()), s.apiTimeout)
		defer cancel()
		err := h(w, r.WithContext(ctx))
		if r.Context().Err() != nil {
			return err // a client that left is not the database's doing (writeError)
		}
		// An error already a 503 (the connection failed; intake's
		// committer gave up) already says why and when to retry.
		if ctx.Err() == context.DeadlineExceeded && errors.Is(err, context.DeadlineExceeded) && webhook.ErrorCode(err) != webhook.EUnavailable {
			msg := fmt.Sprintf("the database did not answer within %s; try again later", s.apiTimeout)
			if r.Method != http.MethodGet {
				msg += " (the change may have been made all the same, if the database had received it: check before repeating it)"
			}
			answer := &webhook.Error{Code: webhook.EUnavailable, RetryAfter: webhook.ErrUnreachable.RetryAfter, Message: msg}
			err = fmt.Errorf("api: %w: %w: %w", answer, webhook.ErrUnreachable, err)
		}
		if webhook.ErrorCode(err) == webhook.EUnavailable {
			s.metrics.throttled.WithLabelValues("api_unavailable").Inc()
		}
		return err
	}
}

// clientContext is the key under which apiDeadline keeps the request's
// context as it was before the deadline, for withoutDeadline.
type clientContext struct{}

// withoutDeadline is ctx without apiDeadline's bound, still ended when
// the client leaves: for a store call that may rightly outlast
// apiTimeout on a healthy database, which that bound would cut off every
// time it was tried.
func withoutDeadline(ctx context.Context) context.Context {
	if c, ok := ctx.Value(clientContext{}).(context.Context); ok {
		return c
	}
	return ctx
}

// timedBody is a request's body that adds up how long its reads waited
// for the client, so that a body sent slowly is not taken for a database
// that did not answer.
type timedBody struct {
	io.ReadCloser
	waited time.Duration
}

func (b *timedBody) Read(p []byte) (int, error) {
	start := time.Now()
	n, err := b.ReadCloser.Read(p)
	b.waited += time.Since(start)
	return n, err
}

// outage is whether intake is refusing events because the database is out
// of reach, so that the log says so when it starts, with the cause, and
// when it ends, with how many requests were refused meanwhile: two lines
// however long it lasts, where a line per refused request would flood
// the log (each one's 503 is not an error of hookd's).
type outage struct {
	// down is since != zero, read without the lock: every intake request
	// that succeeds asks, thousands a second, and only those of an outage
	// need the lock.
	down    atomic.Bool
	mu      sync.Mutex
	since   time.Time // zero: none
	refused int
}

// note reads the outcome of an intake request: one refused for the
// database (unreachable, not answering, not writable) starts or
// continues an outage; one that succeeded ends it. Others (a bad
// request, the queue full) say nothing of the database.
func (o *outage) note(log *slog.Logger, err error) {
	down := errors.Is(err, webhook.ErrUnreachable) || errors.Is(err, webhook.ErrUnwritable)
	if !down && (err != nil || !o.down.Load()) {
		return
	}
	o.mu.Lock()
	since, refused := o.since, o.refused
	switch {
	case down && since.IsZero():
		o.since, o.refused = time.Now(), 1
	case down:
		o.refused++
	default:
		o.since, o.refused = time.Time{}, 0
	}
	o.down.Store(down)
	o.mu.Unlock()
	switch {
	case down && since.IsZero():
		log.Warn("intake refuses events with 503 and Retry-After until the database answers again", "err", err)
	case !down && !since.IsZero():
		log.Info("intake accepts events again", "refusing_for", time.Since(since).Round(time.Millisecond), "refused", refused)
	}
}
