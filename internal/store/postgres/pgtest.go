package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/secrets"
)

// TestURLEnv names the variable holding the URL of a PostgreSQL server
// tests may create databases on.
const TestURLEnv = "HOOKD_TEST_POSTGRES_URL"

// TestURL returns the URL of a fresh, empty database for t, dropped when
// t ends, or skips t when HOOKD_TEST_POSTGRES_URL is unset. It is here,
// not in a _test file, so other packages' end-to-end tests can use it.
func TestURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(TestURLEnv)
	if admin == "" {
		t.Skip("PostgreSQL tests are off; run them with " + TestURLEnv + "=postgres://postgres@127.0.0.1:5432/postgres go test ./...")
	}
	name := "hookd_test_" + randomName()
	execAdmin(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		// FORCE ends the connections a failed test may have left open.
		execAdmin(t, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return withParam(admin, "dbname", name)
}

// TestDB returns an open, migrated store on a fresh database for t (see
// TestURL), sealing secrets with keys, closed when t ends.
func TestDB(t testing.TB, keys *secrets.Keyring) *DB {
	t.Helper()
	ctx := context.Background()
	db, err := Open(ctx, TestURL(t), keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// execAdmin runs one statement on its own connection: CREATE and DROP
// DATABASE cannot run inside a transaction or on a pooled session that
// uses the database.
func execAdmin(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: connect to %s: %v", TestURLEnv, err)
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

// withParam sets a connection parameter in a URL or key=value string.
// dbname in a URL is its path; anything else pgx does not know is sent
// to the server as a run-time setting (search_path, for one).
func withParam(dsn, key, value string) string {
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
