package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// openMigrated opens a new, migrated database, closed when t ends.
func openMigrated(t *testing.T) *DB {
	t.Helper()
	db := openFresh(t)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// openCache opens a migrated database holding one webhook of one
// organization, and returns a function that reads that webhook's target
// through the writer's cache (webhookCache), in a transaction of its own.
func openCache(t *testing.T) (db *DB, w *webhook.Webhook, target func(step string) string) {
	t.Helper()
	ctx := context.Background()
	db = openMigrated(t)
	w = &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: uuid.Must(uuid.NewV7()), CreatedAt: time.Now(),
		UpdatedAt: time.Now(), Kind: webhook.KindStandard, TargetURL: "https://example.com/kept", Enabled: true,
		Events: webhook.EventTypes}
	if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	target = func(step string) string {
		t.Helper()
		var url string
		err := db.transact(ctx, func(tx *txn) error {
			hooks, err := tx.orgWebhooks(ctx, w.OrganizationID, map[uuid.UUID]error{})
			if err == nil && len(hooks) == 1 {
				url = hooks[0].TargetURL
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return url
	}
	return db, w, target
}

func setTarget(ctx context.Context, tx *txn, id uuid.UUID, url string) error {
	_, err := tx.ExecContext(ctx, `UPDATE webhooks SET target_url = ? WHERE id = ?`, url, id)
	return err
}

// TestWebhookCacheSameTransaction: a use of the cache sees the changes
// made before it in its own transaction (an intake grouped after an edit
// in the writer's group), not only committed ones.
func TestWebhookCacheSameTransaction(t *testing.T) {
	ctx := context.Background()
	db, w, target := openCache(t)
	if got := target("before"); got != w.TargetURL {
		t.Fatalf("before: %q", got)
	}
	var got string
	err := db.transact(ctx, func(tx *txn) error {
		if err := setTarget(ctx, tx, w.ID, "https://example.com/moved"); err != nil {
			return err
		}
		hooks, err := tx.orgWebhooks(ctx, w.OrganizationID, map[uuid.UUID]error{})
		if err == nil && len(hooks) == 1 {
			got = hooks[0].TargetURL
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != "https://example.com/moved" {
		t.Fatalf("after an edit in the same transaction: %q, want the new target", got)
	}
}

// TestWebhookCacheRollback: the cache may be filled inside a transaction
// that changed the webhooks and then rolled back. What it kept then must
// not be served once the rows are back, nor after a later change.
func TestWebhookCacheRollback(t *testing.T) {
	ctx := context.Background()
	db, w, target := openCache(t)
	// setAndRead changes the target, reads the webhooks (the cache keeps
	// them) and, if fail, rolls back.
	setAndRead := func(url string, fail error) error {
		return db.transact(ctx, func(tx *txn) error {
			if err := setTarget(ctx, tx, w.ID, url); err != nil {
				return err
			}
			if _, err := tx.orgWebhooks(ctx, w.OrganizationID, map[uuid.UUID]error{}); err != nil {
				return err
			}
			return fail
		})
	}
	if got := target("before"); got != w.TargetURL {
		t.Fatalf("before: %q", got)
	}
	boom := errors.New("boom")
	if err := setAndRead("https://example.com/rolled-back", boom); !errors.Is(err, boom) {
		t.Fatalf("the failing transaction: %v", err)
	}
	if got := target("after the rollback"); got != w.TargetURL {
		t.Fatalf("after the rollback: %q, want %q", got, w.TargetURL)
	}
	// Rolled back and changed again, many times: a version that counted
	// changes would give the rolled-back one's number to the next change.
	for i := range 20 {
		if err := setAndRead(fmt.Sprintf("https://example.com/rolled-back-%d", i), boom); !errors.Is(err, boom) {
			t.Fatal(err)
		}
		want := fmt.Sprintf("https://example.com/committed-%d", i)
		if err := db.transact(ctx, func(tx *txn) error { return setTarget(ctx, tx, w.ID, want) }); err != nil {
			t.Fatal(err)
		}
		if got := target("after a change"); got != want {
			t.Fatalf("after a rollback and a change: %q, want %q", got, want)
		}
	}
}

// TestWebhookCacheBounded: organizations without webhooks (their events
// still come) take room too, and the cache starts over past maxCached.
func TestWebhookCacheBounded(t *testing.T) {
	ctx := context.Background()
	db, _, _ := openCache(t)
	err := db.transact(ctx, func(tx *txn) error {
		for range maxCached + 10 {
			if _, err := tx.orgWebhooks(ctx, uuid.Must(uuid.NewV7()), map[uuid.UUID]error{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(db.hooks.orgs); n > maxCached || db.hooks.size > maxCached {
		t.Fatalf("the cache holds %d organizations (size %d), want at most %d", n, db.hooks.size, maxCached)
	}
}

// TestWebhooksVersionTriggers: the cache is only as good as the triggers
// that move the version. A migration that rebuilds the webhooks table
// drops them; this says so plainly rather than through stale webhooks.
func TestWebhooksVersionTriggers(t *testing.T) {
	db, _, _ := openCache(t)
	rows, err := db.read.QueryContext(context.Background(),
		`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'webhooks' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		got = append(got, name)
	}
	want := []string{"webhooks_deleted", "webhooks_inserted", "webhooks_updated"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("triggers on webhooks: %v, want %v (see migration 0045)", got, want)
	}
}
