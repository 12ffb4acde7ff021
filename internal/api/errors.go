package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hookd/hookd/internal/quietlog"
	"github.com/hookd/hookd/internal/webhook"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	webhook.EInvalid:         http.StatusBadRequest,
	webhook.ETooLarge:        http.StatusRequestEntityTooLarge,
	webhook.EUnauthorized:    http.StatusUnauthorized,
	webhook.EForbidden:       http.StatusForbidden,
	webhook.ENotFound:        http.StatusNotFound,
	webhook.EConflict:        http.StatusConflict,
	webhook.EPrecondition:    http.StatusPreconditionFailed,
	webhook.EUnprocessable:   http.StatusUnprocessableEntity,
	webhook.ETooManyRequests: http.StatusTooManyRequests,
	webhook.EUnavailable:     http.StatusServiceUnavailable,
	webhook.EInternal:        http.StatusInternalServerError,
}

// errorBody is Qovery's error object.
type errorBody struct {
	Status int    `json:"status"`
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

// writeError turns err into Qovery's error body. Only internal errors are
// logged as errors, and their text never reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := webhook.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if ctxErr := r.Context().Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		// The client went away (or timed out) before the answer: nothing
		// failed here, and nobody reads the answer. An accepted event
		// whose commit was under way is committed all the same.
		s.log.Debug("request abandoned by the client", "method", r.Method, "path", r.URL.Path)
		return
	}
	if status == http.StatusInternalServerError && !errors.As(err, new(logged)) {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if errors.Is(err, webhook.ErrUnwritable) {
		s.unwritableAt.Store(s.now().UnixNano())
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Token, Bearer`)
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		var wait time.Duration
		if e := (*webhook.Error)(nil); errors.As(err, &e) {
			wait = e.RetryAfter
		}
		w.Header().Set("Retry-After", retryAfter(wait))
	}
	writeJSON(w, status, errorBody{Status: status, Error: http.StatusText(status), Detail: webhook.ErrorMessage(err)})
}

// writeStatus writes an error body for a status that has no domain error
// behind it (the router's 404 and 405).
func writeStatus(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, errorBody{Status: status, Error: http.StatusText(status), Detail: detail})
}

// retryAfter is a Retry-After value: whole seconds, rounded up, at least
// one (a client told "0" would retry at once).
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10)
}

// logged is an internal error its handler logged (or chose not to log
// again) itself: writeError answers it without a line of its own.
type logged struct{ error }

func (e logged) Unwrap() error { return e.error }

// repeats is a quietlog.Log per key: an ingest URL can be asked
// thousands of times a second by whoever holds it, and a line each would
// flood the log. Keys are sources found in the store, so memory follows
// the sources that ever failed so.
type repeats struct {
	mu   sync.Mutex
	logs map[string]*quietlog.Log
}

// error logs msg and args at error level, unless key was logged less
// than a minute before now.
func (r *repeats) error(log *slog.Logger, key string, now time.Time, msg string, args ...any) {
	r.mu.Lock()
	q := r.logs[key]
	if q == nil {
		if r.logs == nil {
			r.logs = map[string]*quietlog.Log{}
		}
		q = &quietlog.Log{}
		r.logs[key] = q
	}
	r.mu.Unlock()
	q.Error(log, now, msg, args...)
}
