package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// open opens the database at path sealing with a fresh key.
func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	return openWith(t, path, storetest.Keys(t))
}

func openWith(t *testing.T, path string, keys *secrets.Keyring) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) webhook.Store {
		return open(t, filepath.Join(t.TempDir(), "hookd.db"))
	})
}

func TestMigrateIdempotent(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "hookd.db"))
	for range 2 {
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestTwoHandles stands in for two processes (server and CLI) sharing
// one file: both migrate at once, and each sees what the other writes.
func TestTwoHandles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	keys := storetest.Keys(t)
	a, err := sqlite.Open(ctx, path, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	errs := make(chan error, 2)
	for _, db := range []*sqlite.DB{a, b} {
		go func() { errs <- db.Migrate(ctx) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}

	org := uuid.Must(uuid.NewV7())
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tok := &webhook.Token{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, Name: "cli", Hash: []byte("h"), CreatedAt: at}
	if err := b.TokenCreate(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	got, err := a.TokenGetByHash(ctx, tok.Hash)
	if err != nil || got.ID != tok.ID {
		t.Fatalf("other handle: %v, %v", got, err)
	}

	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, UpdatedAt: at,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", Enabled: true, Events: webhook.EventTypes}
	if err := a.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	// Interleaved writes from both handles.
	for i := range 20 {
		db := []*sqlite.DB{a, b}[i%2]
		ev := &webhook.Event{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
		if _, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := b.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID})
	if err != nil || len(ds) != 20 {
		t.Fatalf("deliveries: %d, %v", len(ds), err)
	}

	// Each writer keeps the webhooks it opened (both have them now): an
	// edit by one reaches the other's next intake.
	edit := func(db *sqlite.DB, change func(*webhook.Webhook)) {
		t.Helper()
		_, err := db.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
			Apply: func(cur *webhook.Webhook) (*webhook.AuditEntry, error) { change(cur); return nil, nil }})
		if err != nil {
			t.Fatal(err)
		}
	}
	intake := func(db *sqlite.DB) []*webhook.Task {
		t.Helper()
		ev := &webhook.Event{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
		rs, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{Now: at, Until: at.Add(time.Minute), Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		return rs[0].Tasks
	}
	edit(b, func(cur *webhook.Webhook) { cur.TargetURL = "https://example.com/moved" })
	if tasks := intake(a); len(tasks) != 1 || tasks[0].Webhook.TargetURL != "https://example.com/moved" {
		t.Fatalf("after the other handle's edit: %+v, want one task to the new target", tasks)
	}
	edit(a, func(cur *webhook.Webhook) { cur.Enabled = false })
	if tasks := intake(b); len(tasks) != 0 {
		t.Fatalf("after the other handle disabled the webhook: %d tasks, want none", len(tasks))
	}
}

// newWebhook stores an enabled webhook of org for every event type.
func newWebhook(t *testing.T, db *sqlite.DB, org uuid.UUID, at time.Time) *webhook.Webhook {
	t.Helper()
	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, UpdatedAt: at,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", Enabled: true, Events: webhook.EventTypes}
	if err := db.WebhookCreate(context.Background(), w, 0, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

// createEvents stores n events of org, one delivery each per webhook.
func createEvents(t *testing.T, db *sqlite.DB, org uuid.UUID, at time.Time, n int) {
	t.Helper()
	events := make([]*webhook.Event, n)
	for i := range events {
		events[i] = &webhook.Event{OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	}
	if _, err := db.EventsCreate(context.Background(), events, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
}

// A webhook whose history spans several delete batches goes with all of
// it; the other webhooks keep theirs.
func TestWebhookDeleteLongHistory(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "hookd.db"))
	org := uuid.New()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	gone, kept := newWebhook(t, db, org, at), newWebhook(t, db, org, at)
	const n = 2500 // many batches
	createEvents(t, db, org, at, n)
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: at, LeaseUntil: at.Add(time.Minute), Limit: 2 * n})
	if err != nil || len(tasks) != 2*n {
		t.Fatalf("claimed %d of %d: %v", len(tasks), 2*n, err)
	}
	outcomes := make([]webhook.Outcome, len(tasks))
	for i, tk := range tasks {
		outcomes[i] = webhook.Outcome{Status: webhook.DeliverySucceeded, Attempt: webhook.Attempt{OrganizationID: org,
			WebhookID: tk.Webhook.ID, DeliveryID: tk.Delivery.ID, EventID: tk.Event.ID, CreatedAt: at, Number: 1,
			Kind: webhook.KindStandard, StatusCode: 200}, Lease: tk.Delivery.Lease}
	}
	if _, err := db.DeliveryComplete(ctx, outcomes); err != nil {
		t.Fatal(err)
	}

	if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: gone.ID}); err != nil {
		t.Fatal(err)
	}
	count := func(w *webhook.Webhook) (deliveries, attempts int) {
		t.Helper()
		ds, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID})
		if err != nil {
			t.Fatal(err)
		}
		as, err := db.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID})
		if err != nil {
			t.Fatal(err)
		}
		return len(ds), len(as)
	}
	// Its history goes in the background (see purge.go): soon, though the
	// race detector slows each batch, and so shrinks them, many times.
	// Asked for one row of each, not counted: counting thousands every
	// 10 ms would slow the purge it waits for.
	storetest.Eventually(t, time.Minute, func() string {
		ds, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: gone.ID, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		as, err := db.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: gone.ID, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds)+len(as) != 0 {
			return "the deleted webhook keeps deliveries or attempts"
		}
		return ""
	})
	if d, a := count(gone); d != 0 || a != 0 {
		t.Fatalf("the deleted webhook keeps %d deliveries and %d attempts", d, a)
	}
	if d, a := count(kept); d != n || a != n {
		t.Fatalf("the other webhook has %d deliveries and %d attempts, want %d each", d, a, n)
	}
	if _, err := db.WebhookGet(ctx, org, gone.ID); webhook.ErrorCode(err) != webhook.ENotFound {
		t.Fatalf("WebhookGet after the delete: %v", err)
	}
	if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: gone.ID}); webhook.ErrorCode(err) != webhook.ENotFound {
		t.Fatalf("deleting it again: %v, want not found", err)
	}
}

