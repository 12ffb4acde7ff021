package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// retention removes events older than keep, with their deliveries and
// attempts, at start and then every `every`. The store never removes an
// event with a delivery still pending or running, so retention cannot
// break a promise.
type retention struct {
	store webhook.Store
	keep  time.Duration
	every time.Duration
	now   func() time.Time
	log   *slog.Logger
}

// run removes old events until ctx ends. A failed pass is logged and
// tried again at the next tick.
func (r *retention) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		r.runOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runOnce removes what is older than keep by r.now and says how many
// events went.
func (r *retention) runOnce(ctx context.Context) (int, error) {
	n, err := r.store.DeleteBefore(ctx, r.now().Add(-r.keep))
	switch {
	case err != nil && ctx.Err() == nil:
		// The batches before the failure stay done: say how many.
		r.log.Error("retention cleanup failed", "err", err, "events_removed", n)
	case n > 0:
		r.log.Info("retention cleanup", "events_removed", n)
	}
	return n, err
}
