package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// openSchema returns a migrated DB on a fresh schema of the database at
// url: a schema is much cheaper than a database, and gives each subtest
// an empty store.
func openSchema(t *testing.T, url string) *DB {
	t.Helper()
	return openIn(t, pgtest.Schema(t, url), storetest.Keys(t))
}

// openIn opens the database at dsn, migrated, sealing with keys.
func openIn(t *testing.T, dsn string, keys *secrets.Keyring) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.UseCallerClock()
	return db
}

func TestStore(t *testing.T) {
	url := pgtest.URL(t)
	storetest.Run(t, func(t *testing.T) webhook.Store { return openSchema(t, url) })
}

func TestMigrateConcurrentAndTwice(t *testing.T) {
	url := pgtest.WithParam(pgtest.URL(t), "search_path", "public")
	const nodes = 4
	dbs := make([]*DB, nodes)
	keys := storetest.Keys(t)
	for i := range dbs {
		db, err := Open(context.Background(), url, keys)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(context.Background()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	if err := dbs[0].Migrate(context.Background()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := dbs[0].pool.QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
}

func TestTranslate(t *testing.T) {
	tests := []struct {
		err  error
		code string
	}{
		{nil, ""},
		{pgx.ErrNoRows, webhook.ENotFound},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "23505"}), webhook.EConflict},
		{&pgconn.PgError{Code: "22P02"}, webhook.EInvalid},
		{&pgconn.PgError{Code: "40P01"}, webhook.EUnavailable},
		{&pgconn.PgError{Code: "XX000"}, webhook.EInternal},
		{webhook.Errorf(webhook.EForbidden, "no"), webhook.EForbidden},
		{context.Canceled, webhook.EInternal},
	}
	for _, tt := range tests {
		if got := webhook.ErrorCode(translate(tt.err)); got != tt.code {
			t.Errorf("translate(%v) code = %q, want %q", tt.err, got, tt.code)
		}
	}
	if err := translate(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("translate lost context.Canceled: %v", err)
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newHook(org uuid.UUID) *webhook.Webhook {
	return &webhook.Webhook{
		ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: t0, UpdatedAt: t0,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", Enabled: true,
		Events: webhook.EventTypes,
	}
}

// openPipe gives a pipe on a connection of db's pool, its transaction
// rolled back at the end of the test unless committed.
func openPipe(t *testing.T, db *DB) *pipe {
	t.Helper()
	conn, err := db.pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := &pipe{conn: conn}
	// Before the pool closes, or closing it waits for this connection.
	t.Cleanup(func() { p.end(context.Background()) })
	return p
}

func newEv(org uuid.UUID, key string) *webhook.Event {
	return &webhook.Event{
		ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: t0, IdempotencyKey: key,
		Type: webhook.EventDeploymentStarted, ProjectName: "p", EnvironmentMode: webhook.ModeProduction,
		Payload: json.RawMessage(` {"a":1} `),
	}
}

// Two intakes with the same key racing in separate transactions store
// one event; the loser answers with the winner's receipt.
func TestEventsCreateKeyRace(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	if err := db.WebhookCreate(ctx, newHook(org), 0, nil); err != nil {
		t.Fatal(err)
	}

	// Hold the first intake's transaction open so the second must meet
	// its uncommitted row in the unique index.
	tx := openPipe(t, db)
	// A keyed intake leaves its transaction open for its caller to commit.
	first := newEv(org, "race")
	if _, err := eventsCreate(ctx, tx, []*webhook.Event{first}, webhook.Lease{}, true, webhookScan(db.keys, false)); err != nil {
		t.Fatal(err)
	}
	type result struct {
		rs  []webhook.EventReceipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		rs, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, "race")}, webhook.Lease{})
		done <- result{rs, err}
	}()
	// Commit only once the second intake is waiting on our row, which
	// pg_locks shows as an ungranted lock on our transaction id.
	var xid string
	if err := tx.conn.QueryRow(ctx, `SELECT txid_current()::text`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, db, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'transactionid' AND transactionid::text = $1 AND NOT granted)`, xid)
	if err := tx.commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.rs[0]; !got.Replayed || got.ID != first.ID || got.Deliveries != 1 {
		t.Fatalf("second receipt = %+v, want a replay of %v with 1 delivery", got, first.ID)
	}
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
}

// An event racing the delete of a webhook it matches is stored without a
// delivery to it, never refused: the delete's last transaction holds the
// organization's intakeLock, so intake waits for it to commit before it
// reads the webhooks, and the webhook no longer matches.
func TestEventsCreateRacingDelete(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	gone, kept := newHook(org), newHook(org)
	storeHooks(t, db, gone, kept)
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2::uuid::text) & 63)`, intakeLock, org); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, gone.ID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		rs  []webhook.EventReceipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		rs, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{})
		done <- result{rs, err}
	}()
	waitFor(t, db, intakeLockAwaited, intakeLock, org)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("intake racing a delete failed: %v (%s)", r.err, webhook.ErrorCode(r.err))
	}
	if got := r.rs[0]; got.Replayed || got.Deliveries != 1 {
		t.Fatalf("receipt = %+v, want the event stored with 1 delivery (to the webhook kept)", got)
	}
}

