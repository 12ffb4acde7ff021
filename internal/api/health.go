package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

type statusOK struct {
	Status string `json:"status"`
}

// healthz is liveness: 200 unless hookd itself is wedged (Deps.Alive).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	if err := s.alive(); err != nil {
		s.log.Error("liveness check failed: hookd is wedged and should be restarted", "err", err)
		return webhook.Errorf(webhook.EUnavailable, "hookd is wedged: %v", err)
	}
	writeJSON(w, http.StatusOK, statusOK{"ok"})
	return nil
}

// unwritableFor is how long /readyz fails after a write failed with
// ErrUnwritable: a full disk lets the check's empty write through, so the
// failures of real writes say it too.
const unwritableFor = 15 * time.Second

// ReadyzTimeout is how long /readyz waits for the database to answer; a
// readiness probe must wait longer (deploy/kubernetes).
const ReadyzTimeout = 2 * time.Second

// readyz answers 200 only while the database answers and takes writes.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), ReadyzTimeout)
	defer cancel()
	// A copy of ErrUnwritable: the readiness check's own answer must not
	// count as a failed write, or it would keep itself failing.
	unwritable := *webhook.ErrUnwritable
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		if errors.Is(err, webhook.ErrUnwritable) {
			return &unwritable
		}
		return webhook.Errorf(webhook.EUnavailable, "the database is not reachable")
	}
	if at := s.unwritableAt.Load(); at != 0 && s.now().Sub(time.Unix(0, at)) < unwritableFor {
		return &unwritable
	}
	writeJSON(w, http.StatusOK, statusOK{"ok"})
	return nil
}
