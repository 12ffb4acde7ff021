package purge

import (
	"context"
	"errors"
	"slices"
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
	var finds, passes atomic.Int32
	release := make(chan struct{})
	find := func(context.Context) (int32, error) { return finds.Add(1), nil }
	var purged []int32 // what each pass was given, in order
	p, err := Start(context.Background(), find, func(ctx context.Context, found int32) error {
		purged = append(purged, found)
		if passes.Add(1) == 1 {
			return nil // the first pass, at the start
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, Every{Retry: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if finds.Load() != 1 {
		t.Fatalf("Start returned after %d finds, want 1", finds.Load())
	}
	waitFor(t, "the first pass did not run", func() bool { return passes.Load() == 1 })
	time.Sleep(10 * time.Millisecond)
	if passes.Load() != 1 || finds.Load() != 1 {
		t.Fatal("a pass ran with nothing to wake it")
	}
	p.Wake()
	waitFor(t, "a wake-up ran no pass", func() bool { return passes.Load() == 2 })
	// Wake-ups during a pass make one more pass, however many they are.
	p.Wake()
	p.Wake()
	p.Wake()
	release <- struct{}{}
	waitFor(t, "the wake-ups during a pass ran none after it", func() bool { return passes.Load() == 3 })
	release <- struct{}{}
	time.Sleep(20 * time.Millisecond)
	if n := passes.Load(); n != 3 {
		t.Fatalf("%d passes, want 3: three wake-ups during one pass make one more", n)
	}
	// Close cancels the pass under way and waits for it.
	p.Wake()
	waitFor(t, "a wake-up ran no pass", func() bool { return passes.Load() == 4 })
	p.Close()
	select {
	case <-p.done:
	default:
		t.Fatal("Close returned before the purger")
	}
	// Each pass purged what was found just before it: at the start, then
	// after each wake-up.
	if want := []int32{1, 2, 3, 4}; len(purged) != len(want) || purged[0] != 1 || purged[1] != 2 || purged[2] != 3 || purged[3] != 4 {
		t.Fatalf("passes purged %v, want %v", purged, want)
	}
	p.Close() // twice is harmless
	p.Wake()  // and so is waking a closed one
}

// A find that fails at the start fails Start, and no purger runs.
func TestStartFails(t *testing.T) {
	var passes atomic.Int32
	p, err := Start(context.Background(), func(context.Context) (int, error) { return 0, errors.New("unreadable") },
		func(context.Context, int) error { passes.Add(1); return nil }, Every{Retry: time.Millisecond}, nil)
	if err == nil || p != nil {
		t.Fatalf("Start = %v, %v; want no purger and the error", p, err)
	}
	time.Sleep(10 * time.Millisecond)
	if passes.Load() != 0 {
		t.Fatal("a pass ran after Start failed")
	}
}

// A pass that fails, in its find or its purge, is reported and runs
// again after retry with nothing to wake it; one that succeeds waits to
// be woken.
func TestPurgerRetries(t *testing.T) {
	var finds, passes atomic.Int32
	reported := make(chan error, 10)
	p, err := Start(context.Background(), func(context.Context) (int, error) {
		if finds.Add(1) == 2 {
			return 0, errors.New("the database is unreachable")
		}
		return 0, nil
	}, func(context.Context, int) error {
		if passes.Add(1) < 3 {
			return errors.New("the disk is full")
		}
		return nil
	}, Every{Retry: time.Millisecond, Sweep: time.Hour}, func(err error) { reported <- err })
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Start's find; the first pass fails; a retry's find fails; the next
	// retry's pass fails again; the one after succeeds.
	waitFor(t, "failed passes were not tried again", func() bool { return passes.Load() == 3 })
	time.Sleep(20 * time.Millisecond)
	if f, n := finds.Load(), passes.Load(); f != 4 || n != 3 {
		t.Fatalf("%d finds and %d passes, want 4 and 3: a pass that succeeded was tried again", f, n)
	}
	var got []string
	for len(reported) > 0 {
		got = append(got, (<-reported).Error())
	}
	if want := []string{"the disk is full", "the database is unreachable", "the disk is full"}; !slices.Equal(got, want) {
		t.Fatalf("reported %q, want %q", got, want)
	}
}

// With a sweep, passes that succeed come again with nothing to wake
// them, each finding anew.
func TestPurgerSweeps(t *testing.T) {
	var finds, passes atomic.Int32
	p, err := Start(context.Background(), func(context.Context) (int32, error) { return finds.Add(1), nil },
		func(context.Context, int32) error { passes.Add(1); return nil }, Every{Retry: time.Hour, Sweep: 5 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitFor(t, "no sweep after the first pass", func() bool { return passes.Load() >= 4 })
	if f, n := finds.Load(), passes.Load(); f < n {
		t.Fatalf("%d finds for %d passes: a sweep purged without looking", f, n)
	}
}

// A nil Purger, a store that never started one, can be woken and closed.
func TestNilPurger(t *testing.T) {
	var p *Purger
	p.Wake()
	p.Close()
}
