package intake

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// The usual gap between requests is a moving average (an eighth of each
// new gap), and waiting for company is worth it only below maxLinger.
func TestArrivals(t *testing.T) {
	var a arrivals
	if a.often() {
		t.Fatal("no request seen yet, but company is expected")
	}
	t0 := time.Now()
	a.observe(time.Time{}) // unknown arrival time: ignored
	if !a.last.IsZero() {
		t.Fatal("a zero arrival time was recorded")
	}
	a.observe(t0)
	if a.gap != rareGap || a.often() {
		t.Fatalf("after the first request the gap is %s (often %v), want %s: a lone request is not kept waiting", a.gap, a.often(), rareGap)
	}
	a.observe(t0.Add(time.Millisecond))
	if want := rareGap - (rareGap-time.Millisecond)/8; a.gap != want {
		t.Fatalf("gap %s, want %s", a.gap, want)
	}
	// A long pause counts as rareGap, so the average comes back quickly.
	g1 := a.gap
	a.observe(t0.Add(time.Hour))
	if want := g1 + (rareGap-g1)/8; a.gap != want || !a.last.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after a pause: gap %s, want %s", a.gap, want)
	}
	// A request queued before the last one seen counts as no gap, and
	// does not move the clock back.
	prev := a.gap
	a.observe(t0.Add(time.Minute))
	if want := prev - prev/8; a.gap != want || !a.last.Equal(t0.Add(time.Hour)) {
		t.Fatalf("gap %s and last %s, want %s and t0+1h", a.gap, a.last.Sub(t0), want)
	}
	if (&arrivals{last: t0, gap: maxLinger}).often() || !(&arrivals{last: t0, gap: maxLinger - 1}).often() {
		t.Fatal("company is expected when the usual gap is under maxLinger, and only then")
	}
	// A steady 2,000 a second makes company worth waiting for; one
	// request every 1.5 maxLinger does not.
	at := t0.Add(time.Hour)
	for range 12 {
		at = at.Add(500 * time.Microsecond)
		a.observe(at)
	}
	if !a.often() {
		t.Fatalf("gap %s after a dozen requests at 2,000 a second: company not expected", a.gap)
	}
	for range 100 {
		at = at.Add(maxLinger * 3 / 2)
		a.observe(at)
	}
	if a.often() {
		t.Fatalf("gap %s at one request every %s: company expected", a.gap, maxLinger*3/2)
	}
}

// countStore is a database that commits at once and counts its
// transactions and their events.
type countStore struct {
	webhook.Store // nil: only EventsCreate is called
	batches       chan int
}

func (s *countStore) EventsCreate(_ context.Context, events []*webhook.Event, _ webhook.Lease) ([]webhook.EventReceipt, error) {
	s.batches <- len(events)
	out := make([]webhook.EventReceipt, len(events))
	for i, ev := range events {
		out[i] = webhook.EventReceipt{ID: ev.ID, CreatedAt: ev.CreatedAt}
	}
	return out, nil
}

// At a steady rate of a few thousand requests a second, requests that
// come one after the other share transactions, though the database
// commits each at once; a request after a pause is committed at once.
func TestLingerGroupsASteadyRate(t *testing.T) {
	s := &countStore{batches: make(chan int, 1000)}
	c := New(Config{Store: s, Workers: 1, MaxBatch: 64})
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { c.Run(ctx); close(stopped) }()
	t.Cleanup(func() { stop(); <-stopped })

	org := uuid.New()
	accepted := make(chan error, 200)
	const n = 200
	began := time.Now()
	for range n {
		go func() {
			_, err := c.Accept(context.Background(), event(org))
			accepted <- err
		}()
		time.Sleep(200 * time.Microsecond)
	}
	for range n {
		if err := <-accepted; err != nil {
			t.Fatal(err)
		}
	}
	transactions, events := 0, 0
	for events < n {
		events += <-s.batches
		transactions++
	}
	// Without the linger nearly every request commits alone (each commit
	// takes microseconds here); with it, a transaction carries several.
	t.Logf("%d events in %d transactions over %s", events, transactions, time.Since(began))
	if transactions > n*3/4 {
		t.Fatalf("%d events in %d transactions at a steady rate: they were not grouped", events, transactions)
	}

	// After pauses the rate is no longer known to be high (the average
	// needs a few gaps to learn it), and a lone request is committed
	// without waiting maxLinger for company. One that took longer may
	// have waited for the scheduler of a busy machine: try a few times.
	time.Sleep(50 * time.Millisecond)
	for range 20 {
		start := time.Now()
		if _, err := c.Accept(context.Background(), event(org)); err != nil {
			t.Fatal(err)
		}
		<-s.batches
		if d := time.Since(start); d < maxLinger {
			return // committed without waiting for company
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("a lone request after a pause kept waiting for company")
}

// linger returns at once when the oldest request has waited maxLinger
// already, and takes requests that come meanwhile otherwise.
func TestLingerDeadline(t *testing.T) {
	c := New(Config{Store: &countStore{batches: make(chan int, 1)}, MaxBatch: 4})
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	rate := arrivals{gap: time.Microsecond}
	old := []request{{at: time.Now().Add(-time.Second)}}
	c.requests <- request{at: time.Now()}
	if got := c.linger(context.Background(), old, &rate, timer); len(got) != 1 {
		t.Fatalf("a request past its linger waited for %d more", len(got)-1)
	}
	<-c.requests

	// A request arriving within the wait joins; the batch stops at MaxBatch.
	rate.gap = time.Hour
	for range 4 {
		c.requests <- request{at: time.Now()}
	}
	got := c.linger(context.Background(), []request{{at: time.Now()}}, &rate, timer)
	if len(got) != 4 {
		t.Fatalf("batch of %d, want MaxBatch 4", len(got))
	}
	if len(c.requests) != 1 {
		t.Fatalf("%d requests left queued, want 1", len(c.requests))
	}
	<-c.requests

	// Nothing comes: it gives up after twice the usual gap, well before
	// maxLinger when requests come often.
	rate.gap = 50 * time.Microsecond
	if got := c.linger(context.Background(), []request{{at: time.Now()}}, &rate, timer); len(got) != 1 {
		t.Fatalf("batch of %d from nothing", len(got))
	}

	// A stop ends the wait with what was gathered: here nothing else could
	// (the batch's first request is dated an hour ahead, so its linger
	// would last an hour).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rate.gap = time.Hour
	done := make(chan []request, 1)
	go func() { done <- c.linger(ctx, []request{{at: time.Now().Add(time.Hour)}}, &rate, timer) }()
	select {
	case got := <-done:
		if len(got) != 1 {
			t.Fatalf("batch of %d after a stop", len(got))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stop did not end the linger")
	}
}