// TestEventsCreateRacingDeletes sends events while the webhooks they
// match are deleted, many times over: none may fail, and no delivery to
// a deleted webhook may be left.
func TestEventsCreateRacingDeletes(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	const rounds = 40
	for i := range rounds {
		w := newHook(org)
		storeHooks(t, db, w)
		errs := make(chan error, 5)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{})
				errs <- err
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID})
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v (%s)", i, err, webhook.ErrorCode(err))
			}
		}
		// The purger removes what the intakes committed before the
		// delete, and nothing is committed after it.
		waitPurged(t, db)
		var left int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE webhook_id = $1`, w.ID).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			t.Fatalf("round %d: %d deliveries to the deleted webhook left", i, left)
		}
	}
}

// intakeLockAwaited is true while a session of this database waits for
// the intakeLock of an organization ($1 intakeLock, $2 the organization).
// The tests write the lock's key themselves, as a node of an earlier
// version would have taken it: nodes of two versions, side by side
// during an upgrade, must lock alike.
const intakeLockAwaited = `SELECT EXISTS (SELECT 1 FROM pg_locks
	WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
	  AND classid = $1 AND objid::bigint = (hashtext($2::uuid::text) & 63) AND objsubid = 2 AND NOT granted)`

// waitFor polls query (a boolean) until it is true: a lock wait sends no
// signal, and each round trip paces the loop.
func waitFor(t *testing.T, db *DB, query string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var ok bool
		if err := db.pool.QueryRow(context.Background(), query, args...).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", query)
}

// A webhook deleted while its delivery is in flight: the attempt is
// dropped, and the rest of the batch still commits.
func TestDeliveryCompleteSkipsDeleted(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	gone, kept := newHook(org), newHook(org)
	tasks := claimedEvent(t, db, gone, kept)
	if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: gone.ID}); err != nil {
		t.Fatal(err)
	}
	var outs []webhook.Outcome
	for _, tk := range tasks {
		d := tk.Delivery
		outs = append(outs, webhook.Outcome{Status: webhook.DeliveryFailed, Lease: d.Lease, Attempt: webhook.Attempt{
			ID: uuid.Must(uuid.NewV7()), OrganizationID: org, WebhookID: d.WebhookID, DeliveryID: d.ID, EventID: d.EventID,
			CreatedAt: t0, Number: 1, Kind: webhook.KindStandard, TargetURL: "https://example.com",
			StatusCode: 500, ResponseBody: "bad\x00bytes\xff",
		}})
	}
	if _, err := db.DeliveryComplete(ctx, outs); err != nil {
		t.Fatal(err)
	}
	as, err := db.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: kept.ID, Limit: 10})
	if err != nil || len(as) != 1 {
		t.Fatalf("attempts of the kept webhook = %d, %v", len(as), err)
	}
	if as[0].ResponseBody != "bad\uFFFDbytes\uFFFD" {
		t.Fatalf("response body = %q", as[0].ResponseBody)
	}
	if as[0].Event.Payload == nil || string(as[0].Event.Payload) != ` {"a":1} ` {
		t.Fatalf("payload = %q, want the bytes sent", as[0].Event.Payload)
	}
}

// A claim that fails after its leases were committed (its deadline passes
// while the events it must read are locked) gives them back, due now,
// rather than leaving them for nobody to send until the leases end.
func TestClaimFailedGivesLeasesBack(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.URL(t))
	db := openIn(t, dsn, storetest.Keys(t))
	ctx := context.Background()
	org := uuid.New()
	storeHooks(t, db, newHook(org), newHook(org))
	if _, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	unlock := pgtest.LockTables(t, dsn, "events")

	p := webhook.ClaimParams{Now: t0, LeaseUntil: t0.Add(time.Hour), Limit: 10}
	claimCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if tasks, err := db.DeliveryClaim(claimCtx, p); err == nil {
		t.Fatalf("the claim that could not read its events = %d tasks; want an error", len(tasks))
	}
	unlock()
	tasks, err := db.DeliveryClaim(ctx, p)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("the next claim = %d tasks, %v; want the 2 deliveries the failed claim leased, given back", len(tasks), err)
	}
}

// storeHooks stores webhooks, failing the test if any is refused.
func storeHooks(t *testing.T, db *DB, hooks ...*webhook.Webhook) {
	t.Helper()
	for _, w := range hooks {
		if err := db.WebhookCreate(context.Background(), w, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// storeEvents stores batches intakes of size events of org each.
func storeEvents(t *testing.T, db *DB, org uuid.UUID, batches, size int) {
	t.Helper()
	for range batches {
		evs := make([]*webhook.Event, size)
		for i := range evs {
			evs[i] = newEv(org, "")
		}
		if _, err := db.EventsCreate(context.Background(), evs, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
}

// claimedEvent stores hooks (of one organization) and an event they all
// match, and returns its deliveries, claimed at t0 for a minute.
func claimedEvent(t *testing.T, db *DB, hooks ...*webhook.Webhook) []*webhook.Task {
	t.Helper()
	ctx := context.Background()
	storeHooks(t, db, hooks...)
	if _, err := db.EventsCreate(ctx, []*webhook.Event{newEv(hooks[0].OrganizationID, "")}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: t0, LeaseUntil: t0.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != len(hooks) {
		t.Fatalf("claim = %d tasks, %v; want %d", len(tasks), err, len(hooks))
	}
	return tasks
}

// Another node's intake wakes a listening node when it queues deliveries
// for any node to claim, and so does a retry. A webhook deleted on
// another node is forgotten, once its delete committed and not before;
// a payload hookd did not write is ignored. Edits are heard, hookd's
// own disables among them.
func TestListen(t *testing.T) {
	url := pgtest.URL(t)
	keys := storetest.Keys(t) // the nodes of one deployment share their keys
	open := func() *DB {
		db, err := Open(context.Background(), url, keys)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	listener, other := open(), open()
	if err := other.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	woken := make(chan struct{}, 16)
	forgotten := make(chan uuid.UUID, 16)
	type edit struct {
		id uuid.UUID
		at time.Time
	}
	edited := make(chan edit, 16)
	stopped := make(chan error, 1)
	go func() {
		stopped <- listener.Listen(ctx, func() { woken <- struct{}{} }, func(id uuid.UUID) { forgotten <- id },
			func(id uuid.UUID, at time.Time) { edited <- edit{id, at} })
	}()
	org := uuid.New()
	if err := other.WebhookCreate(ctx, newHook(org), 0, nil); err != nil {
		t.Fatal(err)
	}
	// The LISTEN may not be in place yet: keep creating events until one
	// wakes the listener.
	deadline := time.After(10 * time.Second)
	for woke := false; !woke; {
		if _, err := other.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-woken:
			woke = true
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("no wake-up after 10s of intake on another node")
		}
	}

	// A delete whose transaction fails tells nobody, even once it has
	// sent its notification: its audit entry, written last, takes an id
	// already used, and the transaction rolls back. The one that commits
	// does. Notifications arrive in the order of their commits, so the
	// malformed one, sent before, has been ignored when the id comes.
	w := newHook(org)
	created := webhook.WebhookAudit(webhook.Actor{Kind: webhook.ActorCLI, ID: "root"}, time.Now(), nil, w)
	created.ID = uuid.Must(uuid.NewV7())
	if err := other.WebhookCreate(ctx, w, 0, created); err != nil {
		t.Fatal(err)
	}
	refused := webhook.WebhookChange{OrganizationID: org, ID: w.ID, Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) {
		e := webhook.WebhookAudit(webhook.Actor{Kind: webhook.ActorCLI, ID: "root"}, time.Now(), w, nil)
		e.ID = created.ID
		return e, nil
	}}
	if err := other.WebhookDelete(ctx, refused); webhook.ErrorCode(err) != webhook.EConflict {
		t.Fatalf("the delete whose audit entry conflicts: %v, want a conflict", err)
	}
	if _, err := other.Pool().Exec(ctx, `SELECT pg_notify('hookd_forget', 'not an id')`); err != nil {
		t.Fatal(err)
	}
	if err := other.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID}); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-forgotten:
		if id != w.ID {
			t.Fatalf("forgot %v, want the deleted webhook %v", id, w.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delete on another node was not notified within 10s")
	}
	select {
	case id := <-forgotten:
		t.Fatalf("forgot %v after the one delete", id)
	case <-time.After(100 * time.Millisecond):
	}

	// An edit is heard with the version it stored, which the dispatcher
	// compares its tasks' with; one refused (its Apply fails) is not.
	w = newHook(org)
	if err := other.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := other.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID, Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) {
		return nil, webhook.Errorf(webhook.EPrecondition, "refused")
	}}); webhook.ErrorCode(err) != webhook.EPrecondition {
		t.Fatalf("the refused edit: %v", err)
	}
	at := time.Now().UTC().Truncate(time.Microsecond).Add(time.Hour)
	stored, err := other.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID, Apply: func(h *webhook.Webhook) (*webhook.AuditEntry, error) {
		h.UpdatedAt = at
		return nil, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-edited:
		if e.id != w.ID || !e.at.Equal(at) || !e.at.Equal(stored.UpdatedAt) {
			t.Fatalf("heard an edit of %v at %v, want %v at %v (stored %v)", e.id, e.at, w.ID, at, stored.UpdatedAt)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the edit on another node was not notified within 10s")
	}

	// hookd's own disable is heard as an edit, with the version it
	// stored; an outcome whose disable applied nothing (its lease is
	// gone) is not heard. Notifications come in the order of their
	// commits: the first heard after both is the disable's.
	w = newHook(org)
	if err := other.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := other.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tasks, err := other.DeliveryClaim(ctx, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(tasks, func(tk *webhook.Task) bool { return tk.Webhook.ID == w.ID })
	if i < 0 {
		t.Fatal("the new webhook's delivery was not claimed")
	}
	d := tasks[i].Delivery
	gone := webhook.Outcome{Status: webhook.DeliveryFailed, Lease: d.Lease, DisableReason: "the receiver answered 410 Gone",
		WebhookUpdatedAt: tasks[i].Webhook.UpdatedAt,
		Attempt: webhook.Attempt{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, WebhookID: w.ID, DeliveryID: d.ID,
			EventID: d.EventID, CreatedAt: now.UTC(), Number: 1, Kind: webhook.KindStandard, TargetURL: "https://example.com", StatusCode: 410}}
	late := gone
	late.Lease++
	if res, err := other.DeliveryComplete(ctx, []webhook.Outcome{late}); err != nil || len(res.Stale) != 1 || len(res.Disabled) != 0 {
		t.Fatalf("the outcome under a lease not held: %v, stale %v, disabled %v", err, res.Stale, res.Disabled)
	}
	res, err := other.DeliveryComplete(ctx, []webhook.Outcome{gone})
	if err != nil || len(res.Disabled) != 1 {
		t.Fatalf("the 410: %v, disabled %v; want the webhook disabled", err, res.Disabled)
	}
	select {
	case e := <-edited:
		if e.id != w.ID || !e.at.Equal(res.Disabled[0].UpdatedAt) {
			t.Fatalf("heard an edit of %v at %v, want hookd's disable of %v at %v", e.id, e.at, w.ID, res.Disabled[0].UpdatedAt)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hookd's disable on another node was not notified within 10s")
	}

	cancel()
	if err := <-stopped; err != nil {
		t.Fatalf("Listen after its context ended: %v", err)
	}
}

// Both backends number their migrations the same, so one number means
// one schema change whichever database holds it.
func TestMigrationNumbersMatchSQLite(t *testing.T) {
	numbers := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if n, _, ok := strings.Cut(e.Name(), "_"); ok && strings.HasSuffix(e.Name(), ".sql") {
				out = append(out, n)
			}
		}
		return out
	}
	pg, lite := numbers("migrations"), numbers("../sqlite/migrations")
	if len(pg) == 0 || !slices.Equal(pg, lite) {
		t.Fatalf("migration numbers differ: postgres %v, sqlite %v", pg, lite)
	}
}

// In production the queue runs on the database's clock, the one all
// nodes share: a node whose clock is an hour behind still leases, and
// schedules retries, for as long after the database's now() as it asked.
func TestDatabaseClock(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	db.callerClock = false
	ctx := context.Background()
	dbNow := func() time.Time {
		var now time.Time
		if err := db.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		return now
	}
	// within fails unless got is d after a database time in [from, to].
	within := func(what string, got time.Time, from, to time.Time, d time.Duration) {
		t.Helper()
		if got.Before(from.Add(d)) || got.After(to.Add(d)) {
			t.Fatalf("%s %v, want %v after the database's now(), between %v and %v", what, got, d, from, to)
		}
	}
	behind := time.Now().Add(-time.Hour) // the node's clock
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	ev := newEv(org, "")
	ev.CreatedAt = behind
	if _, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}

	from := dbNow()
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: behind, LeaseUntil: behind.Add(time.Minute), Limit: 10})
	to := dbNow()
	if err != nil || len(tasks) != 1 {
		t.Fatalf("claim = %d tasks, %v", len(tasks), err)
	}
	d := tasks[0].Delivery
	within("leased until", dueAt(t, db, org, w.ID, d.ID), from, to, time.Minute)

	a := webhook.Attempt{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, WebhookID: w.ID, DeliveryID: d.ID, EventID: d.EventID,
		CreatedAt: behind.Add(time.Second), Number: 1, Kind: webhook.KindStandard, TargetURL: "https://example.com", StatusCode: 500}
	from = dbNow()
	if _, err := db.DeliveryComplete(ctx, []webhook.Outcome{{Attempt: a, Lease: d.Lease, Status: webhook.DeliveryPending,
		NextAttemptAt: a.CreatedAt.Add(5 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	to = dbNow()
	within("retry due at", dueAt(t, db, org, w.ID, d.ID), from, to, 5*time.Minute)
}

// A delivery leased at intake holds its lease for as long after the
// database's now() as the node asked, whatever its wall clock did
// between stamping the event and reserving the lease: a clock stepped
// back 30 s between the two (an NTP correction) must not store a lease
// 30 s shorter than the one the node's dispatcher counts on (by its
// monotonic clock), or another node could claim the delivery and send
// it while the first is still sending it.
func TestIntakeLeaseOneClock(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	db.callerClock = false
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	const lease = time.Minute
	ev := newEv(org, "")
	ev.CreatedAt = time.Now() // the first reading
	reserved := ev.CreatedAt.Add(-30 * time.Second)
	rs, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{Now: reserved, Until: reserved.Add(lease), Limit: 1})
	if err != nil || len(rs) != 1 || len(rs[0].Tasks) != 1 {
		t.Fatalf("EventsCreate = %+v, %v; want one leased task", rs, err)
	}
	var left time.Duration
	if err := db.pool.QueryRow(ctx, `SELECT (extract(epoch FROM due_at - now()) * 1e6)::bigint * 1000 FROM deliveries
		WHERE organization_id = $1`, org).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left < lease-5*time.Second || left > lease {
		t.Fatalf("the lease stored ends %v after the database's now, want %v (less the few ms the test took)", left, lease)
	}
}

// What a person or a stopping node makes due now is due now on the
// database's clock too: a node whose clock runs an hour ahead retries,
// gives back and recovers deliveries the others can claim at once, not
// an hour later.
func TestDatabaseClockAhead(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	db.callerClock = false
	ahead := func() time.Time { return time.Now().Add(time.Hour) } // the node's clock
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	ev := newEv(org, "")
	ev.CreatedAt = ahead()
	if _, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	claim := func(what string) *webhook.Task {
		t.Helper()
		now := ahead()
		tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) != 1 {
			var due time.Time
			if err := db.pool.QueryRow(ctx, `SELECT due_at FROM deliveries WHERE organization_id = $1`, org).Scan(&due); err != nil {
				t.Fatal(err)
			}
			t.Fatalf("%s: %d deliveries claimed, want the one, due now (it is due at %v)", what, len(tasks), due)
		}
		return tasks[0]
	}
	tk := claim("new")
	complete(t, db, tk, webhook.DeliveryFailed)
	if _, err := db.DeliveryRetry(ctx, org, w.ID, tk.Delivery.ID, ahead()); err != nil {
		t.Fatal(err)
	}
	tk = claim("retried")
	if err := db.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{tk.Ref()}, Now: ahead()}); err != nil {
		t.Fatal(err)
	}
	tk = claim("given back")
	// A delay is counted from the database's now, whatever the node's
	// clock says.
	var wait time.Duration
	if err := db.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{tk.Ref()}, Now: ahead(), After: 90 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := db.pool.QueryRow(ctx, `SELECT (extract(epoch FROM due_at - now()) * 1e6)::bigint * 1000 FROM deliveries
		WHERE organization_id = $1`, org).Scan(&wait); err != nil {
		t.Fatal(err)
	}
	if wait < 85*time.Second || wait > 90*time.Second {
		t.Fatalf("given back due 90 s later: due %v after the database's now", wait)
	}
	if _, err := db.pool.Exec(ctx, `UPDATE deliveries SET due_at = now() WHERE organization_id = $1`, org); err != nil {
		t.Fatal(err)
	}
	tk = claim("given back later")
	complete(t, db, tk, webhook.DeliveryFailed)
	if n, err := db.DeliveryRecover(ctx, webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: w.ID,
		Since: ev.CreatedAt.Add(-time.Minute), Until: ahead().Add(time.Minute), Now: ahead()}); err != nil || n.Failed != 1 {
		t.Fatalf("recovered %+v (%v), want 1 failed", n, err)
	}
	claim("recovered")
}

// The backlog is judged on the database's clock, like the claims it
// stands for, and its age told on the caller's: a node whose clock runs
// an hour ahead neither counts a retry due in 30 s as an hour late (and
// pages HookdDeliveriesFallingBehind), nor sees a due one as younger.
func TestDatabaseClockBacklog(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	db.callerClock = false
	ctx := context.Background()
	ahead := func() time.Time { return time.Now().Add(time.Hour) } // the node's clock
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	ev := newEv(org, "")
	ev.CreatedAt = ahead()
	if _, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	due, oldest, err := db.DeliveryBacklog(ctx, ahead())
	if err != nil || due != 1 {
		t.Fatalf("backlog of one new delivery: %d due, %v", due, err)
	}
	if age := ahead().Sub(oldest); age < 0 || age > time.Minute {
		t.Errorf("a delivery due a moment ago is %v old on a clock an hour ahead", age)
	}
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: ahead(), LeaseUntil: ahead().Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("claim = %d tasks, %v", len(tasks), err)
	}
	d := tasks[0].Delivery
	a := webhook.Attempt{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, WebhookID: w.ID, DeliveryID: d.ID, EventID: d.EventID,
		CreatedAt: ahead(), Number: 1, Kind: webhook.KindStandard, TargetURL: "https://example.com", StatusCode: 500}
	if _, err := db.DeliveryComplete(ctx, []webhook.Outcome{{Attempt: a, Lease: d.Lease, Status: webhook.DeliveryPending,
		NextAttemptAt: a.CreatedAt.Add(30 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	if due, oldest, err := db.DeliveryBacklog(ctx, ahead()); err != nil || due != 0 {
		t.Errorf("a retry due in 30 s, seen from a clock an hour ahead: %d due since %v (%v)", due, oldest, err)
	}
}

func dueAt(t *testing.T, db *DB, org, hook, id uuid.UUID) time.Time {
	t.Helper()
	d, err := db.DeliveryGet(context.Background(), org, hook, id)
	if err != nil {
		t.Fatal(err)
	}
	return d.DueAt
}

// A schema that is not hookd's (another program's, with a webhooks table
// of its own) fails the first migration with an error that names it, and
// is left as it was: no migration recorded, the other table untouched.
func TestMigrateLeavesAForeignSchema(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, pgtest.Schema(t, pgtest.URL(t)), storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.pool.Exec(ctx, `CREATE TABLE webhooks (name text); INSERT INTO webhooks VALUES ('theirs')`); err != nil {
		t.Fatal(err)
	}
	err = db.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "0001_init") || !strings.Contains(err.Error(), `"webhooks" already exists`) {
		t.Fatalf("Migrate = %v, want the first migration's error, naming it and the table in the way", err)
	}
	// The failed migration's transaction also created schema_migrations:
	// it is gone with it, or at least empty.
	var exists bool
	if err := db.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		var applied int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&applied); err != nil || applied != 0 {
			t.Fatalf("%d migrations recorded as applied (%v), want none", applied, err)
		}
	}
	var name string
	if err := db.pool.QueryRow(ctx, `SELECT name FROM webhooks`).Scan(&name); err != nil || name != "theirs" {
		t.Fatalf("the other program's row: %q, %v", name, err)
	}
}

// Completions, renewals and releases find their deliveries by key
// whatever the statistics say. The queue index (deliveries_due) keeps a
// finished delivery's entry until VACUUM, and a bitmap scan never marks
// it dead: the planner, which believes the queue small, used to read the
// index whole for every batch of outcomes (20,000 entries each in a
// burst). Here the statistics are taken just after the whole queue
// finished (its 2,000 entries left in the index), then 50 deliveries run
// again.
func TestDeliveryLookupsUseKeys(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	storeEvents(t, db, org, 10, 200)
	for _, q := range []string{
		`ALTER TABLE deliveries SET (autovacuum_enabled = false)`,
		`UPDATE deliveries SET status = 'succeeded'`,
		`ANALYZE deliveries`,
	} {
		if _, err := db.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rows, err := db.pool.Query(ctx, `UPDATE deliveries SET status = 'running', lease = 1
		WHERE id IN (SELECT id FROM deliveries ORDER BY id LIMIT 50) RETURNING id, event_id`)
	if err != nil {
		t.Fatal(err)
	}
	var outs []webhook.Outcome
	var orgs, ids, hooks []uuid.UUID
	for rows.Next() {
		a := webhook.Attempt{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, WebhookID: w.ID, CreatedAt: t0, Number: 1,
			Kind: webhook.KindStandard, TargetURL: "https://example.com", StatusCode: 200}
		if err := rows.Scan(&a.DeliveryID, &a.EventID); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: 1, Attempt: a})
		orgs, ids, hooks = append(orgs, org), append(ids, a.DeliveryID), append(hooks, w.ID)
	}
	if rows.Err() != nil || len(outs) != 50 {
		t.Fatalf("running again: %d deliveries, %v", len(outs), rows.Err())
	}
	round := make([]int, len(outs))
	for i := range round {
		round[i] = i
	}
	leases := make([]int64, len(ids))
	for i := range leases {
		leases[i] = 1
	}
	for name, plan := range map[string]string{
		"lock":     explain(t, db, `SELECT count(*) FROM `+lockedDeliveries+` l`, orgs, ids),
		"complete": explain(t, db, completeSQL, db.completeArgs(outs, round)...),
		"renew":    explain(t, db, renewSQL, orgs, ids, leases, int64(60e6), nil, hooks),
		"release":  explain(t, db, releaseSQL, orgs, ids, leases, int64(0), hooks, nil),
	} {
		if strings.Contains(plan, "deliveries_due") || !strings.Contains(plan, "deliveries_pkey") {
			t.Errorf("%s reads the queue index rather than looking each delivery up by key:\n%s", name, plan)
		}
	}
	// And the batch completes: every delivery succeeded, none stale.
	if res, err := db.DeliveryComplete(ctx, outs); err != nil || len(res.Stale) != 0 {
		t.Fatalf("complete: %d stale, %v", len(res.Stale), err)
	}
	var running int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status = 'running'`).Scan(&running); err != nil || running != 0 {
		t.Fatalf("%d deliveries still running, %v", running, err)
	}
}

