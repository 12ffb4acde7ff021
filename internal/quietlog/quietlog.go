// Package quietlog logs failures that can repeat many times a second (a
// claim on every poll while the database is down, an ingest URL asked by
// whoever holds it) without drowning the log.
package quietlog

import (
	"log/slog"
	"sync"
	"time"
)

// Log logs a failure once, then at most once a minute with how many
// times it happened meanwhile ("repeated"). The zero value is ready.
type Log struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

// Error logs msg and args at error level, unless a line went out less
// than a minute before now.
func (q *Log) Error(log *slog.Logger, now time.Time, msg string, args ...any) {
	q.mu.Lock()
	if !q.last.IsZero() && now.Sub(q.last) < time.Minute {
		q.skipped++
		q.mu.Unlock()
		return
	}
	skipped := q.skipped
	q.last, q.skipped = now, 0
	q.mu.Unlock()
	if skipped > 0 {
		args = append(args, "repeated", skipped)
	}
	log.Error(msg, args...)
}
