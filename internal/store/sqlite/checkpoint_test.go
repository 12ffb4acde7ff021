package sqlite

import (
	"github.com/hookd/hookd/internal/store/storetest"

	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// openWithWebhook opens a migrated database in a file of its own, with
// one webhook of every event type, closed when the test ends.
func openWithWebhook(t *testing.T) (*DB, string, *webhook.Webhook) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db, err := Open(ctx, path, storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: uuid.Must(uuid.NewV7()), CreatedAt: at, UpdatedAt: at,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", Enabled: true, Events: webhook.EventTypes}
	if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	return db, path, w
}

// The WAL stays under 64 MB while far more than that is written and then
// deleted, with readers always in the database (the overlap that kept
// the writer from ever starting the WAL over, so it reached 174 MB).
func TestWALBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and deletes about 200 MB")
	}
	const bound = 64 << 20
	ctx := context.Background()
	db, path, w := openWithWebhook(t)
	org, at := w.OrganizationID, w.CreatedAt

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak atomic.Int64
	wg.Go(func() {
		for {
			if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > peak.Load() {
				peak.Store(fi.Size())
			}
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})
	for i := range 3 {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 3 * time.Millisecond) // staggered: one is always reading
			for {
				select {
				case <-stop:
					return
				default:
				}
				tx, err := db.read.BeginTx(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhooks`).Scan(&n); err != nil {
					t.Error(err)
				}
				time.Sleep(8 * time.Millisecond)
				tx.Rollback()
			}
		})
	}

	payload := []byte(`{"x":"` + string(bytes.Repeat([]byte("a"), 16<<10)) + `"}`)
	const rounds, batch = 300, 32 // 300 × 32 × 16 KB: 150 MB of events
	for range rounds {
		evs := make([]*webhook.Event, batch)
		for i := range evs {
			evs[i] = &webhook.Event{OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentStarted,
				ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: payload}
		}
		if _, err := db.EventsCreate(ctx, evs, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	// Everything goes: first the webhook's deliveries, then the events.
	if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID}); err != nil {
		t.Fatal(err)
	}
	// The purger removes the deliveries in the background, and the claims
	// of a running node those they find due first; only then may
	// retention take those events.
	for claims := 0; ; claims++ {
		tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: at.Add(time.Hour), LeaseUntil: at.Add(2 * time.Hour), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) > 0 {
			t.Fatalf("claimed %d deliveries of a deleted webhook", len(tasks))
		}
		var left int
		if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM deliveries`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if claims == rounds*batch/1000+1 {
			t.Fatalf("%d deliveries of the deleted webhook left after %d claims", left, claims)
		}
	}
	if n, err := db.DeleteBefore(ctx, at.Add(time.Second)); err != nil || n != rounds*batch {
		t.Fatalf("retention deleted %d events, want %d: %v", n, rounds*batch, err)
	}
	time.Sleep(3 * checkpointEvery) // the last checkpoints after the deletes
	close(stop)
	wg.Wait()
	t.Logf("the WAL peaked at %.1f MB", float64(peak.Load())/(1<<20))
	if peak.Load() >= bound {
		t.Fatalf("the WAL reached %.1f MB, want under %d MB", float64(peak.Load())/(1<<20), bound>>20)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.checkpoints.done:
	default:
		t.Fatal("the checkpointer still runs after Close")
	}
}

// Under a steady stream of commits, the WAL starts over at the beginning
// of its file once it holds walRestartAt: the file is never emptied by a
// TRUNCATE (which the writer waits for) nor grown again from zero.
func TestWALStartsOverInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("writes at a steady rate for seconds")
	}
	ctx := context.Background()
	db, path, w := openWithWebhook(t)
	org, at := w.OrganizationID, w.CreatedAt

	// The sampler watches the file's size, and the checkpoint sequence
	// number in its header, which SQLite counts up each time the WAL
	// starts over, in place or after a TRUNCATE.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak, shrank, restarts atomic.Int64
	wg.Go(func() {
		var last int64
		var seq uint32
		seen := false
		hdr := make([]byte, 16)
		for {
			if f, err := os.Open(path + "-wal"); err == nil {
				if fi, err := f.Stat(); err == nil {
					if fi.Size() < last {
						shrank.Store(last)
					}
					last = fi.Size()
					peak.Store(max(peak.Load(), last))
				}
				if _, err := f.ReadAt(hdr, 0); err == nil {
					if s := binary.BigEndian.Uint32(hdr[12:]); !seen || s != seq {
						if seen {
							restarts.Add(1)
						}
						seq, seen = s, true
					}
				}
				f.Close()
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})

	// One event a commit, paced about as intake's commits are at a steady
	// 1,000 events/s (the WAL grows by about 1 MB between two
	// checkpoints), until the WAL has started over three times: about
	// 1,000 commits of some 32 KB of WAL each.
	payload := []byte(`{"x":"` + string(bytes.Repeat([]byte("a"), 4<<10)) + `"}`)
	deadline := time.Now().Add(time.Minute)
	for commits := 0; restarts.Load() < 3; commits++ {
		if commits == 10_000 || time.Now().After(deadline) {
			t.Fatalf("the WAL started over %d times in %d commits, want 3", restarts.Load(), commits)
		}
		ev := &webhook.Event{OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: payload}
		if _, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("the WAL file peaked at %.1f MB", float64(peak.Load())/(1<<20))
	if n := shrank.Load(); n > 0 {
		t.Errorf("the WAL file was cut back from %.1f MB: truncated, not started over in place", float64(n)/(1<<20))
	}
	if peak.Load() > walTruncateAt {
		t.Errorf("the WAL file reached %.1f MB, want at most %d MB", float64(peak.Load())/(1<<20), walTruncateAt>>20)
	}
}
