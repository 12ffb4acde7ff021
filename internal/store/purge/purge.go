// Package purge runs a store's purge in the background: a pass when it
// starts, one after each wake-up, one again a while after a pass that
// failed, and, if asked, one every so often, until it is closed. The
// backends decide what a pass deletes (the deliveries of deleted
// webhooks) and how; this package only when, and over what.
package purge

import (
	"context"
	"sync"
	"time"
)

// Purger runs passes on its own goroutine, each over items of type E (a
// deleted webhook, say): those Wake named, or all that find finds. A nil
// *Purger is a store not started yet: waking it does nothing, and closing
// it returns.
type Purger[E any] struct {
	wake  chan struct{} // one buffered: a wake-up during a pass makes one more
	stop  context.CancelFunc
	first chan struct{} // closed when the first pass ends
	done  chan struct{}

	mu    sync.Mutex
	named []E  // named by Wake since a pass last took them
	all   bool // a Wake named nothing: the next pass finds them all
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

// Start starts a purger: on its own goroutine, it purges all that find
// finds, then after every Wake the items it named (or, named none, all
// that find finds again), and, as every says, all that find finds, until
// Close. The first search runs there too, not before Start returns: it
// costs one look per webhook with deliveries (about 35 µs each on
// SQLite), and a store that waited for it would keep hookd from serving
// for seconds with 100,000 such webhooks. Looking only at what a wake-up
// names keeps each delete from costing as much. A pass is given a
// context that Close cancels. report, if not nil, is told of each pass
// that failed, Close's cancellation aside.
func Start[E any](find func(context.Context) ([]E, error), purge func(context.Context, []E) error, every Every, report func(error)) *Purger[E] {
	all := func(ctx context.Context) error {
		found, err := find(ctx)
		if err != nil {
			return err
		}
		return purge(ctx, found)
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &Purger[E]{wake: make(chan struct{}, 1), stop: stop, first: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		err := all(ctx)
		close(p.first)
		failed := false // since the last full pass that succeeded
		for {
			if err != nil && ctx.Err() == nil {
				if report != nil {
					report(err)
				}
				failed = true
			}
			var again <-chan time.Time
			switch {
			case failed:
				again = time.After(every.Retry)
			case every.Sweep > 0:
				again = time.After(every.Sweep)
			}
			// After a failure, every pass looks at everything until one
			// succeeds: what the failed one was given is still to purge.
			full := failed
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			case <-again:
				full = true
			}
			// A full pass finds the named items too: they are in the
			// store until purged.
			named, wanted := p.take()
			switch {
			case full || wanted:
				err, failed = all(ctx), false
			case len(named) > 0:
				err = purge(ctx, named)
			default:
				err = nil // a wake-up whose items a pass took already
			}
		}
	}()
	return p
}

// take returns the items named since the last pass, and whether a Wake
// asked for everything.
func (p *Purger[E]) take() (named []E, all bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	named, all = p.named, p.all
	p.named, p.all = nil, false
	return named, all
}

// Wake asks for a pass over items, without waiting for it; named none,
// over all that find finds.
func (p *Purger[E]) Wake(items ...E) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.named = append(p.named, items...)
	p.all = p.all || len(items) == 0
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default: // one is already asked for
	}
}

// FirstPass is closed once the first pass, over all that find finds, has
// ended, done or failed: what happens to the store after it is the
// wake-ups' and the timers' doing alone (a test that removes a webhook
// behind the purger's back waits for it). A nil Purger's is closed.
func (p *Purger[E]) FirstPass() <-chan struct{} {
	if p == nil {
		return closed
	}
	return p.first
}

var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Close cancels the pass under way and waits for it to return.
func (p *Purger[E]) Close() {
	if p == nil {
		return
	}
	p.stop()
	<-p.done
}
