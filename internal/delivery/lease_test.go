package delivery

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hookd/hookd/internal/webhook"
)

// lockedBuffer is a bytes.Buffer the dispatcher's goroutines may log to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A dispatcher whose leases another worker took over (they expired while
// it could not renew them) learns it at its next renewal: it sends none
// of the deliveries still queued, and the outcome of the one in flight is
// dropped, not recorded.
func TestLostLeasesAreNotSent(t *testing.T) {
	block := make(chan struct{})
	var requests atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(target.Close)
	s := newStore(t)
	w := createWebhook(t, s, target.URL)
	var logs lockedBuffer
	// A 2 s timeout: 12 s leases, renewed every 2.5 s.
	d := New(Config{Store: s, Client: target.Client(), Timeout: 2 * time.Second, MaxInflightPerWebhook: 1,
		PollInterval: time.Hour, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	startDispatcher(t, d)
	intake(t, s, d, w, 3)
	for deadline := time.Now().Add(5 * time.Second); requests.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first delivery was not sent")
		}
	}

	// Another worker, whose clock says the leases have expired, takes
	// all three over.
	later := time.Now().Add(time.Hour)
	taken, err := s.DeliveryClaim(context.Background(), webhook.ClaimParams{Now: later, LeaseUntil: later.Add(time.Hour), Limit: 10})
	if err != nil || len(taken) != 3 {
		t.Fatalf("took over %d deliveries (%v), want 3", len(taken), err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "lost the leases"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher did not notice its leases were lost:\n%s", logs.String())
		}
	}
	close(block)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "dropped outcomes"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the outcome of the request in flight was not dropped:\n%s", logs.String())
		}
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests sent, want 1: deliveries whose lease was lost were sent", n)
	}
	for _, tk := range taken {
		got, err := s.DeliveryGet(context.Background(), w.OrganizationID, w.ID, tk.Delivery.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != webhook.DeliveryRunning || got.Lease != tk.Delivery.Lease || got.Attempts != 0 {
			t.Fatalf("delivery after the old holder finished: %s, lease %d, %d attempts; want the new holder's, untouched",
				got.Status, got.Lease, got.Attempts)
		}
	}
}

// A renewal that finds a delivery no longer running because its own
// outcome, waiting for the recorder, committed first lost no lease: it
// neither warns nor forgets the task before the recorder does. The same
// answer for a delivery whose attempt is not done is a lost lease.
func TestRenewalRacingItsOutcomeLosesNothing(t *testing.T) {
	var logs lockedBuffer
	d := New(Config{Store: newStore(t), Timeout: 2 * time.Second, PollInterval: time.Hour,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	tk := &webhook.Task{Delivery: webhook.Delivery{ID: uuid.New(), Lease: 3}}
	refs := []webhook.DeliveryRef{tk.Ref()}
	d.leased[tk.Delivery.ID] = tk
	d.recording[tk.Delivery.ID] = true
	d.renewed(refs, refs, time.Now())
	if strings.Contains(logs.String(), "lost the leases") || d.leased[tk.Delivery.ID] != tk {
		t.Fatalf("a renewal racing the delivery's own outcome was taken for a lost lease:\n%s", logs.String())
	}
	d.forget([]webhook.Outcome{{Attempt: webhook.Attempt{DeliveryID: tk.Delivery.ID}, Lease: 3}})
	if d.recording[tk.Delivery.ID] || d.leased[tk.Delivery.ID] != nil {
		t.Fatal("recording the outcome did not forget the task")
	}

	d.leased[tk.Delivery.ID] = tk // claimed again, its attempt not done
	d.renewed(refs, refs, time.Now())
	if !strings.Contains(logs.String(), "lost the leases") || d.leased[tk.Delivery.ID] != nil {
		t.Fatalf("a lost lease was not noticed:\n%s", logs.String())
	}
}
