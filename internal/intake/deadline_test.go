package intake

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// silentStore is a database whose connection went silent: EventsCreate
// returns only when its context ends, with the driver's error for that.
type silentStore struct {
	webhook.Store // nil: only EventsCreate is called
	entered       chan int
}

func (s silentStore) EventsCreate(ctx context.Context, events []*webhook.Event, _ webhook.Lease) ([]webhook.EventReceipt, error) {
	s.entered <- len(events)
	<-ctx.Done()
	return nil, fmt.Errorf("driver: timeout: %w", ctx.Err())
}

// commitQueued starts a worker on what c has queued, stopped when the
// test ends, and waits until its transaction has started with n events.
func commitQueued(t *testing.T, c *Committer, entered <-chan int, n int) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.work(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	select {
	case got := <-entered:
		if got != n {
			t.Fatalf("the transaction carried %d events, want %d", got, n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the transaction never started")
	}
}

// A transaction has until the latest deadline of its requests (here the
// only one): past it, every request it carries, those without a deadline
// of their own included, is answered ErrUnreachable at once (503 with
// Retry-After), not one by one, and the worker is free for the next
// batch.
func TestCommitBoundedByDeadline(t *testing.T) {
	s := silentStore{entered: make(chan int, 4)}
	c := New(Config{Store: s, Workers: 1, MaxBatch: 4})
	const wait = 200 * time.Millisecond
	bounded, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	replies := []chan result{make(chan result, 1), make(chan result, 1)}
	start := time.Now()
	c.requests <- request{ctx: bounded, event: &webhook.Event{ID: uuid.New()}, reply: replies[0]}
	c.requests <- request{ctx: context.Background(), event: &webhook.Event{ID: uuid.New()}, reply: replies[1]}
	commitQueued(t, c, s.entered, 2)
	for i, r := range replies {
		select {
		case res := <-r:
			if !errors.Is(res.err, webhook.ErrUnreachable) || webhook.ErrorCode(res.err) != webhook.EUnavailable {
				t.Errorf("request %d: %v, want ErrUnreachable", i, res.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("request %d got no answer 5 s after its batch's deadline", i)
		}
	}
	if took := time.Since(start); took < wait {
		t.Errorf("answered after %s, before the deadline (%s)", took, wait)
	}
	select {
	case n := <-s.entered:
		t.Errorf("a timed-out batch was retried (%d events): each retry would wait again", n)
	default:
	}
}

// slowStore is a database that answers, slowly: EventsCreate commits once
// released, unless its context ends first.
type slowStore struct {
	webhook.Store // nil: only EventsCreate is called
	entered       chan int
	release       chan struct{}
}

func (s slowStore) EventsCreate(ctx context.Context, events []*webhook.Event, _ webhook.Lease) ([]webhook.EventReceipt, error) {
	s.entered <- len(events)
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, fmt.Errorf("driver: timeout: %w", ctx.Err())
	}
	out := make([]webhook.EventReceipt, len(events))
	for i, ev := range events {
		out[i] = webhook.EventReceipt{ID: ev.ID}
	}
	return out, nil
}

// A request near the end of its own deadline (its body came slowly) does
// not cut short the transaction it shares: the others' events are
// committed and answered as such, not refused with 503 for a commit that
// may land all the same.
func TestCommitOutlivesOneRequestsDeadline(t *testing.T) {
	s := slowStore{entered: make(chan int, 4), release: make(chan struct{})}
	c := New(Config{Store: s, Workers: 1, MaxBatch: 4})
	early, cancelEarly := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelEarly()
	late, cancelLate := context.WithTimeout(context.Background(), time.Minute)
	defer cancelLate()
	reply := make(chan result, 1)
	c.requests <- request{ctx: early, event: &webhook.Event{ID: uuid.New()}, reply: make(chan result, 1)}
	c.requests <- request{ctx: late, event: &webhook.Event{ID: uuid.New()}, reply: reply}
	commitQueued(t, c, s.entered, 2)
	<-early.Done()
	// The database still answers within the later request's time: its
	// transaction must still be waiting for it.
	select {
	case res := <-reply:
		t.Fatalf("answered %v once the other request's deadline passed, before the database answered", res.err)
	case <-time.After(300 * time.Millisecond):
	}
	close(s.release)
	select {
	case res := <-reply:
		if res.err != nil {
			t.Fatalf("the later request got %v, want its receipt", res.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the later request got no answer once the database answered")
	}
}

// answeredCtx is a context that has ended, whose Done waits, the first
// time it is asked, until the commit's answer is there: Accept then finds
// both at once, as when a commit ends just as its request's deadline.
type answeredCtx struct {
	context.Context
	answered <-chan struct{}
}

func (c answeredCtx) Done() <-chan struct{} {
	select {
	case <-c.answered:
	case <-time.After(5 * time.Second):
	}
	return c.Context.Done()
}

// An event committed as its request's deadline passed is answered as
// committed: refused, its sender would send it again.
func TestAcceptPrefersTheAnswerToTheDeadline(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 50 {
		c := New(Config{Store: silentStore{}, Workers: 1, MaxBatch: 4})
		answered := make(chan struct{})
		go func() {
			r := <-c.requests
			r.reply <- result{receipt: webhook.EventReceipt{ID: r.event.ID}}
			close(answered)
		}()
		ev := &webhook.Event{ID: uuid.New()}
		got, err := c.Accept(answeredCtx{ended, answered}, ev)
		if err != nil || got.ID != ev.ID {
			t.Fatalf("try %d: Accept answered %v, %v for an event whose commit answered; want its receipt", i, got.ID, err)
		}
	}
}