// explain returns the plans PostgreSQL makes for query with args, both
// the custom one (for these values) and the generic one a prepared
// statement switches to after five runs when it seems no worse. (EXPLAIN
// EXECUTE takes no parameters: the values go in as literals.)
func explain(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	sd, err := conn.Conn().Prepare(ctx, "explained", query)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Conn().Deallocate(ctx, "explained")
	literals := make([]string, len(args))
	for i, arg := range args {
		text, err := conn.Conn().TypeMap().Encode(sd.ParamOIDs[i], pgtype.TextFormatCode, arg, nil)
		if err != nil {
			t.Fatalf("$%d: %v", i+1, err)
		}
		literals[i] = "NULL"
		if text != nil {
			literals[i] = "'" + strings.ReplaceAll(string(text), "'", "''") + "'"
		}
	}
	var plans []string
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, "EXPLAIN EXECUTE explained("+strings.Join(literals, ", ")+")", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, mode+":\n"+strings.Join(plan, "\n"))
	}
	if _, err := conn.Exec(ctx, "RESET plan_cache_mode"); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plans, "\n")
}

// Intake's write reads no webhook: the organization's intakeLock, taken
// before the webhooks were read, stands for them. A check per delivery
// (as the foreign key and then an EXISTS did) costs a fanned-out event a
// lookup for each of its deliveries.
func TestIntakeWriteReadsNoWebhook(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	for range 100 {
		if err := db.WebhookCreate(ctx, newHook(org), 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	in, err := loadForIntake(ctx, openPipe(t, db), []*webhook.Event{newEv(org, "")}, webhookScan(db.keys, true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := webhook.PlanIntake(in)
	if err != nil || len(p.Store) != 1 || len(p.Store[0].Deliveries) != 100 {
		t.Fatalf("plan: %+v, %v", p, err)
	}
	plan := explain(t, db, storeSQL, storeArgs(p, 0, false)...)
	if !strings.Contains(plan, "Insert on deliveries") || strings.Contains(plan, "webhooks") {
		t.Fatalf("intake's write reads webhooks (or stores no delivery):\n%s", plan)
	}
}

// Intake finds the holders of a batch's keys through the key index, even
// planned on a new database whose events were never analyzed: a plan
// made then, which its connections keep, must not read every event for
// every keyed batch.
func TestKeyHoldersUseTheIndex(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	storeHooks(t, db, newHook(org))
	var orgs []uuid.UUID
	var keys []string
	for i := range 60 {
		key := fmt.Sprintf("key-%d", i)
		if _, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, key)}, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
		orgs, keys = append(orgs, org), append(keys, key)
	}
	plan := explain(t, db, keyHoldersSQL, orgs[:32], keys[:32])
	if strings.Contains(plan, "Seq Scan on events") || !strings.Contains(plan, "events_idempotency_key") {
		t.Fatalf("the key holders' lookup reads the events table rather than probing its key index:\n%s", plan)
	}
}

// A webhook's deliveries of one status are listed from an index of rows
// of that status, in the custom plan and in the generic one a cached
// statement comes to: failed ones in order from
// deliveries_webhook_failed, pending and running ones from the queue,
// never by reading the webhook's history (deliveries_webhook, or the
// table) for the few that have it. The history is as a running hookd's
// is, analyzed (autovacuum) and nearly all delivered.
func TestDeliveryListPlans(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	storeEvents(t, db, org, 20, 500)
	if _, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = CASE WHEN random() < 0.01 THEN 'failed' ELSE 'succeeded' END
		WHERE id NOT IN (SELECT id FROM deliveries ORDER BY id DESC LIMIT 5)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `ANALYZE deliveries`); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		status webhook.DeliveryStatus
		index  string
	}{
		{webhook.DeliveryFailed, "Index Scan Backward using deliveries_webhook_failed"},
		{webhook.DeliveryPending, "using deliveries_due"},
		{webhook.DeliveryRunning, "using deliveries_due"},
	} {
		for _, before := range []uuid.UUID{uuid.Nil, uuid.Must(uuid.NewV7())} {
			sql, args := deliveryListQuery(webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Status: tt.status, Before: before, Limit: 50})
			plan := explain(t, db, sql, args...)
			if strings.Count(plan, tt.index) != 2 || strings.Contains(plan, "using deliveries_webhook on") || strings.Contains(plan, "Seq Scan") {
				t.Errorf("%s deliveries (cursor %v) are not read from %q in both plans:\n%s", tt.status, before != uuid.Nil, tt.index, plan)
			}
		}
	}
}

