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

// A transaction has until the earliest deadline of its requests: past it,
// every request it carries, those without a deadline of their own
// included, is answered ErrUnreachable at once (503 with Retry-After),
// not one by one, and the worker is free for the next batch.
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
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.work(ctx); close(done) }()
	defer func() { stop(); <-done }()
	select {
	case n := <-s.entered:
		if n != 2 {
			t.Fatalf("the transaction carried %d events, want 2", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the transaction never started")
	}
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
