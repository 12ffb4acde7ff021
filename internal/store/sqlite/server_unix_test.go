//go:build unix

package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hookd/hookd/internal/store/storetest"
)

// On a file system without locks LockServer says so, for the server to
// run as it did before the lock, and ReleaseLeases, which only a holder of
// the lock may run, refuses.
func TestNoServerLock(t *testing.T) {
	for _, errno := range []error{unix.ENOLCK, unix.EOPNOTSUPP} {
		flock = func(int, int) error { return errno }
		t.Cleanup(func() { flock = unix.Flock })
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "hookd.db")
		lock, err := LockServer(ctx, path, func(h string) { t.Errorf("waited for %s", h) })
		if lock != nil || !errors.Is(err, ErrNoServerLock) || !errors.Is(err, errno) {
			t.Fatalf("flock failing with %v: %v, want ErrNoServerLock", errno, err)
		}
		db, err := Open(ctx, path, storetest.Keys(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ReleaseLeases(ctx, time.Now()); err == nil {
			t.Fatal("ReleaseLeases ran without the server lock")
		}
	}
}
