package postgres

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
)

// A database written by the schema of the last release (migrations
// 0001–0003, before the content hash, the lease token, the stats indexes,
// sources and the lean log of 0030) migrates in place (see
// storetest.UpgradedLog and storetest.Upgraded).
func TestUpgradeFromPreviousSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	o := storetest.NewOldRows()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for v, name := range []string{"0001_init.sql", "0002_secret_rotation.sql", "0003_audit.sql"} {
		body, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(body)); err != nil { // no arguments: several statements at once
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations VALUES ($1, now())`, v+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO webhooks (organization_id, id, created_at, updated_at, kind, target_url, description, enabled,
			events, project_names_filter, environment_types_filter)
			VALUES ($1, $2, $3, $3, 'STANDARD', 'https://example.com/hook', 'old', true, '{DEPLOYMENT_STARTED}', '{}', '{}')`,
			[]any{o.Org, o.Webhook, o.At}},
		{`INSERT INTO events (organization_id, id, created_at, event_type, idempotency_key, project_name, environment_mode, payload)
			VALUES ($1, $2, $3, 'DEPLOYMENT_STARTED', 'deploy-1', 'billing', 'PRODUCTION', '{"id":"d1"}')`,
			[]any{o.Org, o.Event, o.At}},
		{`INSERT INTO deliveries (organization_id, id, webhook_id, event_id, created_at, updated_at, status, due_at,
			attempts, last_status_code, event_type)
			VALUES ($1, $2, $3, $4, $5, $5, 'succeeded', $5, 1, 200, 'DEPLOYMENT_STARTED')`,
			[]any{o.Org, o.Done, o.Webhook, o.Event, o.At}},
		{`INSERT INTO attempts (organization_id, id, delivery_id, webhook_id, event_id, created_at, number, kind,
			target_url, status_code, response_body, duration_us, error)
			VALUES ($1, gen_random_uuid(), $2, $3, $4, $5, 1, 'STANDARD', 'https://example.com/hook', 200, 'ok', 1500, '')`,
			[]any{o.Org, o.Done, o.Webhook, o.Event, o.At}},
		{`INSERT INTO deliveries (organization_id, id, webhook_id, event_id, created_at, updated_at, status, due_at, event_type)
			VALUES ($1, $2, $3, $4, $5, $5, 'pending', $5, 'DEPLOYMENT_STARTED')`,
			[]any{o.Org, o.Queued, o.Webhook, o.Event, o.At}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}

	db, err := Open(ctx, url, storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db.UseCallerClock() // the rows' times are the fixture's, not now()
	storetest.UpgradedLog(t, db, o)
	storetest.Upgraded(t, db, o)
	// The store's lists cannot show an attempt whose delivery is gone.
	var deliveries, attempts int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM attempts)`).Scan(&deliveries, &attempts); err != nil {
		t.Fatal(err)
	}
	if deliveries+attempts != 0 {
		t.Fatalf("after the only webhook's delete: %d deliveries and %d attempts left", deliveries, attempts)
	}
}
