// Package purge runs a store's purge in the background: a pass when it
// starts, one after each wake-up, one again a while after a pass that
// failed, and, if asked, one every so often, until it is closed. The backends decide what a pass deletes
// (the deliveries of deleted webhooks) and how; this package only when.
package purge

import (
	"context"
	"time"
)

// Purger runs passes on its own goroutine. A nil *Purger is a store
// not started yet: waking it does nothing, and closing it returns.
type Purger struct {
	wake chan struct{} // one buffered: a wake-up during a pass makes one more
	stop context.CancelFunc
	done chan struct{}
}

// Every says when a purger looks again with nothing to wake it.
type Every struct {
	// Retry is the wait after a pass that failed (a full disk, say:
	// nothing wakes the purger for that).
	Retry time.Duration
	// Sweep is the wait after one that succeeded, for what nothing will
	// wake this purger for (another process's pass, cut short by its
	// crash); 0: none.
	Sweep time.Duration
}

// Start finds what there is to purge (find), before it returns: a
// database it cannot read fails the start rather than a pass in the
// background. Then, on its own goroutine, it purges that (purge), and
// finds and purges again after every Wake and as every says, until
// Close. A pass is given a context that Close cancels. report, if not
// nil, is told of each pass that failed, Close's cancellation aside.
func Start[T any](ctx context.Context, find func(context.Context) (T, error), purge func(context.Context, T) error, every Every, report func(error)) (*Purger, error) {
	found, err := find(ctx)
	if err != nil {
		return nil, err
	}
	pass := func(ctx context.Context) error {
		found, err := find(ctx)
		if err != nil {
			return err
		}
		return purge(ctx, found)
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &Purger{wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		err := purge(ctx, found)
		for {
			var again <-chan time.Time
			switch {
			case err != nil && ctx.Err() == nil:
				if report != nil {
					report(err)
				}
				again = time.After(every.Retry)
			case err == nil && every.Sweep > 0:
				again = time.After(every.Sweep)
			}
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			case <-again:
			}
			err = pass(ctx)
		}
	}()
	return p, nil
}

// Wake asks for a pass, without waiting for it.
func (p *Purger) Wake() {
	if p == nil {
		return
	}
	select {
	case p.wake <- struct{}{}:
	default: // one is already asked for
	}
}

// Close cancels the pass under way and waits for it to return.
func (p *Purger) Close() {
	if p == nil {
		return
	}
	p.stop()
	<-p.done
}
