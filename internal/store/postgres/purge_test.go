package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// orphans names the webhooks gone with deliveries left, and purgeOrphans
// deletes those deliveries with their attempts; a webhook named an
// orphan by mistake (here: one that exists) loses nothing, as each batch
// looks at the webhook again. A node that starts (Migrate) purges what
// was left, with nothing to wake it.
func TestPurgeOrphans(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.URL(t))
	db := openIn(t, dsn, storetest.Keys(t))
	ctx := context.Background()
	org := uuid.New()
	hooks := []*webhook.Webhook{newHook(org), newHook(org), newHook(org)}
	for _, h := range hooks {
		storeHooks(t, db, h)
		writeHistory(t, db, org, h.ID, 30)
	}
	// The first two lose their rows behind the purger's back (no wake),
	// once its first pass is over.
	<-db.purger.FirstPass()
	for _, h := range hooks[:2] {
		if _, err := db.pool.Exec(ctx, `DELETE FROM webhooks WHERE organization_id = $1 AND id = $2`, org, h.ID); err != nil {
			t.Fatal(err)
		}
	}
	count := func(h *webhook.Webhook) (deliveries, attempts int) {
		t.Helper()
		if err := db.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM deliveries WHERE webhook_id = $1),
			(SELECT count(*) FROM attempts WHERE webhook_id = $1)`, h.ID).Scan(&deliveries, &attempts); err != nil {
			t.Fatal(err)
		}
		return deliveries, attempts
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
	if d, a := count(hooks[2]); d != 30 || a != 30 {
		t.Fatalf("a webhook that exists kept %d deliveries and %d attempts of 30 each", d, a)
	}

	// Another node starts: its first pass purges the orphans.
	openIn(t, dsn, storetest.Keys(t))
	storetest.Eventually(t, 30*time.Second, func() string {
		d0, a0 := count(hooks[0])
		d1, a1 := count(hooks[1])
		if d0+a0+d1+a1 != 0 {
			return fmt.Sprintf("the deleted webhooks keep %d deliveries and %d attempts after a node started", d0+d1, a0+a1)
		}
		return ""
	})
	if d, a := count(hooks[2]); d != 30 || a != 30 {
		t.Fatalf("the webhook that exists has %d deliveries and %d attempts, want 30 each", d, a)
	}
	if got, err := db.orphans(ctx); err != nil || len(got) != 0 {
		t.Fatalf("orphans after the purge: %v (%v), want none", got, err)
	}
}

// A node's purger looks again purgeSweep after its last pass, with
// nothing to wake it: what another node's crash in the middle of a pass
// left goes without waiting for a node to start or a webhook's delete.
func TestPurgeSweeps(t *testing.T) {
	was := purgeSweep
	t.Cleanup(func() { purgeSweep = was })
	purgeSweep = 50 * time.Millisecond
	db := openIn(t, pgtest.Schema(t, pgtest.URL(t)), storetest.Keys(t))
	ctx := context.Background()
	org := uuid.New()
	gone, kept := newHook(org), newHook(org)
	for _, h := range []*webhook.Webhook{gone, kept} {
		storeHooks(t, db, h)
		writeHistory(t, db, org, h.ID, 10)
	}
	// The row goes as another node's delete would, that node crashing
	// before its purger got to the deliveries: nothing wakes this one,
	// whose first pass is over.
	<-db.purger.FirstPass()
	if _, err := db.pool.Exec(ctx, `DELETE FROM webhooks WHERE organization_id = $1 AND id = $2`, org, gone.ID); err != nil {
		t.Fatal(err)
	}
	count := func(h *webhook.Webhook) (n int) {
		t.Helper()
		if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE webhook_id = $1`, h.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	storetest.Eventually(t, 30*time.Second, func() string {
		if n := count(gone); n != 0 {
			return fmt.Sprintf("the deleted webhook keeps %d deliveries, with no sweep", n)
		}
		return ""
	})
	if n := count(kept); n != 10 {
		t.Fatalf("the webhook that exists has %d deliveries, want 10", n)
	}
}
