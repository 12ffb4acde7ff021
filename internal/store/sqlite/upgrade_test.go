package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/storetest"
)

// A database written by the schema of the last release (migrations
// 0001–0003, before the content hash, the lease token, the stats indexes
// and sources) migrates in place (see storetest.Upgraded).
func TestUpgradeFromPreviousSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	o := storetest.NewOldRows()
	org, hook, ev, done, queued, us := o.Org, o.Webhook, o.Event, o.Done, o.Queued, o.At.UnixMicro()

	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for v, name := range []string{"0001_init.sql", "0002_secret_rotation.sql", "0003_audit.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := old.Exec(`INSERT INTO schema_migrations VALUES (?, ?)`, v+1, us); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO webhooks VALUES (?, ?, ?, ?, 'STANDARD', 'https://example.com/hook', '', 'old', 1,
			'["DEPLOYMENT_STARTED"]', '[]', '[]', '', NULL, '', NULL)`, []any{org, hook, us, us}},
		{`INSERT INTO events VALUES (?, ?, ?, 'DEPLOYMENT_STARTED', 'deploy-1', 'billing', 'PRODUCTION', CAST('{"id":"d1"}' AS BLOB))`,
			[]any{org, ev, us}},
		{`INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, 'succeeded', ?, 1, 200, '', 'DEPLOYMENT_STARTED')`,
			[]any{org, done, hook, ev, us, us, us}},
		{`INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, 1, 'STANDARD', 'https://example.com/hook', 200, 'ok', 1500, '')`,
			[]any{org, uuid.Must(uuid.NewV7()), done, hook, ev, us}},
		{`INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, 0, 0, '', 'DEPLOYMENT_STARTED')`,
			[]any{org, queued, hook, ev, us, us, us}},
	} {
		if _, err := old.Exec(q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	storetest.Upgraded(t, open(t, path), o) // open migrates to the current schema
}