// A release that waits for a renewal of the same delivery still releases
// it once the renewal commits: its UPDATE finds the delivery by key, not
// by the address of the version its snapshot saw, which the renewal
// replaced.
func TestReleaseAfterConcurrentRenewal(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	d := claimedEvent(t, db, newHook(org))[0].Delivery
	renewal, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer renewal.Rollback(ctx)
	if _, err := renewal.Exec(ctx, `UPDATE deliveries SET due_at = due_at + interval '1 minute'
		WHERE organization_id = $1 AND id = $2`, org, d.ID); err != nil {
		t.Fatal(err)
	}
	released := make(chan error, 1)
	go func() {
		released <- db.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{{OrganizationID: org, WebhookID: d.WebhookID, ID: d.ID, Lease: d.Lease}}, Now: t0})
	}()
	// The release must be waiting for the renewal's row lock before the
	// renewal commits, or there is no race to test.
	waitFor(t, db, `SELECT count(*) > 0 FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND query = $1`, releaseSQL)
	if err := renewal.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	var status string
	if err := db.pool.QueryRow(ctx, `SELECT status FROM deliveries WHERE organization_id = $1 AND id = $2`, org, d.ID).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != "pending" {
		t.Fatalf("after the release, the delivery is %s, want pending", status)
	}
}