// A delete that fails (here: its audit entry cannot be stored) keeps
// the webhook's queue: its pending deliveries are still there to be sent.
func TestWebhookDeleteFailedKeepsQueue(t *testing.T) {
	storetest.WebhookDeleteFailedKeepsQueue(t, open(t, filepath.Join(t.TempDir(), "hookd.db")))
}

// A webhook delete leaves deliveries without a webhook until the purger
// reaches them (or, after a crash, until it runs again): the claim that
// finds them due meanwhile deletes them, with their attempts, and sends
// none.
func TestClaimDeletesDeliveriesOfDeletedWebhook(t *testing.T) {
	ctx := context.Background()
	h := newHalfDeleted(t, 3)
	// One of gone's deliveries has an attempt and is pending again.
	tasks, err := h.db.DeliveryClaim(ctx, webhook.ClaimParams{Now: h.at, LeaseUntil: h.at.Add(time.Minute), Limit: 1,
		ExcludeWebhooks: []uuid.UUID{h.kept.ID}})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("claimed %d: %v", len(tasks), err)
	}
	tk := tasks[0]
	if _, err := h.db.DeliveryComplete(ctx, []webhook.Outcome{{Status: webhook.DeliveryPending, NextAttemptAt: h.at, Lease: tk.Delivery.Lease,
		Attempt: webhook.Attempt{OrganizationID: h.org, WebhookID: h.gone.ID, DeliveryID: tk.Delivery.ID, EventID: tk.Event.ID,
			CreatedAt: h.at, Number: 1, Kind: webhook.KindStandard, StatusCode: 500}}}); err != nil {
		t.Fatal(err)
	}

	h.deleteRow(t)
	tasks, err = h.db.DeliveryClaim(ctx, webhook.ClaimParams{Now: h.at.Add(time.Second), LeaseUntil: h.at.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 3 {
		t.Fatalf("claimed %d deliveries, want the other webhook's 3: %v", len(tasks), err)
	}
	for _, tk := range tasks {
		if tk.Webhook.ID != h.kept.ID {
			t.Fatalf("claimed a delivery of the deleted webhook: %+v", tk.Delivery)
		}
	}
	var deliveries, attempts int
	if err := h.raw.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM attempts)`).
		Scan(&deliveries, &attempts); err != nil {
		t.Fatal(err)
	}
	if deliveries != 3 || attempts != 0 {
		t.Fatalf("%d deliveries and %d attempts left, want the other webhook's 3 and none", deliveries, attempts)
	}
}

// A claim that leaves a delivery out (here: its event is gone, which
// retention never lets happen) still deletes exactly the deliveries of
// the deleted webhook it claimed: the rows it deletes are matched to the
// tasks it kept, not to the deliveries it chose.
func TestClaimDeletesDeliveriesOfDeletedWebhookAfterOneLeftOut(t *testing.T) {
	ctx := context.Background()
	h := newHalfDeleted(t, 3)
	// The event of the delivery claimed first goes, leaving the tasks a
	// gap at their front.
	if _, err := h.raw.Exec(`DELETE FROM events WHERE seq = (SELECT event_seq FROM deliveries ORDER BY due_at, seq LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	h.deleteRow(t)
	tasks, err := h.db.DeliveryClaim(ctx, webhook.ClaimParams{Now: h.at.Add(time.Second), LeaseUntil: h.at.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 2 {
		t.Fatalf("claimed %d deliveries, want the kept webhook's 2 whose events are there: %v", len(tasks), err)
	}
	for _, tk := range tasks {
		if tk.Webhook.ID != h.kept.ID {
			t.Fatalf("claimed a delivery of the deleted webhook: %+v", tk.Delivery)
		}
	}
	count := func(w *webhook.Webhook, withEvent bool) (n int) {
		t.Helper()
		exists := "EXISTS"
		if !withEvent {
			exists = "NOT EXISTS"
		}
		if err := h.raw.QueryRow(`SELECT count(*) FROM deliveries d WHERE d.webhook_id = ? AND `+exists+
			` (SELECT 1 FROM events e WHERE e.seq = d.event_seq)`, w.ID[:]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(h.gone, true); n != 0 {
		t.Errorf("%d deliveries of the deleted webhook whose events are there left, want none", n)
	}
	if n := count(h.kept, true); n != 2 {
		t.Errorf("the kept webhook has %d deliveries whose events are there, want 2", n)
	}
	if n := count(h.gone, false) + count(h.kept, false); n != 2 {
		t.Errorf("%d deliveries of the gone event left, want its 2, as the claim left them out", n)
	}
}

// Between the delete of a webhook's row and the purge of its deliveries
// (see WebhookDelete), an attempt under way may finish: its outcome is
// recorded (the rows go with the purge) but disables nothing, and the
// other outcomes of the batch, and their webhooks' health, go with it.
func TestCompleteBetweenWebhookAndPurge(t *testing.T) {
	ctx := context.Background()
	h := newHalfDeleted(t, 1)
	tasks, err := h.db.DeliveryClaim(ctx, webhook.ClaimParams{Now: h.at, LeaseUntil: h.at.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 2 {
		t.Fatalf("claimed %d: %v", len(tasks), err)
	}
	h.deleteRow(t)
	var outcomes []webhook.Outcome
	for _, tk := range tasks {
		// Both fail, and would disable their webhook.
		outcomes = append(outcomes, webhook.Outcome{Status: webhook.DeliveryFailed, Lease: tk.Delivery.Lease,
			DisableReason: "the target answered 410 Gone", WebhookUpdatedAt: tk.Webhook.UpdatedAt,
			Attempt: webhook.Attempt{OrganizationID: h.org, WebhookID: tk.Webhook.ID, DeliveryID: tk.Delivery.ID, EventID: tk.Event.ID,
				CreatedAt: h.at, Number: 1, Kind: webhook.KindStandard, StatusCode: 410}})
	}
	res, err := h.db.DeliveryComplete(ctx, outcomes)
	if err != nil || len(res.Stale) != 0 {
		t.Fatalf("DeliveryComplete = %d stale, %v; want both recorded", len(res.Stale), err)
	}
	w, err := h.db.WebhookGet(ctx, h.org, h.kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	if w.Enabled || w.DisabledReason != "the target answered 410 Gone" || !w.FailingSince.Equal(h.at) {
		t.Fatalf("the other webhook after its outcome: enabled %v, reason %q, failing since %v", w.Enabled, w.DisabledReason, w.FailingSince)
	}
	var webhooks int
	if err := h.raw.QueryRowContext(ctx, `SELECT count(*) FROM webhooks`).Scan(&webhooks); err != nil || webhooks != 1 {
		t.Fatalf("%d webhooks, %v; want the other one only", webhooks, err)
	}
	entries, err := h.db.AuditList(ctx, webhook.AuditListParams{OrganizationID: h.org, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var disabled []uuid.UUID
	for _, e := range entries {
		if e.Action == webhook.AuditWebhookDisabled {
			disabled = append(disabled, e.ResourceID)
		}
	}
	if len(disabled) != 1 || disabled[0] != h.kept.ID {
		t.Fatalf("webhooks audited as disabled: %v, want the other one only (%v)", disabled, h.kept.ID)
	}
}

// halfDeleted is a store with two webhooks of one organization and
// events for both, and a second handle on its file, raw, to delete the
// gone webhook's row alone, as WebhookDelete does before the purger
// removes its deliveries. Nothing wakes the purger: only the next Open
// would find them.
type halfDeleted struct {
	db         *sqlite.DB
	path       string
	raw        *sql.DB
	org        uuid.UUID
	at         time.Time // when the webhooks and events were made
	gone, kept *webhook.Webhook
}

func newHalfDeleted(t *testing.T, events int) *halfDeleted {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hookd.db")
	h := &halfDeleted{db: open(t, path), path: path, org: uuid.New(), at: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	h.gone, h.kept = newWebhook(t, h.db, h.org, h.at), newWebhook(t, h.db, h.org, h.at)
	createEvents(t, h.db, h.org, h.at, events)
	sqlite.AwaitFirstPurge(h.db)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	h.raw = raw
	return h
}

// deleteRow deletes the gone webhook's row, and nothing else.
func (h *halfDeleted) deleteRow(t *testing.T) {
	t.Helper()
	if _, err := h.raw.Exec(`DELETE FROM webhooks WHERE id = ?`, h.gone.ID); err != nil {
		t.Fatal(err)
	}
}

// A database file that is not hookd's (here another program's, with a
// webhooks table of its own) fails the first migration with an error
// that names it, and is left as it was: no migration recorded as
// applied, the other program's table and row untouched.
func TestMigrateLeavesAForeignDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "other.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TABLE webhooks (name TEXT); INSERT INTO webhooks VALUES ('theirs')`); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, path, storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "0001_init") || !strings.Contains(err.Error(), "webhooks already exists") {
		t.Fatalf("Migrate = %v, want the first migration's error, naming it and the table in the way", err)
	}
	var applied int
	if err := raw.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil || applied != 0 {
		t.Fatalf("%d migrations recorded as applied (%v), want none", applied, err)
	}
	var name string
	if err := raw.QueryRow(`SELECT name FROM webhooks`).Scan(&name); err != nil || name != "theirs" {
		t.Fatalf("the other program's row: %q, %v", name, err)
	}
}

// Retention walks events in the order they were stored, up to the first
// young one (migration 0035 dropped the index on created_at): an old
// event stored after a young one (the clock stepped back) stays until
// that one is old too, and no young event goes early. An event stamped
// ahead of now (the clock ran ahead) does not hold back those after it.
func TestDeleteBeforeStopsAtFirstYoungEvent(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "hookd.db"))
	org := uuid.New()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	newWebhook(t, db, org, now.Add(-72*time.Hour)) // deliveries, none finished: retention must wait for them
	createEvents(t, db, org, now.Add(-48*time.Hour), 2)
	if n, err := db.DeleteBefore(ctx, now.Add(-24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("DeleteBefore with every old event's delivery unfinished = %d, %v; want 0", n, err)
	}
	other := uuid.New()                                             // no webhook: its events have no deliveries
	createEvents(t, db, other, now.Add(-48*time.Hour), 250)         // more than a batch
	createEvents(t, db, other, time.Now().Add(365*24*time.Hour), 1) // stamped a year ahead
	createEvents(t, db, other, now.Add(-48*time.Hour), 10)
	createEvents(t, db, other, now, 1)
	createEvents(t, db, other, now.Add(-47*time.Hour), 1)
	n, err := db.DeleteBefore(ctx, now.Add(-24*time.Hour))
	if err != nil || n != 260 {
		t.Fatalf("DeleteBefore = %d, %v; want the 260 old events stored before the young one", n, err)
	}
	n, err = db.DeleteBefore(ctx, now.Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("DeleteBefore once the young event is old = %d, %v; want it and the old event stored after it", n, err)
	}
}

// A delete that stopped after the webhook row went (a crash, or a stop
// before the purger's batches) leaves its deliveries and attempts behind:
// the next time the database is opened and migrated, the purger finds
// them and removes them, and nothing of the other webhook.
func TestPurgerResumesAfterReopen(t *testing.T) {
	ctx := context.Background()
	h := newHalfDeleted(t, 5)
	tasks, err := h.db.DeliveryClaim(ctx, webhook.ClaimParams{Now: h.at, LeaseUntil: h.at.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 10 {
		t.Fatalf("claimed %d: %v", len(tasks), err)
	}
	outcomes := make([]webhook.Outcome, len(tasks))
	for i, tk := range tasks {
		outcomes[i] = webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: tk.Delivery.Lease,
			Attempt: webhook.Attempt{OrganizationID: h.org, WebhookID: tk.Webhook.ID, DeliveryID: tk.Delivery.ID, EventID: tk.Event.ID,
				CreatedAt: h.at, Number: 1, Kind: webhook.KindStandard, StatusCode: 200}}
	}
	if _, err := h.db.DeliveryComplete(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	h.deleteRow(t)
	count := func() (deliveries, attempts int) {
		t.Helper()
		if err := h.raw.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM attempts)`).
			Scan(&deliveries, &attempts); err != nil {
			t.Fatal(err)
		}
		return deliveries, attempts
	}
	if d, a := count(); d != 10 || a != 10 {
		t.Fatalf("before reopening: %d deliveries and %d attempts, want 10 and 10 (nothing woke the purger)", d, a)
	}
	if err := h.db.Close(); err != nil {
		t.Fatal(err)
	}
	db := open(t, h.path)
	storetest.Eventually(t, 10*time.Second, func() string {
		if d, a := count(); d != 5 || a != 5 {
			return fmt.Sprintf("after reopening: %d deliveries and %d attempts, want the other webhook's 5 and 5", d, a)
		}
		return ""
	})
	ds, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: h.org, WebhookID: h.kept.ID})
	if err != nil || len(ds) != 5 {
		t.Fatalf("the other webhook has %d deliveries (%v), want 5", len(ds), err)
	}
}
