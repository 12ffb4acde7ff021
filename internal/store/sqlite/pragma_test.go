package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hookd/hookd/internal/store/storetest"
)

// TestPragmas checks the DSN really configured every connection: the
// durability and integrity settings fail silently when a DSN is wrong.
func TestPragmas(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "hookd.db"), storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	check := func(pool *sql.DB, pragma, want string) {
		t.Helper()
		var got string
		if err := pool.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s = %s, want %s", pragma, got, want)
		}
	}
	for _, pool := range []*sql.DB{db.write, db.read} {
		check(pool, "journal_mode", "wal")
		check(pool, "foreign_keys", "1")
		check(pool, "synchronous", "2")
		check(pool, "busy_timeout", "10000")
	}
	check(db.write, "query_only", "0")
	// The checkpointer checkpoints; the writer never does (checkpoint.go).
	check(db.write, "wal_autocheckpoint", "0")
	check(db.write, "journal_size_limit", strconv.Itoa(journalSizeLimit))
	check(db.read, "query_only", "1")
	if _, err := db.read.ExecContext(ctx, "CREATE TABLE x (y)"); err == nil {
		t.Fatal("the read pool accepted a write")
	}
}
