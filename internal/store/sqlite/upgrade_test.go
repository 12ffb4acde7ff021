package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// writeOld creates a database at path with the migrations numbered below
// before, as they were applied then, and returns a handle on it.
func writeOld(t *testing.T, path string, before int) *sql.DB {
	t.Helper()
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries { // in name order, which is version order
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			t.Fatal(err)
		}
		if v >= before {
			continue
		}
		body, err := os.ReadFile(filepath.Join("migrations", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if _, err := old.Exec(`INSERT INTO schema_migrations VALUES (?, 0)`, v); err != nil {
			t.Fatal(err)
		}
	}
	return old
}

// nothingLeft checks that the upgraded webhook's delete, the end of
// storetest.Upgraded, left no delivery and no attempt in the file: the
// store's lists cannot show an attempt whose delivery is gone.
func nothingLeft(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var deliveries, attempts int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM attempts)`).Scan(&deliveries, &attempts); err != nil {
		t.Fatal(err)
	}
	if deliveries+attempts != 0 {
		t.Fatalf("after the only webhook's delete: %d deliveries and %d attempts left", deliveries, attempts)
	}
}

type row struct {
	sql  string
	args []any
}

func insert(t *testing.T, db *sql.DB, rows []row) {
	t.Helper()
	for _, q := range rows {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// A database written by the schema of the release before this one
// (migrations 0001–0003, before the content hash, the lease token, the
// stats indexes and sources) migrates in place (see storetest.Upgraded).
func TestUpgradeFromPreviousSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	o := storetest.NewOldRows()
	org, hook, ev, done, queued, us := o.Org, o.Webhook, o.Event, o.Done, o.Queued, o.At.UnixMicro()
	insert(t, writeOld(t, path, 4), []row{
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
	})
	storetest.Upgraded(t, open(t, path), o) // open migrates to the current schema
	nothingLeft(t, path)
}

// A database written by the schema before the lean queue (migrations
// through 0025: text ids, composite keys, foreign keys) migrates in
// place: every delivery keeps its status, lease token and counts, every
// attempt its delivery, every key its holder and content hash.
func TestUpgradeToLeanQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	o := storetest.NewOldRows()
	o.Leased = true
	org, hook, us := o.Org, o.Webhook, o.At.UnixMicro()
	const started = `'DEPLOYMENT_STARTED'`
	hash := webhook.ContentHash(webhook.EventDeploymentStarted, []byte(storetest.HashedPayload))
	v7 := func() uuid.UUID { return uuid.Must(uuid.NewV7()) }
	const (
		event    = `INSERT INTO events (organization_id, id, created_at, event_type, idempotency_key, project_name, environment_mode, payload, content_hash) VALUES `
		delivery = `INSERT INTO deliveries (organization_id, id, webhook_id, event_id, created_at, updated_at, status, due_at, attempts, last_status_code, last_error, event_type, lease) VALUES `
		attempt  = `INSERT INTO attempts (organization_id, id, delivery_id, webhook_id, event_id, created_at, number, kind, target_url, status_code, response_body, duration_us, error) VALUES `
	)
	insert(t, writeOld(t, path, 30), []row{
		{`INSERT INTO webhooks VALUES (?, ?, ?, ?, 'STANDARD', 'https://example.com/hook', '', 'old', 1,
			'["DEPLOYMENT_STARTED"]', '[]', '[]', '', NULL, '', NULL)`, []any{org, hook, us, us}},
		{event + `(?, ?, ?, ` + started + `, 'deploy-1', 'billing', 'PRODUCTION', CAST('{"id":"d1"}' AS BLOB), NULL)`, []any{org, o.Event, us}},
		{event + `(?, ?, ?, ` + started + `, 'deploy-2', 'billing', 'PRODUCTION', CAST(? AS BLOB), ?)`,
			[]any{org, o.Hashed, us, storetest.HashedPayload, hash}},
		{delivery + `(?, ?, ?, ?, ?, ?, 'succeeded', ?, 1, 200, '', ` + started + `, 1)`, []any{org, o.Done, hook, o.Event, us, us, us}},
		{attempt + `(?, ?, ?, ?, ?, ?, 1, 'STANDARD', 'https://example.com/hook', 200, 'ok', 1500, '')`,
			[]any{org, v7(), o.Done, hook, o.Event, us}},
		{delivery + `(?, ?, ?, ?, ?, ?, 'pending', ?, 0, 0, '', ` + started + `, 0)`, []any{org, o.Queued, hook, o.Event, us, us, us}},
		{delivery + `(?, ?, ?, ?, ?, ?, 'running', ?, 0, 0, '', ` + started + `, 3)`,
			[]any{org, o.Running, hook, o.Event, us, us, o.At.Add(30e9).UnixMicro()}},
		{delivery + `(?, ?, ?, ?, ?, ?, 'failed', ?, 2, 503, 'HTTP 503', ` + started + `, 2)`,
			[]any{org, o.Failed, hook, o.Hashed, us, us, us}},
		{attempt + `(?, ?, ?, ?, ?, ?, 1, 'STANDARD', 'https://example.com/hook', 500, 'boom', 900, 'HTTP 500')`,
			[]any{org, v7(), o.Failed, hook, o.Hashed, us}},
		{attempt + `(?, ?, ?, ?, ?, ?, 2, 'STANDARD', 'https://example.com/hook', 503, '', 700, 'HTTP 503')`,
			[]any{org, v7(), o.Failed, hook, o.Hashed, us}},
	})
	storetest.Upgraded(t, open(t, path), o)
	nothingLeft(t, path)
}

// A database written by the schema before the webhooks' version
// (migrations through 0040) migrates in place, and the writer's cache of
// webhooks (migration 0045) follows its webhooks from the first use on:
// the one stored before the upgrade gets the events, and an edit after
// it reaches the next event.
func TestUpgradeToWebhooksVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	o := storetest.NewOldRows()
	us := o.At.UnixMicro()
	insert(t, writeOld(t, path, 45), []row{
		{`INSERT INTO webhooks VALUES (?, ?, ?, ?, 'STANDARD', 'https://example.com/hook', '', 'old', 1,
			'["DEPLOYMENT_STARTED"]', '[]', '[]', '', NULL, '', NULL)`, []any{o.Org, o.Webhook, us, us}},
	})
	db := open(t, path) // migrates to the current schema
	ctx := t.Context()
	send := func() []*webhook.Task {
		t.Helper()
		rs, err := db.EventsCreate(ctx, []*webhook.Event{{OrganizationID: o.Org, CreatedAt: o.At, Type: webhook.EventDeploymentStarted,
			ProjectName: "billing", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}},
			webhook.Lease{Now: o.At, Until: o.At.Add(time.Minute), Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		return rs[0].Tasks
	}
	if tasks := send(); len(tasks) != 1 || tasks[0].Webhook.ID != o.Webhook || tasks[0].Webhook.TargetURL != "https://example.com/hook" {
		t.Fatalf("an event after the upgrade: %+v, want one task to the old webhook", tasks)
	}
	_, err := db.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: o.Org, ID: o.Webhook,
		Apply: func(cur *webhook.Webhook) (*webhook.AuditEntry, error) {
			cur.TargetURL = "https://example.com/new"
			return nil, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if tasks := send(); len(tasks) != 1 || tasks[0].Webhook.TargetURL != "https://example.com/new" {
		t.Fatalf("an event after an edit: %+v, want one task to the new target", tasks)
	}
}
