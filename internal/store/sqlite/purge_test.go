package sqlite

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

func TestNextDeleteBatch(t *testing.T) {
	for _, c := range []struct {
		limit int
		took  time.Duration
		want  int
	}{
		{100, deleteHold, 100},      // on time: the same again
		{100, 2 * deleteHold, 50},   // twice as long: half
		{100, 4 * deleteHold, 25},   //
		{100, 10 * deleteHold, 25},  // far too long: a quarter at most at once
		{100, deleteHold / 10, 200}, // much quicker: twice at most
		{100, 0, 200},               // no time measured at all
		{800, deleteHold / 2, 1000}, // never past the most
		{1000, 0, 1000},             //
		{10, 100 * deleteHold, 2},   //
		{3, time.Second, 1},         // one row at the least
		{1, time.Second, 1},         //
		{50, deleteHold * 5 / 4, 40},
		{50, deleteHold * 3 / 2, 33}, // rounded down
	} {
		if got := nextDeleteBatch(c.limit, c.took); got != c.want {
			t.Errorf("nextDeleteBatch(%d, %v) = %d, want %d", c.limit, c.took, got, c.want)
		}
	}
}

func TestPurgePace(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	p := purgePace{groups: 10}
	for i, c := range []struct {
		groups uint64
		after  time.Duration // since at
		want   bool
	}{
		{11, 0, false},                                // only its own batch: alone, no pause
		{12, time.Millisecond, false},                 //
		{14, 2 * time.Millisecond, true},              // two others since: pause
		{15, 3 * time.Millisecond, true},              // only its own, but others wrote just now
		{16, 2*time.Millisecond + deleteQuiet, true},  // deleteQuiet after them: still pausing
		{17, 3*time.Millisecond + deleteQuiet, false}, // quiet for longer: on it goes
		{19, time.Second, true},                       // others again
	} {
		if got := p.pause(c.groups, at.Add(c.after)); got != c.want {
			t.Errorf("step %d (count %d at +%v): pause %v, want %v", i, c.groups, c.after, got, c.want)
		}
	}
}

