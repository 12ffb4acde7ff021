package intake

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// gateStore is a database that has stopped answering: each EventsCreate
// reports its batch on entered and returns only once release is closed.
// It is the seam between the committer and the database; the real stores
// are exercised by TestConcurrentAccepts and the end-to-end tests.
type gateStore struct {
	webhook.Store // nil: only EventsCreate is called
	entered       chan int
	release       chan struct{}
	mu            sync.Mutex
	stored        map[uuid.UUID]bool
}

func (g *gateStore) EventsCreate(ctx context.Context, events []*webhook.Event, _ webhook.Lease) ([]webhook.EventReceipt, error) {
	g.entered <- len(events)
	<-g.release
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]webhook.EventReceipt, len(events))
	for i, ev := range events {
		g.stored[ev.ID] = true
		out[i] = webhook.EventReceipt{ID: ev.ID, CreatedAt: ev.CreatedAt}
	}
	return out, nil
}

// TestBusyWhenQueueFull stalls the database with one batch in flight and
// the queue full, floods the committer, and checks the flood is refused
// at once with ErrBusy (nothing more is held in memory), while every
// event already queued is committed and answered once the database
// moves again, and none of the refused ones is stored.
func TestBusyWhenQueueFull(t *testing.T) {
	g := &gateStore{entered: make(chan int, 8), release: make(chan struct{}), stored: map[uuid.UUID]bool{}}
	const workers, maxBatch = 1, 4
	c := New(Config{Store: g, Workers: workers, MaxBatch: maxBatch, MaxWait: 10 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { c.Run(ctx); close(stopped) }()
	t.Cleanup(func() {
		stop()
		<-stopped
	})

	org := uuid.New()
	type answer struct {
		id  uuid.UUID
		r   webhook.EventReceipt
		err error
	}
	answers := make(chan answer, 64)
	accept := func() {
		ev := event(org)
		r, err := c.Accept(context.Background(), ev)
		answers <- answer{ev.ID, r, err}
	}

	// One event in the database's hands, stuck there.
	go accept()
	select {
	case n := <-g.entered:
		if n != 1 {
			t.Fatalf("first batch has %d events, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first event never reached the store")
	}
	// The queue fills up: these wait for their commit.
	for range workers * maxBatch {
		go accept()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(c.requests) < workers*maxBatch {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d events, want %d", len(c.requests), workers*maxBatch)
		}
		time.Sleep(time.Millisecond)
	}

	// The flood: every one is refused, without waiting for the database.
	const flood = 40
	for range flood {
		go accept()
	}
	refused := map[uuid.UUID]bool{}
	for range flood {
		select {
		case a := <-answers:
			if !errors.Is(a.err, ErrBusy) {
				t.Fatalf("with the queue full: %v, want ErrBusy", a.err)
			}
			refused[a.id] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d refusals came; the others are waiting, holding their events", len(refused), flood)
		}
	}
	if got := len(c.requests); got != workers*maxBatch {
		t.Fatalf("queue holds %d events after the flood, want %d", got, workers*maxBatch)
	}
	if webhook.ErrorCode(ErrBusy) != webhook.EUnavailable || ErrBusy.RetryAfter <= 0 {
		t.Errorf("ErrBusy is %q with Retry-After %v, want unavailable (503) with a Retry-After", webhook.ErrorCode(ErrBusy), ErrBusy.RetryAfter)
	}

	// The database moves again: the held events are committed and answered.
	close(g.release)
	accepted := map[uuid.UUID]bool{}
	for range 1 + workers*maxBatch {
		select {
		case a := <-answers:
			if a.err != nil || a.r.ID != a.id {
				t.Fatalf("queued event: receipt %+v, error %v", a.r, a.err)
			}
			accepted[a.id] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d queued events answered", len(accepted), 1+workers*maxBatch)
		}
	}
	// And intake takes events again.
	go accept()
	select {
	case a := <-answers:
		if a.err != nil {
			t.Fatalf("after the stall: %v", a.err)
		}
		accepted[a.id] = true
	case <-time.After(10 * time.Second):
		t.Fatal("no answer after the stall")
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	for id := range accepted {
		if !g.stored[id] {
			t.Errorf("event %v got a receipt but was not stored", id)
		}
	}
	for id := range refused {
		if g.stored[id] {
			t.Errorf("event %v was refused but stored", id)
		}
	}
	if len(g.stored) != len(accepted) {
		t.Errorf("%d events stored, %d accepted", len(g.stored), len(accepted))
	}
}
