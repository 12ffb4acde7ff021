package purge

import (
	"context"
	"errors"
	"slices"
	"sync"
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

// passes records what each pass was given.
type passes struct {
	mu   sync.Mutex
	got  [][]int32
	hold chan struct{} // when not nil, each pass after the first waits for it
}

func (p *passes) purge(ctx context.Context, items []int32) error {
	p.mu.Lock()
	p.got = append(p.got, items)
	first := len(p.got) == 1
	p.mu.Unlock()
	if p.hold != nil && !first {
		select {
		case <-p.hold:
		case <-ctx.Done():
		}
	}
	return nil
}

func (p *passes) n() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

func (p *passes) all() [][]int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func TestPurger(t *testing.T) {
	var finds atomic.Int32
	find := func(context.Context) ([]int32, error) { return []int32{-finds.Add(1)}, nil } // -1, -2...: what find found
	ps := &passes{hold: make(chan struct{})}
	p := Start(find, ps.purge, Every{Retry: time.Hour}, nil)
	waitFor(t, "the first pass did not run", func() bool { return ps.n() == 1 })
	time.Sleep(10 * time.Millisecond)
	if ps.n() != 1 || finds.Load() != 1 {
		t.Fatal("a pass ran with nothing to wake it")
	}
	// A wake-up that names nothing finds everything again.
	p.Wake()
	waitFor(t, "a wake-up ran no pass", func() bool { return ps.n() == 2 })
	// Wake-ups during a pass make one more pass, however many they are,
	// over all they named.
	p.Wake(7)
	p.Wake(8, 9)
	p.Wake(10)
	ps.hold <- struct{}{}
	waitFor(t, "the wake-ups during a pass ran none after it", func() bool { return ps.n() == 3 })
	// One naming nothing among those naming some: everything is found.
	p.Wake(11)
	p.Wake()
	ps.hold <- struct{}{}
	waitFor(t, "the wake-ups during a pass ran none after it", func() bool { return ps.n() == 4 })
	ps.hold <- struct{}{}
	time.Sleep(20 * time.Millisecond)
	if n := ps.n(); n != 4 {
		t.Fatalf("%d passes, want 4: wake-ups during one pass make one more", n)
	}
	// A wake-up whose items an earlier pass took (Wake adds its items,
	// then signals: a pass may take them between the two) runs no pass.
	p.wake <- struct{}{}
	time.Sleep(20 * time.Millisecond)
	if n := ps.n(); n != 4 {
		t.Fatalf("%d passes, want 4: a wake-up with nothing left to purge ran one", n)
	}
	// Close cancels the pass under way and waits for it.
	p.Close()
	select {
	case <-p.done:
	default:
		t.Fatal("Close returned before the purger")
	}
	want := [][]int32{{-1}, {-2}, {7, 8, 9, 10}, {-3}}
	if got := ps.all(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("passes purged %v, want %v: at the start and after an empty wake-up what find found, else what the wake-ups named", got, want)
	}
	if finds.Load() != 3 {
		t.Fatalf("%d finds, want 3: a wake-up naming items looks at nothing else", finds.Load())
	}
	p.Close() // twice is harmless
	p.Wake()  // and so is waking a closed one
}

// Start does not wait for the first search, which may take seconds (a
// look per webhook with deliveries); if that search fails, it is
// reported and tried again after Retry, like any pass.
func TestStartDoesNotWait(t *testing.T) {
	searching := make(chan struct{})
	var finds atomic.Int32
	ps := &passes{}
	reported := make(chan error, 1)
	p := Start(func(context.Context) ([]int32, error) {
		if finds.Add(1) == 1 {
			select {
			case <-searching:
			case <-time.After(5 * time.Second):
				return nil, errors.New("Start waited for its first search to end")
			}
			return nil, errors.New("unreadable")
		}
		return []int32{1}, nil
	}, ps.purge, Every{Retry: time.Millisecond}, func(err error) { reported <- err })
	defer p.Close()
	select {
	case <-p.FirstPass():
		t.Fatal("FirstPass closed while the first search ran")
	default:
	}
	close(searching) // Start returned while its first search ran
	if err := <-reported; err.Error() != "unreadable" {
		t.Fatalf("reported %v, want the first search's error", err)
	}
	select {
	case <-p.FirstPass(): // closed after the first pass failed, as it is after one that succeeds
	case <-time.After(5 * time.Second):
		t.Fatal("FirstPass not closed after the first pass failed")
	}
	waitFor(t, "the failed search was not tried again", func() bool { return ps.n() == 1 })
	if got := ps.all()[0]; !slices.Equal(got, []int32{1}) {
		t.Fatalf("the pass after the failed search purged %v, want what the second search found, [1]", got)
	}
}

// A pass that fails, in its find or its purge, is reported and runs
// again after retry with nothing to wake it; one that succeeds waits to
// be woken (or for the sweep). After a failure, a wake-up naming items
// looks at everything: what the failed pass was given is still to purge.
func TestPurgerRetries(t *testing.T) {
	var finds, purges atomic.Int32
	reported := make(chan error, 10)
	var mu sync.Mutex
	var got [][]int32
	fail := atomic.Bool{}
	fail.Store(true)
	p := Start(func(context.Context) ([]int32, error) {
		if finds.Add(1) == 2 {
			return nil, errors.New("the database is unreachable")
		}
		return []int32{-1}, nil
	}, func(_ context.Context, items []int32) error {
		mu.Lock()
		got = append(got, items)
		mu.Unlock()
		if purges.Add(1) < 3 || fail.Load() && purges.Load() == 4 {
			return errors.New("the disk is full")
		}
		return nil
	}, Every{Retry: 20 * time.Millisecond, Sweep: time.Hour}, func(err error) { reported <- err })
	defer p.Close()
	// The first find; the first pass fails; a retry's find fails; the next
	// retry's pass fails again; the one after succeeds.
	waitFor(t, "failed passes were not tried again", func() bool { return purges.Load() == 3 })
	time.Sleep(60 * time.Millisecond)
	if f, n := finds.Load(), purges.Load(); f != 4 || n != 3 {
		t.Fatalf("%d finds and %d purges, want 4 and 3: a pass that succeeded was tried again", f, n)
	}
	// A pass over named items fails; the wake-up after it, though it
	// names an item too, looks at everything.
	p.Wake(5)
	waitFor(t, "a wake-up ran no pass", func() bool { return purges.Load() == 4 })
	fail.Store(false)
	p.Wake(6)
	waitFor(t, "no pass after a failed one", func() bool { return purges.Load() == 5 })
	mu.Lock()
	last := slices.Clone(got[3:5]) // a retry's timer may have run the full pass first: the same
	mu.Unlock()
	if want := [][]int32{{5}, {-1}}; !slices.EqualFunc(last, want, slices.Equal) {
		t.Fatalf("the passes after the retries purged %v, want %v", last, want)
	}
	var errs []string
	for len(reported) > 0 {
		errs = append(errs, (<-reported).Error())
	}
	if want := []string{"the disk is full", "the database is unreachable", "the disk is full", "the disk is full"}; !slices.Equal(errs, want) {
		t.Fatalf("reported %q, want %q", errs, want)
	}
}

// With a sweep, passes that succeed come again with nothing to wake
// them, each finding anew.
func TestPurgerSweeps(t *testing.T) {
	var finds atomic.Int32
	ps := &passes{}
	p := Start(func(context.Context) ([]int32, error) { return []int32{finds.Add(1)}, nil },
		ps.purge, Every{Retry: time.Hour, Sweep: 5 * time.Millisecond}, nil)
	defer p.Close()
	waitFor(t, "no sweep after the first pass", func() bool { return ps.n() >= 4 })
	for i, items := range ps.all() {
		if !slices.Equal(items, []int32{int32(i + 1)}) {
			t.Fatalf("pass %d purged %v, want what the find before it found, [%d]", i+1, items, i+1)
		}
	}
}

// A nil Purger, a store that never started one, can be woken, waited
// for and closed.
func TestNilPurger(t *testing.T) {
	var p *Purger[int]
	p.Wake()
	p.Wake(1)
	<-p.FirstPass() // nothing to wait for
	p.Close()
}
