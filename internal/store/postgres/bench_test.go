package postgres

import (
	"testing"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// BenchmarkStore runs on a fresh database per sub-benchmark (skipped
// without HOOKD_TEST_POSTGRES_URL, like the tests).
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) webhook.Store {
		return pgtest.Migrated(b, Open, storetest.Keys(b))
	})
}
