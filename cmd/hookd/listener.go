package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres"
)

// nodeListener wakes the dispatcher when another node queues deliveries,
// makes it forget the deliveries of a webhook another node deleted, and
// give back those read before another node's edit of their webhook
// (PostgreSQL's LISTEN/NOTIFY), listening again after a failure. It only
// hastens the work: polling finds every delivery meanwhile, and a lease
// renewal finds a deleted webhook's deliveries gone.
type nodeListener struct {
	db     *postgres.DB
	wake   func()
	forget func(webhookID uuid.UUID)
	edited func(webhookID uuid.UUID, updatedAt time.Time)
	retry  time.Duration // the pause after a failed listen
	log    *slog.Logger
}

// run listens until ctx ends.
func (l *nodeListener) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.runOnce(ctx); err != nil {
			l.log.Warn("listening for other nodes' deliveries and deletes failed; polling meanwhile, and dropping a deleted webhook's deliveries only at renewal", "err", err)
		}
		t.Reset(l.retry)
	}
}

// runOnce listens on one connection until ctx ends (nil) or the
// connection fails (its error).
func (l *nodeListener) runOnce(ctx context.Context) error {
	return l.db.Listen(ctx, l.wake, l.forget, l.edited)
}
