package purge

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// waitFor waits until cond holds, for a few seconds at most.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
	}
}

func TestPurger(t *testing.T) {
	var firsts, passes atomic.Int32
	release := make(chan struct{})
	p := Start(func(context.Context) error { firsts.Add(1); return nil },
		func(ctx context.Context) error {
			passes.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}, time.Hour)
	waitFor(t, "the first pass did not run", func() bool { return firsts.Load() == 1 })
	if passes.Load() != 0 {
		t.Fatal("a pass ran with nothing to wake it")
	}
	p.Wake()
	waitFor(t, "a wake-up ran no pass", func() bool { return passes.Load() == 1 })
	// Wake-ups during a pass make one more pass, however many they are.
	p.Wake()
	p.Wake()
	p.Wake()
	release <- struct{}{}
	waitFor(t, "the wake-ups during a pass ran none after it", func() bool { return passes.Load() == 2 })
	release <- struct{}{}
	time.Sleep(20 * time.Millisecond)
	if n := passes.Load(); n != 2 {
		t.Fatalf("%d passes, want 2: three wake-ups during one pass make one more", n)
	}
	// Close cancels the pass under way and waits for it.
	p.Wake()
	waitFor(t, "a wake-up ran no pass", func() bool { return passes.Load() == 3 })
	p.Close()
	select {
	case <-p.done:
	default:
		t.Fatal("Close returned before the purger")
	}
	p.Close() // twice is harmless
	p.Wake()  // and so is waking a closed one
}

// A pass that fails runs again after retry with nothing to wake it; one
// that succeeds waits to be woken.
func TestPurgerRetries(t *testing.T) {
	var passes atomic.Int32
	p := Start(func(context.Context) error { return errors.New("the disk is full") },
		func(context.Context) error {
			if passes.Add(1) < 3 {
				return errors.New("still full")
			}
			return nil
		}, time.Millisecond)
	defer p.Close()
	waitFor(t, "failed passes were not tried again", func() bool { return passes.Load() == 3 })
	time.Sleep(20 * time.Millisecond)
	if n := passes.Load(); n != 3 {
		t.Fatalf("%d passes, want 3: a pass that succeeded was tried again", n)
	}
}

// A nil Purger, a store that never started one, can be woken and closed.
func TestNilPurger(t *testing.T) {
	var p *Purger
	p.Wake()
	p.Close()
}
