// Package purge runs a store's purge in the background: a pass when it
// starts, one after each wake-up, and one again a while after a pass that
// failed, until it is closed. The backends decide what a pass deletes
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

// Start runs first, then pass after every Wake, and pass again retry
// after one of them failed (a full disk, say: nothing wakes it for that),
// until Close. A pass is given a context that Close cancels.
func Start(first, pass func(context.Context) error, retry time.Duration) *Purger {
	ctx, stop := context.WithCancel(context.Background())
	p := &Purger{wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		err := first(ctx)
		for {
			var again <-chan time.Time
			if err != nil && ctx.Err() == nil {
				again = time.After(retry)
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
	return p
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
