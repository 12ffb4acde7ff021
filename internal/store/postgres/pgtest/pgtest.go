// Package pgtest gives tests a fresh PostgreSQL database or schema on the
// server named by HOOKD_TEST_POSTGRES_URL, and skips them without it.
// Only tests import it: it links the testing package, which the hookd
// binary must not carry. It does not import the postgres backend, so that
// backend's own tests can use it too; callers open and migrate the store.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// URLEnv names the variable holding the URL of a PostgreSQL server
// tests may create databases on.
const URLEnv = "HOOKD_TEST_POSTGRES_URL"

// URL returns the URL of a fresh, empty database for t, dropped when t
// ends, or skips t when HOOKD_TEST_POSTGRES_URL is unset.
func URL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(URLEnv)
	if admin == "" {
		t.Skip("PostgreSQL tests are off; run them with " + URLEnv + "=postgres://postgres@127.0.0.1:5432/postgres go test ./...")
	}
	name := "hookd_test_" + randomName()
	Exec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		// FORCE ends the connections a failed test may have left open.
		Exec(t, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return WithParam(admin, "dbname", name)
}

// Store is what Migrated needs of a store: the postgres backend's *DB.
type Store interface {
	Migrate(ctx context.Context) error
	Close() error
}

// Migrated opens a store with open(ctx, url, keys) on a fresh database
// (see URL), migrates it, and closes it when t ends:
// pgtest.Migrated(t, postgres.Open, keys).
func Migrated[S Store, K any](t testing.TB, open func(context.Context, string, K) (S, error), keys K) S {
	t.Helper()
	return MigratedAt(t, URL(t), open, keys)
}

// MigratedAt is Migrated on the database at url, for a test that also
// connects to it by itself (LockTables, say).
func MigratedAt[S Store, K any](t testing.TB, url string, open func(context.Context, string, K) (S, error), keys K) S {
	t.Helper()
	ctx := context.Background()
	s, err := open(ctx, url, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// Schema creates a fresh schema in the database at dsn and returns dsn
// with it as the search path: much cheaper than a database, and an empty
// store all the same. It goes with the database.
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	schema := "s_" + randomName()
	Exec(t, dsn, "CREATE SCHEMA "+schema)
	return WithParam(dsn, "search_path", schema)
}

// Exec runs one statement on its own connection: CREATE and DROP
// DATABASE cannot run inside a transaction or on a pooled session that
// uses the database.
func Exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: connect to %s: %v", URLEnv, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("postgres: %s: %v", sql, err)
	}
}

func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WithParam sets a connection parameter in a URL or key=value string.
// dbname in a URL is its path; anything else pgx does not know is sent
// to the server as a run-time setting (search_path, for one).
func WithParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			if key == "dbname" {
				u.Path = "/" + value
			} else {
				q := u.Query()
				q.Set(key, value)
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
	}
	return dsn + " " + key + "=" + value
}

// LockTables locks tables of the database at dsn in a transaction on a
// connection of its own: every statement that reads or writes them
// waits, as on a database that stopped answering, or as a statement
// caught between two of a store's round trips. unlock lets them go; it
// may be called more than once, from any goroutine, and is called when
// t ends.
func LockTables(t testing.TB, dsn string, tables ...string) (unlock func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(tables, ", ")+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if err := tx.Rollback(ctx); err != nil {
				t.Error(err)
			}
			conn.Close(ctx)
		})
	}
	t.Cleanup(unlock)
	return unlock
}