// A webhook deleted while intake holds what it read: the delete waits
// for intake's transaction (intakeLock), and the purge after it deletes
// the delivery intake committed too, besides the history and the queue
// with their attempts; the webhook kept keeps its own. No row of the
// deleted webhook is left.
func TestWebhookDeleteWaitsForIntake(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	kept, gone := newHook(org), newHook(org)
	storeHooks(t, db, kept, gone)
	// One delivery of each webhook with an attempt, for the delete to
	// find in the queue (a pending one) and in the history.
	for _, tk := range claimEvent(t, db, newEv(org, ""), 2) {
		complete(t, db, tk, webhook.DeliverySucceeded)
	}
	for _, tk := range claimEvent(t, db, newEv(org, ""), 2) {
		complete(t, db, tk, webhook.DeliveryPending)
	}

	tx := openPipe(t, db)
	in, err := loadForIntake(ctx, tx, []*webhook.Event{newEv(org, "")}, webhookScan(db.keys, true))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: gone.ID,
			Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) { return nil, nil }})
	}()
	waitFor(t, db, intakeLockAwaited, intakeLock, org)
	in.Lease = webhook.Lease{Now: t0, Until: t0.Add(time.Minute), Limit: 10}
	plan, err := webhook.PlanIntake(in)
	if err != nil || len(plan.Receipts) != 1 || plan.Receipts[0].Deliveries != 2 {
		t.Fatalf("plan: %+v, %v; want one event, a delivery to each webhook read", plan, err)
	}
	if lost, err := write(ctx, tx, plan, in.Lease.Length(), true, false); err != nil || len(lost) != 0 {
		t.Fatalf("write: lost %v, %v", lost, err)
	}
	select {
	case err := <-done:
		t.Fatalf("the delete ended (%v) while intake had yet to commit", err)
	default:
	}
	if err := tx.commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitPurged(t, db)
	for _, c := range []struct {
		table, which string
		hook         uuid.UUID
		want         int
	}{
		{"deliveries", "deleted", gone.ID, 0}, {"attempts", "deleted", gone.ID, 0},
		{"deliveries", "kept", kept.ID, 3}, {"attempts", "kept", kept.ID, 2},
	} {
		var n int
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM `+c.table+` WHERE webhook_id = $1`, c.hook).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != c.want {
			t.Errorf("%s of the webhook %s: %d rows, want %d", c.table, c.which, n, c.want)
		}
	}
}

// Retention deletes an old event with its deliveries and their attempts,
// and leaves a young event's alone.
func TestDeleteBeforeLeavesNothingBehind(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	storeHooks(t, db, newHook(org), newHook(org))
	young := newEv(org, "")
	young.CreatedAt = t0.Add(time.Hour)
	for _, ev := range []*webhook.Event{newEv(org, ""), young} {
		for _, tk := range claimEvent(t, db, ev, 2) {
			complete(t, db, tk, webhook.DeliveryFailed)
		}
	}
	if n, err := db.DeleteBefore(ctx, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteBefore = %d, %v; want the old event", n, err)
	}
	var events, deliveries, attempts int
	err := db.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries),
		(SELECT count(*) FROM attempts)`).Scan(&events, &deliveries, &attempts)
	if err != nil {
		t.Fatal(err)
	}
	if events != 1 || deliveries != 2 || attempts != 2 {
		t.Fatalf("left %d events, %d deliveries, %d attempts; want the young event's 1, 2, 2", events, deliveries, attempts)
	}
}

