package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// A second server of a file waits for the first: it says who holds the
// lock, gives up when its context ends, and takes the lock once the first
// closes the database that holds it. A path through a symbolic link to
// the file names the same lock.
func TestServerLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "hookd.db")
	lock, err := sqlite.LockServer(ctx, path, func(h string) { t.Errorf("the first server waited for %s", h) })
	if err != nil {
		t.Fatal(err)
	}
	first, err := sqlite.Open(ctx, path, storetest.Keys(t))
	if err != nil {
		lock.Close()
		t.Fatal(err)
	}
	first.HoldServerLock(lock)
	defer first.Close()

	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*200*time.Millisecond)
	defer cancel()
	var told []string
	_, err = sqlite.LockServer(short, link, func(h string) { told = append(told, h) })
	holder := fmt.Sprintf("pid %d on ", os.Getpid())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(fmt.Sprint(err), holder) {
		t.Fatalf("a second server, its context ended while the first serves: %v (told %q), want it to say it waited for %q", err, told, holder)
	}
	if len(told) != 1 || !strings.HasPrefix(told[0], holder) {
		t.Fatalf("a second server was told %q while waiting, want once %q...", told, holder)
	}

	took := make(chan error, 1)
	go func() {
		l, err := sqlite.LockServer(ctx, path, func(string) {})
		l.Close()
		took <- err
	}()
	select {
	case err := <-took:
		t.Fatalf("a second server took the lock while the first serves: %v", err)
	case <-time.After(3 * 200 * time.Millisecond):
	}
	first.Close()
	select {
	case err := <-took:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not taken within 10s of the first server's close")
	}
}

// A server gives back, due at its start, every delivery a server before it
// left leased, with a new lease token; it leaves the finished and the
// waiting as they are. Without the server lock it gives back nothing.
func TestReleaseLeases(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := open(t, path)
	org := uuid.New()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := at.Add(time.Hour)
	newWebhook(t, db, org, at)
	createEvents(t, db, org, at, 4)
	leased, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: at, LeaseUntil: now.Add(time.Hour), Limit: 4})
	if err != nil || len(leased) != 4 {
		t.Fatalf("claimed %d, %v; want 4", len(leased), err)
	}
	retry := outcomeOK(leased[1], at)
	retry.Attempt.StatusCode, retry.Status, retry.NextAttemptAt = 503, webhook.DeliveryPending, now.Add(time.Hour)
	if res, err := db.DeliveryComplete(ctx, []webhook.Outcome{outcomeOK(leased[0], at), retry}); err != nil || len(res.Stale) > 0 {
		t.Fatalf("recording a success and a retry: %+v, %v", res, err)
	}
	claim := func(at time.Time) []uuid.UUID {
		t.Helper()
		tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: at, LeaseUntil: at.Add(time.Minute), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ids []uuid.UUID
		for _, tk := range tasks {
			ids = append(ids, tk.Delivery.ID)
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		return ids
	}

	if n, err := db.ReleaseLeases(ctx, now); err == nil || n != 0 {
		t.Fatalf("without the server lock: released %d, %v; want an error", n, err)
	}
	lock, err := sqlite.LockServer(ctx, path, func(h string) { t.Errorf("waited for %s", h) })
	if err != nil {
		t.Fatal(err)
	}
	db.HoldServerLock(lock)
	n, err := db.ReleaseLeases(ctx, now)
	if err != nil || n != 2 {
		t.Fatalf("released %d, %v; want the 2 still leased", n, err)
	}
	if got := claim(now.Add(-time.Microsecond)); len(got) != 0 {
		t.Fatalf("%d deliveries due before the release's time", len(got))
	}
	want := []uuid.UUID{leased[2].Delivery.ID, leased[3].Delivery.ID}
	slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	if got := claim(now); !slices.Equal(got, want) {
		t.Fatalf("due at the release's time: %v, want the two released %v", got, want)
	}
	res, err := db.DeliveryComplete(ctx, []webhook.Outcome{outcomeOK(leased[2], now)})
	if err != nil || len(res.Stale) != 1 {
		t.Fatalf("an outcome under the lease released: %+v, %v; want it refused as stale", res, err)
	}
}

// outcomeOK is a successful first attempt of tk at at.
func outcomeOK(tk *webhook.Task, at time.Time) webhook.Outcome {
	d := tk.Delivery
	return webhook.Outcome{
		Attempt: webhook.Attempt{ID: uuid.New(), OrganizationID: d.OrganizationID, WebhookID: d.WebhookID, DeliveryID: d.ID,
			EventID: tk.Event.ID, CreatedAt: at, Number: 1, StatusCode: 200, Kind: webhook.KindStandard, TargetURL: "https://example.com"},
		Lease: d.Lease, Status: webhook.DeliverySucceeded,
	}
}

// A database path that is a symbolic link to a file not made yet (a first
// start) names the lock of the file the link leads to, as it will once
// the database has made that file: a server started after it made the
// file waits for it.
func TestServerLockDanglingLink(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "hookd.db")
	if err := os.Symlink(filepath.Join("data", "real.db"), link); err != nil {
		t.Fatal(err)
	}
	lock, err := sqlite.LockServer(ctx, link, func(h string) { t.Errorf("the first server waited for %s", h) })
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	open(t, link) // makes data/real.db
	if _, err := os.Stat(filepath.Join(dir, "data", "real.db")); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 3*200*time.Millisecond)
	defer cancel()
	second, err := sqlite.LockServer(short, link, func(string) {})
	second.Close()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second server of the file a dangling link made: %v, want it to wait for the first", err)
	}
}
