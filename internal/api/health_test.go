package api

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// fullDisk is a store whose intake commits fail for want of disk while
// full is set; its readiness check's empty write gets through, as on a
// disk too full for a commit.
type fullDisk struct {
	webhook.Store
	full atomic.Bool
}

func (f *fullDisk) EventsCreate(ctx context.Context, evs []*webhook.Event, l webhook.Lease) ([]webhook.EventReceipt, error) {
	if f.full.Load() {
		return nil, webhook.ErrUnwritable
	}
	return f.Store.EventsCreate(ctx, evs, l)
}

// /readyz fails from a write refused for want of disk until 15 s after
// the last one, though its own check's write gets through, so a load
// balancer sends the events elsewhere meanwhile.
func TestReadyzFailsAfterAnUnwritableWrite(t *testing.T) {
	var f *fullDisk
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newAPIHarness(t, func(d *Deps) {
		f = &fullDisk{Store: d.Store}
		d.Store, d.Now = f, func() time.Time { return now }
	})
	ready := func(want int, when string) {
		t.Helper()
		if st := h.do("", "GET", "/readyz", "", nil); st != want {
			t.Errorf("/readyz %s: %d, want %d", when, st, want)
		}
	}
	ready(200, "before any write failed")
	f.full.Store(true)
	org := uuid.New()
	tok, _ := h.token(org)
	if st := h.do(tok, "POST", "/organization/"+org.String()+"/deployment-event", eventBody, nil); st != 503 {
		t.Fatalf("an event on a full disk: %d, want 503", st)
	}
	f.full.Store(false)
	ready(503, "just after a write was refused for want of disk")
	now = now.Add(unwritableFor - time.Microsecond)
	ready(503, "just under 15s after")
	now = now.Add(time.Microsecond)
	ready(200, "15s after")
}