// claimEvent stores ev and claims its n deliveries, when nothing else is
// due.
func claimEvent(t *testing.T, db *DB, ev *webhook.Event, n int) []*webhook.Task {
	t.Helper()
	ctx := context.Background()
	if _, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: t0.Add(2 * time.Hour), LeaseUntil: t0.Add(3 * time.Hour), Limit: n + 1})
	if err != nil || len(tasks) != n {
		t.Fatalf("claim = %d tasks, %v; want %d", len(tasks), err, n)
	}
	return tasks
}

// complete records one attempt of tk, ending as status (pending: due
// again at t0).
func complete(t *testing.T, db *DB, tk *webhook.Task, status webhook.DeliveryStatus) {
	t.Helper()
	d := tk.Delivery
	o := webhook.Outcome{Status: status, Lease: d.Lease, Attempt: webhook.Attempt{
		ID: uuid.Must(uuid.NewV7()), OrganizationID: d.OrganizationID, WebhookID: d.WebhookID, DeliveryID: d.ID, EventID: d.EventID,
		CreatedAt: t0, Number: d.Attempts + 1, Kind: webhook.KindStandard, TargetURL: "https://example.com", StatusCode: 500,
	}}
	if status == webhook.DeliveryPending {
		o.NextAttemptAt = t0
	}
	if res, err := db.DeliveryComplete(context.Background(), []webhook.Outcome{o}); err != nil || len(res.Stale) != 0 {
		t.Fatalf("complete: stale %v, %v", res.Stale, err)
	}
}

// tableCounts counts the rows of the queue's three tables.
func tableCounts(t *testing.T, db *DB) (events, deliveries, attempts int) {
	t.Helper()
	err := db.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries),
		(SELECT count(*) FROM attempts)`).Scan(&events, &deliveries, &attempts)
	if err != nil {
		t.Fatal(err)
	}
	return events, deliveries, attempts
}

// retryAndComplete retries a finished delivery, claims it and records a
// new attempt, while a delete of it waits for a lock. Bounded: if the
// delete locked this delivery first, the retry would wait for it.
func retryAndComplete(t *testing.T, db *DB, d webhook.Delivery) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.DeliveryRetry(ctx, d.OrganizationID, d.WebhookID, d.ID, t0); err != nil {
		t.Fatal(err)
	}
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: t0.Add(2 * time.Hour), LeaseUntil: t0.Add(3 * time.Hour), Limit: 5})
	if err != nil || len(tasks) != 1 || tasks[0].Delivery.ID != d.ID {
		t.Fatalf("claim = %d tasks, %v; want the delivery retried", len(tasks), err)
	}
	complete(t, db, tasks[0], webhook.DeliverySucceeded)
}

// retentionWaiting makes an old event with a failed delivery, holds the
// event's row as an intake releasing its idempotency key does, and starts
// retention, which waits for that row with its snapshot taken. It returns
// the delivery's task and release, which lets the row go and returns
// retention's error.
func retentionWaiting(t *testing.T, db *DB) (tk *webhook.Task, release func() error) {
	t.Helper()
	ctx := context.Background()
	org := uuid.New()
	storeHooks(t, db, newHook(org))
	old := newEv(org, "k")
	tk = claimEvent(t, db, old, 1)[0]
	complete(t, db, tk, webhook.DeliveryFailed)
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, `UPDATE events SET idempotency_key = NULL WHERE id = $1`, old.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := db.DeleteBefore(ctx, t0.Add(time.Minute))
		done <- err
	}()
	waitFor(t, db, `SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM events e%FOR UPDATE OF e%'`)
	return tk, func() error {
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		return <-done
	}
}

