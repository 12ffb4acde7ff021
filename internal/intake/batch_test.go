package intake

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// Room for waiting events is workers × batch, and a worker takes what is
// waiting, up to a batch, into one transaction.
func TestBatchSize(t *testing.T) {
	g := &gateStore{entered: make(chan int, 8), release: make(chan struct{}), stored: map[uuid.UUID]bool{}}
	close(g.release) // the database answers at once
	c := New(Config{Store: g, Workers: 2, MaxBatch: 4})
	if cap(c.requests) != 8 {
		t.Fatalf("room for %d waiting events, want workers × batch = 8", cap(c.requests))
	}
	replies := make([]chan result, 8)
	for i := range replies {
		replies[i] = make(chan result, 1)
		c.requests <- request{ctx: context.Background(), event: &webhook.Event{ID: uuid.New()}, reply: replies[i]}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.work(ctx); close(done) }()
	for i, want := range []int{4, 4} {
		select {
		case n := <-g.entered:
			if n != want {
				t.Fatalf("transaction %d carried %d events, want %d", i+1, n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("transaction %d never came", i+1)
		}
	}
	for i, r := range replies {
		if res := <-r; res.err != nil {
			t.Fatalf("event %d: %v", i, res.err)
		}
	}
	cancel()
	<-done
}
