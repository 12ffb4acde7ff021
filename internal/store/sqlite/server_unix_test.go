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
		db, err := Open(ctx, filepath.Join(t.TempDir(), "hookd.db"), storetest.Keys(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		err = db.LockServer(ctx, func(h string) { t.Errorf("waited for %s", h) })
		if !errors.Is(err, ErrNoServerLock) || !errors.Is(err, errno) {
			t.Fatalf("flock failing with %v: %v, want ErrNoServerLock", errno, err)
		}
		if _, err := db.ReleaseLeases(ctx, time.Now()); err == nil {
			t.Fatal("ReleaseLeases ran without the server lock")
		}
	}
}
