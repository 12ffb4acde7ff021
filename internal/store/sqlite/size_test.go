package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/webhook"
)

// sizePayload is the intake body `hookd bench` sends (internal/bench's
// eventBody), so the bytes per event compare with the bench's disk figure.
var sizePayload = []byte(`{"event_type":"DEPLOYMENT_FAILURE","deployment_id":"bench-deploy","current_status":"DEPLOYMENT_ERROR","desired_status":"RUNNING",` +
	`"project":{"id":"8b1f4c52-4d0e-4a53-9b5e-0d6f3f1e2a10","name":"billing-api"},` +
	`"environment":{"id":"5c2d1a4e-7f3b-4c8d-9e0a-1b2c3d4e5f60","name":"prod-eu","mode":"PRODUCTION","cluster_name":"eu-west-3"},` +
	`"applications":[{"id":"0f9e8d7c-6b5a-4948-8372-615243342516","name":"web","commit_id":"4f2a9c1e7b3d","status":"DEPLOYMENT_ERROR"}]}`)

// TestBytesPerEvent writes HOOKD_SIZE_EVENTS events (one webhook, one
// successful attempt each) through the store as the steady scenario does
// (small intake batches, claims and outcomes in batches of
// HOOKD_SIZE_BATCH, 4 unless set) and reports the database's bytes per
// event, in all and per table and index. It only measures: run it with
// HOOKD_SIZE_EVENTS=20000 go test -run BytesPerEvent -v.
func TestBytesPerEvent(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HOOKD_SIZE_EVENTS"))
	if n == 0 {
		t.Skip("set HOOKD_SIZE_EVENTS to measure")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := open(t, path)
	org := uuid.Must(uuid.NewV7())
	at := time.Now().UTC().Truncate(time.Microsecond)
	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, UpdatedAt: at,
		Kind: webhook.KindStandard, TargetURL: "http://127.0.0.1:41234/hook/0", TargetSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		Enabled: true, Events: webhook.EventTypes}
	if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	batch, _ := strconv.Atoi(os.Getenv("HOOKD_SIZE_BATCH"))
	if batch == 0 {
		batch = 4
	}
	deliver(t, db, w, n, batch)
	walBytes := size(path + "-wal") // as the store left it
	// The database file holds every row once the WAL is checkpointed.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	dbBytes := size(path)
	if rows, err := raw.QueryContext(ctx, `SELECT name, sum(pgsize), sum(unused), sum(ncell) FROM dbstat GROUP BY name ORDER BY 2 DESC`); err == nil {
		for rows.Next() {
			var name string
			var pg, unused, cells int64
			rows.Scan(&name, &pg, &unused, &cells)
			t.Logf("%-28s %6.0f B/event, %4.1f%% unused, %d cells", name, float64(pg)/float64(n), 100*float64(unused)/float64(pg), cells)
		}
		rows.Close()
	}
	t.Logf("%d events: %d B, %.0f B/event in the database; the WAL was at %d B",
		n, dbBytes, float64(dbBytes)/float64(n), walBytes)
}

// deliver sends n events to w's organization, batch by batch, each batch
// created, claimed and recorded as succeeded after one attempt.
func deliver(t *testing.T, db *sqlite.DB, w *webhook.Webhook, n, batch int) {
	t.Helper()
	ctx := context.Background()
	for done := 0; done < n; done += batch {
		now := time.Now().UTC().Truncate(time.Microsecond)
		evs := make([]*webhook.Event, batch)
		for i := range evs {
			evs[i] = &webhook.Event{OrganizationID: w.OrganizationID, CreatedAt: now, Type: webhook.EventDeploymentFailure,
				ProjectName: "billing-api", EnvironmentMode: webhook.ModeProduction, Payload: sizePayload}
		}
		if _, err := db.EventsCreate(ctx, evs, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
		tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: batch})
		if err != nil || len(tasks) != batch {
			t.Fatalf("claimed %d: %v", len(tasks), err)
		}
		outcomes := make([]webhook.Outcome, len(tasks))
		for i, tk := range tasks {
			d := &tk.Delivery
			outcomes[i] = webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: d.Lease, Attempt: webhook.Attempt{
				OrganizationID: d.OrganizationID, WebhookID: d.WebhookID, DeliveryID: d.ID, EventID: d.EventID, CreatedAt: now,
				Number: 1, Kind: webhook.KindStandard, TargetURL: w.TargetURL, StatusCode: 200, Duration: 1500 * time.Microsecond}}
		}
		if _, err := db.DeliveryComplete(ctx, outcomes); err != nil {
			t.Fatal(err)
		}
	}
}

func size(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}