// Retention deletes a delivery's attempts as they are when it deletes the
// delivery: one recorded while its statement waited for a lock goes too
// (deleted with the statement's own snapshot, it was left behind; found
// in review).
func TestDeleteBeforeTakesAttemptsMadeMeanwhile(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	tk, release := retentionWaiting(t, db)
	retryAndComplete(t, db, tk.Delivery)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if ev, d, a := tableCounts(t, db); ev+d+a != 0 {
		t.Fatalf("left %d events, %d deliveries, %d attempts; want none", ev, d, a)
	}
}

// Retention keeps an old event whose finished delivery was retried after
// its first statement's snapshot: the retry made it pending again, a
// promise, which deleting the event would have taken with it (the
// snapshot saw the delivery failed, the trigger deleting deliveries saw
// it pending and deleted it all the same).
func TestDeleteBeforeKeepsDeliveryRetriedMeanwhile(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	tk, release := retentionWaiting(t, db)
	d := tk.Delivery
	retryCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := db.DeliveryRetry(retryCtx, d.OrganizationID, d.WebhookID, d.ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	got, err := db.DeliveryGet(ctx, d.OrganizationID, d.WebhookID, d.ID)
	if err != nil || got.Status != webhook.DeliveryPending {
		t.Fatalf("the retried delivery after retention: %+v, %v; want it there, pending", got, err)
	}
	if ev, dv, _ := tableCounts(t, db); ev != 1 || dv != 1 {
		t.Errorf("left %d events and %d deliveries, want the event and its delivery", ev, dv)
	}
}

// A retry or a recovery of a finished delivery waits while retention
// holds its event, then finds it gone with the event: it cannot make a
// delivery pending between retention's reading of the deliveries and its
// delete (see deleteBatch). Here a transaction does what a batch does to
// the event: lock it, then delete it.
func TestRetryWaitsForRetention(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	old := newEv(org, "")
	tk := claimEvent(t, db, old, 1)[0]
	complete(t, db, tk, webhook.DeliveryFailed)
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM events WHERE organization_id = $1 AND id = $2 FOR UPDATE`, org, old.ID); err != nil {
		t.Fatal(err)
	}
	bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	retried, recovered := make(chan error, 1), make(chan int, 1)
	go func() {
		_, err := db.DeliveryRetry(bounded, org, w.ID, tk.Delivery.ID, t0)
		retried <- err
	}()
	go func() {
		r, err := db.DeliveryRecover(bounded, webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: w.ID,
			Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour), Now: t0})
		n := r.Total()
		if err != nil {
			n = -1
		}
		recovered <- n
	}()
	waitFor(t, db, `SELECT count(*) = 2 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%UPDATE deliveries%'`)
	if _, err := tx.Exec(ctx, `DELETE FROM events WHERE organization_id = $1 AND id = $2`, org, old.ID); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-retried; webhook.ErrorCode(err) != webhook.ENotFound {
		t.Errorf("a retry that waited for retention: %v; want not found", err)
	}
	if n := <-recovered; n != 0 {
		t.Errorf("a recovery that waited for retention re-queued %d (-1: failed); want 0", n)
	}
}

// A purge's batch waits for a delivery another transaction holds (here:
// a recovery making it pending again) and then deletes it all the same,
// with its attempts: the delete itself answered without waiting.
func TestPurgeTakesRowsHeldMeanwhile(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	for range 2 {
		complete(t, db, claimEvent(t, db, newEv(org, ""), 1)[0], webhook.DeliveryFailed)
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'pending' WHERE id = (SELECT id FROM deliveries ORDER BY id LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	var holder int
	if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID}); err != nil {
		t.Fatal(err)
	}
	// The purge's batch waits for that row (this test's, not another
	// package's: the one the holder blocks).
	waitFor(t, db, `SELECT count(*) > 0 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) AND query LIKE '%gone AS%'`, holder)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitPurged(t, db)
	if _, d, a := tableCounts(t, db); d+a != 0 {
		t.Fatalf("left %d deliveries, %d attempts of the deleted webhook; want none", d, a)
	}
}

// waitPurged waits, 30 seconds at most, until no delivery is left
// without its webhook, nor an attempt without its delivery. It does not
// wake the purger: the delete must have.
func waitPurged(t *testing.T, db *DB) {
	t.Helper()
	storetest.Eventually(t, 30*time.Second, func() string {
		var deliveries, attempts int
		if err := db.pool.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM deliveries d WHERE NOT EXISTS (
				SELECT 1 FROM webhooks w WHERE w.organization_id = d.organization_id AND w.id = d.webhook_id)),
			(SELECT count(*) FROM attempts a WHERE NOT EXISTS (
				SELECT 1 FROM deliveries d WHERE d.organization_id = a.organization_id AND d.id = a.delivery_id))`).
			Scan(&deliveries, &attempts); err != nil {
			t.Fatal(err)
		}
		if deliveries+attempts != 0 {
			return fmt.Sprintf("%d deliveries without a webhook and %d attempts without a delivery left", deliveries, attempts)
		}
		return ""
	})
}

// A delivery to a webhook that is gone (an intake of a version before
// migration 0040 may commit one while the webhook is deleted) is deleted
// by the first claim that finds it, not claimed again and again.
func TestClaimDeletesDeliveryOfNoWebhook(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	if _, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	// The webhook row goes behind the purger's back (nothing wakes it,
	// and its first pass is over), as if the delivery came after the
	// purge.
	<-db.purger.FirstPass()
	if _, err := db.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, w.ID); err != nil {
		t.Fatal(err)
	}
	tasks, err := db.DeliveryClaim(ctx, webhook.ClaimParams{Now: t0.Add(time.Hour), LeaseUntil: t0.Add(2 * time.Hour), Limit: 5})
	if err != nil || len(tasks) != 0 {
		t.Fatalf("claim = %d tasks, %v; want none", len(tasks), err)
	}
	if _, d, _ := tableCounts(t, db); d != 0 {
		t.Fatalf("%d deliveries left; want the orphan deleted", d)
	}
}

// The cascades are planned for each delete: a plan kept from a large
// first delete on a connection (a hash join over the whole child table)
// would scan whole tables for every small delete after it. Counted in
// the small delete's own transaction (pg_stat_xact_user_tables).
func TestCascadesPlannedPerDelete(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// 20,000 events with two deliveries each, each with an attempt.
	_, err = conn.Exec(ctx, `
		INSERT INTO events (organization_id, id, created_at, event_type, project_name, environment_mode, payload)
			SELECT '00000000-0000-0000-0000-000000000001', gen_random_uuid(), now() - i * interval '1 second', 'DEPLOYMENT_STARTED', 'p', 'PRODUCTION', '{}'
			FROM generate_series(1, 20000) i;
		INSERT INTO deliveries (organization_id, id, webhook_id, event_id, event_type, created_at, updated_at, due_at, status)
			SELECT e.organization_id, gen_random_uuid(), gen_random_uuid(), e.id, e.event_type, e.created_at, e.created_at, e.created_at, 'succeeded'
			FROM events e, generate_series(1, 2);
		INSERT INTO attempts (organization_id, id, delivery_id, webhook_id, created_at, number, kind, target_url, status_code, response_body, duration_us, error)
			SELECT organization_id, gen_random_uuid(), id, webhook_id, created_at, 1, 'STANDARD', 'https://example.com', 200, '', 1, ''
			FROM deliveries;
		ANALYZE events, deliveries, attempts`)
	if err != nil {
		t.Fatal(err)
	}
	// Whole scans of the child tables so far, as the server counts them
	// once this connection's pending statistics are flushed.
	seqScans := func() (n int) {
		t.Helper()
		for _, q := range []string{`SELECT pg_stat_force_next_flush()`, `SELECT pg_stat_clear_snapshot()`} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if err := conn.QueryRow(ctx, `SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables
			WHERE relname IN ('deliveries', 'attempts') AND schemaname = current_schema()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	del := func(n int) {
		t.Helper()
		if _, err := conn.Exec(ctx, `DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY created_at LIMIT $1)`, n); err != nil {
			t.Fatal(err)
		}
	}
	del(7000)
	before := seqScans()
	del(1)
	if n := seqScans() - before; n != 0 {
		t.Fatalf("deleting one event after 7,000 scanned deliveries or attempts whole %d times", n)
	}
	_, d, a := tableCounts(t, db)
	if d != 2*(20000-7001) || a != d {
		t.Fatalf("left %d deliveries and %d attempts, want %d of each", d, a, 2*(20000-7001))
	}
}

// A cascade deletes in the schema of the table deleted from, whatever
// the search_path of the session that deletes (an operator's psql, say).
func TestCascadesFollowTheTableSchema(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	storeHooks(t, db, w)
	for _, tk := range claimEvent(t, db, newEv(org, ""), 1) {
		complete(t, db, tk, webhook.DeliveryFailed)
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	// The event's deliveries go by its trigger, and their attempts by
	// theirs. (A webhook's deliveries go by the purger: migration 0055.)
	_, err = conn.Exec(ctx, `SET search_path = pg_catalog; DELETE FROM `+pgx.Identifier{schema, "events"}.Sanitize()+` WHERE organization_id = '`+org.String()+`'; RESET search_path`)
	if err != nil {
		t.Fatal(err)
	}
	if _, d, a := tableCounts(t, db); d+a != 0 {
		t.Fatalf("left %d deliveries and %d attempts of the event deleted", d, a)
	}
}

// DeleteBefore goes in batches, each after the last event the one before
// it picked, in the order (created_at, organization_id, id): events of
// one microsecond, of two organizations, on both sides of a batch's end
// all go, an event kept for its pending delivery holds back none after
// it, and young events stay. The first batch runs alone here, to see
// where it stops.
func TestDeleteBeforeInBatches(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	kept, gone := uuid.New(), uuid.New() // kept has a webhook: its event gets a delivery
	if err := db.WebhookCreate(ctx, newHook(kept), 0, nil); err != nil {
		t.Fatal(err)
	}
	at := func(org uuid.UUID, after time.Duration) *webhook.Event {
		e := newEv(org, "")
		e.CreatedAt = t0.Add(after)
		return e
	}
	other := uuid.New()       // a second organization without webhooks
	var tied []*webhook.Event // created in one microsecond
	for i := range 5 {
		tied = append(tied, at([]uuid.UUID{gone, other}[i%2], 0))
	}
	pending := at(kept, time.Second) // never claimed: its delivery stays pending
	young := at(gone, 48*time.Hour)
	evs := append(slices.Clone(tied), pending, at(gone, 2*time.Second), at(gone, 3*time.Second), young)
	if _, err := db.EventsCreate(ctx, evs, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	cut := ts(t0.Add(24 * time.Hour))
	slices.SortFunc(tied, func(a, b *webhook.Event) int {
		if c := slices.Compare(a.OrganizationID[:], b.OrganizationID[:]); c != 0 {
			return c
		}
		return slices.Compare(a.ID[:], b.ID[:])
	})

	db.retentionBatch = 2
	picked, n, last, err := db.deleteBatch(ctx, cut, retentionKey{})
	if err != nil {
		t.Fatal(err)
	}
	if picked != 2 || n != 2 || !last.at.Equal(t0) || last.org != tied[1].OrganizationID || last.id != tied[1].ID {
		t.Fatalf("first batch of 2: %d picked, %d deleted, the last at %v of %v, id %v; want 2, the second of the tied events (%v of %v at %v)",
			picked, n, last.at, last.org, last.id, tied[1].ID, tied[1].OrganizationID, t0)
	}
	if n, err := db.DeleteBefore(ctx, cut); err != nil || n != 5 {
		t.Fatalf("DeleteBefore after it = %d, %v; want the other 5 old events without a pending delivery", n, err)
	}
	rows, _ := db.pool.Query(ctx, `SELECT id FROM events ORDER BY created_at`)
	left, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		t.Fatal(err)
	}
	if want := []uuid.UUID{pending.ID, young.ID}; !slices.Equal(left, want) {
		t.Errorf("events left %v, want the pending one's and the young one %v", left, want)
	}
	if n, err := db.DeleteBefore(ctx, cut); err != nil || n != 0 {
		t.Errorf("a second DeleteBefore = %d, %v; want 0", n, err)
	}
}

// Two recoveries with Pending count each delivery once even when the one
// that began first reaches the rows last: it waited on their locks while
// the other made them due at its own, later, now(). Here a transaction
// plays that other recovery: it holds the rows, then makes them due at a
// time after the waiting recovery began, and commits.
func TestRecoverPendingWaitsForAnotherRecovery(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	w := newHook(org)
	tk := claimedEvent(t, db, w)[0]
	// Attempted once, waiting for a retry an hour from now.
	if _, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = 'pending', attempts = 1, last_status_code = 503,
		due_at = now() + interval '1 hour' WHERE organization_id = $1 AND id = $2`, org, tk.Delivery.ID); err != nil {
		t.Fatal(err)
	}
	db.callerClock = false
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM deliveries WHERE organization_id = $1 FOR UPDATE`, org); err != nil {
		t.Fatal(err)
	}
	bounded, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	type result struct {
		r   webhook.Recovered
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := db.DeliveryRecover(bounded, webhook.DeliveryRecoverParams{OrganizationID: org, WebhookID: w.ID,
			Since: t0.Add(-time.Hour), Until: t0.Add(time.Hour), Now: time.Now(), Pending: true})
		done <- result{r, err}
	}()
	waitFor(t, db, `SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%UPDATE deliveries%'`)
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET due_at = clock_timestamp() WHERE organization_id = $1`, org); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got.err != nil || got.r != (webhook.Recovered{}) {
		t.Fatalf("the recovery that waited: %+v, %v; want nothing counted, the other made the delivery due", got.r, got.err)
	}
}
