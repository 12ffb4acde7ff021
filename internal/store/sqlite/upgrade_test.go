package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// A database written by the schema of the last release (migrations
// 0001–0003, before the content hash, the lease token, the stats indexes
// and sources) migrates in place: what it held reads back, its queued
// delivery is claimed and recorded under the new lease token, and an
// event stored without a content hash still replays its key.
func TestUpgradeFromPreviousSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	org, hook, ev, done, queued := uuid.New(), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	us := at.UnixMicro()

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

	db := open(t, path) // opens and migrates to the current schema
	w, err := db.WebhookGet(ctx, org, hook)
	if err != nil || w.Description != "old" || w.TargetURL != "https://example.com/hook" || !w.Enabled {
		t.Fatalf("webhook after the upgrade: %+v, %v", w, err)
	}
	attempts, err := db.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: hook, Limit: 10})
	if err != nil || len(attempts) != 1 || attempts[0].StatusCode != 200 || attempts[0].ResponseBody != "ok" {
		t.Fatalf("delivery log after the upgrade: %+v, %v", attempts, err)
	}
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: at.Add(time.Second), LeaseUntil: at.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 1 || tasks[0].Delivery.ID != queued || tasks[0].Delivery.Lease != 1 {
		t.Fatalf("claim after the upgrade: %+v, %v", tasks, err)
	}
	tk := tasks[0]
	stale, err := db.DeliveryComplete(ctx, []webhook.Outcome{{Status: webhook.DeliverySucceeded, Lease: tk.Delivery.Lease,
		Attempt: webhook.Attempt{OrganizationID: org, WebhookID: hook, DeliveryID: queued, EventID: ev,
			CreatedAt: at.Add(2 * time.Second), Number: 1, Kind: webhook.KindStandard, StatusCode: 204}}})
	if err != nil || len(stale) != 0 {
		t.Fatalf("recording the queued delivery: stale %v, %v", stale, err)
	}
	if d, err := db.DeliveryGet(ctx, org, hook, queued); err != nil || d.Status != webhook.DeliverySucceeded {
		t.Fatalf("queued delivery after its outcome: %+v, %v", d, err)
	}
	// The old event holds its key without a content hash: a repeat replays it.
	rs, err := db.EventsCreate(ctx, []*webhook.Event{{OrganizationID: org, CreatedAt: at.Add(time.Minute),
		Type: webhook.EventDeploymentStarted, IdempotencyKey: "deploy-1", ProjectName: "billing",
		EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{"id":"d1"}`)}}, webhook.Lease{})
	if err != nil || len(rs) != 1 || !rs[0].Replayed || rs[0].ID != ev {
		t.Fatalf("repeating the old event's key: %+v, %v", rs, err)
	}
}
