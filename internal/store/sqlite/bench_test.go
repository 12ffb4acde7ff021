package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) webhook.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "hookd.db"), storetest.Keys(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			b.Fatal(err)
		}
		return db
	})
}