// TestDeleteInBatches: batches follow the time their statements take,
// and the purge ends at the first batch that deletes fewer than it may.
func TestDeleteInBatches(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	var limits []int
	left := 200
	total, err := db.deleteInBatches(ctx, func(tx *txn, limit int) (int, error) {
		limits = append(limits, limit)
		if len(limits) == 1 {
			// Ten times too slow: the next batch is a quarter as large.
			time.Sleep(10 * deleteHold)
		}
		n := min(limit, left)
		left -= n
		return n, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total != 200 || left != 0 {
		t.Errorf("deleted %d, %d left; want 200 and none", total, left)
	}
	if len(limits) < 2 || limits[0] != deleteBatchFirst || limits[1] > max(1, deleteBatchFirst/4) {
		t.Fatalf("limits %v; want %d, then at most %d after a batch ten times too slow", limits, deleteBatchFirst, max(1, deleteBatchFirst/4))
	}
	for i := 2; i < len(limits); i++ {
		if limits[i] > 2*limits[i-1] {
			t.Errorf("limits %v: batch %d more than doubled", limits, i)
		}
	}

	// A full batch that leaves nothing is followed by one that finds
	// nothing, which ends the purge.
	calls, left := 0, deleteBatchFirst
	total, err = db.deleteInBatches(ctx, func(tx *txn, limit int) (int, error) {
		calls++
		n := min(limit, left)
		left -= n
		return n, nil
	})
	if err != nil || total != deleteBatchFirst || calls != 2 {
		t.Errorf("deleted %d in %d batches (%v); want %d in 2", total, calls, err, deleteBatchFirst)
	}
}

// TestPurgeOrphans: orphans names the webhooks gone with deliveries left,
// and purgeOrphans deletes those deliveries with their attempts; a
// webhook named an orphan by mistake (here: one that exists) loses
// nothing, as each batch looks at the webhook again.
func TestPurgeOrphans(t *testing.T) {
	ctx := context.Background()
	db := openMigrated(t)
	org := uuid.Must(uuid.NewV7())
	at := time.Now()
	hooks := make([]*webhook.Webhook, 3)
	for i := range hooks {
		hooks[i] = &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, UpdatedAt: at,
			Kind: webhook.KindStandard, TargetURL: "https://example.com", Enabled: true, Events: webhook.EventTypes}
		if err := db.WebhookCreate(ctx, hooks[i], 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	events := make([]*webhook.Event, 40)
	for i := range events {
		events[i] = &webhook.Event{OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	}
	if _, err := db.EventsCreate(ctx, events, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	// The first two lose their rows behind the purger's back (no wake),
	// once its first pass is over.
	<-db.purger.FirstPass()
	for _, w := range hooks[:2] {
		if err := db.transact(ctx, func(tx *txn) error {
			_, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, w.ID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(w *webhook.Webhook) int {
		t.Helper()
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE webhook_id = ?`, key(w.ID)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	got, err := db.orphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []orphan{{org, hooks[0].ID}, {org, hooks[1].ID}}
	slices.SortFunc(want, func(a, b orphan) int { return bytes.Compare(a.id[:], b.id[:]) })
	if !slices.Equal(got, want) {
		t.Fatalf("orphans = %v, want %v", got, want)
	}
	if err := db.purgeOrphans(ctx, []orphan{{org, hooks[2].ID}}); err != nil {
		t.Fatal(err)
	}
	if n := count(hooks[2]); n != 40 {
		t.Fatalf("a webhook that exists kept %d of its 40 deliveries", n)
	}
	if err := db.purgeOrphans(ctx, got); err != nil {
		t.Fatal(err)
	}
	for i, w := range hooks {
		if n, want := count(w), []int{0, 0, 40}[i]; n != want {
			t.Errorf("webhook %d has %d deliveries, want %d", i, n, want)
		}
	}
	if got, err := db.orphans(ctx); err != nil || len(got) != 0 {
		t.Fatalf("orphans after the purge: %v (%v), want none", got, err)
	}
}

// The purger starts with the first Migrate, and only once. (That Close
// stops it is purge.Purger's test.)
func TestPurgerLifecycle(t *testing.T) {
	db := openFresh(t)
	if db.purger != nil {
		t.Fatal("a purger before Migrate")
	}
	db.purger.Wake() // nothing to wake yet, and no panic
	ctx := context.Background()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	p := db.purger
	if p == nil {
		t.Fatal("no purger after Migrate")
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if db.purger != p {
		t.Fatal("a second Migrate started another purger")
	}
}

// A pass that fails (here: a trigger refuses every delete of a delivery)
// is tried again purgeRetry later, with nothing to wake the purger.
func TestPurgerRetries(t *testing.T) {
	// Put back after the database closes (cleanups run last first), so
	// no purger reads it meanwhile.
	was := purgeRetry
	t.Cleanup(func() { purgeRetry = was })
	purgeRetry = 50 * time.Millisecond
	ctx := context.Background()
	db := openFresh(t)
	var reported atomic.Pointer[error]
	db.ReportPurgeErrors(func(err error) { reported.Store(&err) })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	org := uuid.Must(uuid.NewV7())
	at := time.Now()
	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, UpdatedAt: at,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", Enabled: true, Events: webhook.EventTypes}
	if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EventsCreate(ctx, []*webhook.Event{{OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentStarted,
		ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	exec := func(q string) {
		t.Helper()
		if err := db.transact(ctx, func(tx *txn) error {
			_, err := tx.tx.ExecContext(ctx, q)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	left := func() int {
		t.Helper()
		var n int
		if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM deliveries`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	exec(`CREATE TRIGGER refuse BEFORE DELETE ON deliveries BEGIN SELECT RAISE(ABORT, 'refused'); END`)
	if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * purgeRetry) // a pass, and a retry or two, all refused
	if n := left(); n != 1 {
		t.Fatalf("%d deliveries left while every delete is refused, want 1", n)
	}
	if err := reported.Load(); err == nil || !strings.Contains((*err).Error(), "refused") {
		t.Fatalf("reported %v, want the refusal", err)
	}
	exec(`DROP TRIGGER refuse`)
	storetest.Eventually(t, 10*time.Second, func() string {
		if left() != 0 {
			return "the purger did not try again after a failed pass"
		}
		return ""
	})
}
