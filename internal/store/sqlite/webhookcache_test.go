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
			hooks, err := tx.orgWebhooks(ctx, w.OrganizationID)
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
		hooks, err := tx.orgWebhooks(ctx, w.OrganizationID)
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
			if _, err := tx.orgWebhooks(ctx, w.OrganizationID); err != nil {
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
		for i := range maxCached + 10 {
			if _, err := tx.orgWebhooks(ctx, uuid.Must(uuid.NewV7())); err != nil {
				return err
			}
			if n := len(db.hooks.orgs); n > maxCached || db.hooks.size > maxCached {
				return fmt.Errorf("after %d organizations the cache holds %d (size %d), want at most %d", i+1, n, db.hooks.size, maxCached)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWebhookCacheReused: what the cache is for. A second use, in
// another transaction, gets the webhooks the first opened, not new ones;
// after a change it gets new ones.
func TestWebhookCacheReused(t *testing.T) {
	ctx := context.Background()
	db, w, _ := openCache(t)
	use := func() *webhook.Webhook {
		t.Helper()
		var got *webhook.Webhook
		err := db.transact(ctx, func(tx *txn) error {
			hooks, err := tx.orgWebhooks(ctx, w.OrganizationID)
			if err == nil && len(hooks) == 1 {
				got = hooks[0]
			}
			return err
		})
		if err != nil || got == nil {
			t.Fatalf("reading the webhooks: %v, %v", got, err)
		}
		return got
	}
	first := use()
	// Another organization's in between (it has none) does not push it out.
	if err := db.transact(ctx, func(tx *txn) error {
		_, err := tx.orgWebhooks(ctx, uuid.Must(uuid.NewV7()))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if again := use(); again != first {
		t.Fatal("the second use opened the webhooks again; want the first use's, from the cache")
	}
	if err := db.transact(ctx, func(tx *txn) error { return setTarget(ctx, tx, w.ID, "https://example.com/moved") }); err != nil {
		t.Fatal(err)
	}
	if after := use(); after == first || after.TargetURL != "https://example.com/moved" {
		t.Fatalf("after a change: %q (the same webhook: %v), want it read again", after.TargetURL, after == first)
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

// TestWebhookCacheLargeOrganization: an organization with more webhooks
// than the cache's bound is read for each use, not kept.
func TestWebhookCacheLargeOrganization(t *testing.T) {
	ctx := context.Background()
	db, w, _ := openCache(t)
	big := uuid.Must(uuid.NewV7())
	err := db.transact(ctx, func(tx *txn) error {
		// Copies of w's row under big, with ids of their own.
		_, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO webhooks (`+webhookColumns+`)
			SELECT ?, lower(hex(randomblob(16))), created_at + i, updated_at, kind, target_url, target_secret,
				description, enabled, events, project_names_filter, environment_types_filter, disabled_reason, failing_since,
				previous_secret, secret_rotated_at
			FROM n, webhooks WHERE webhooks.id = ?`, maxCached, big, w.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	use := func() *webhook.Webhook {
		t.Helper()
		var first *webhook.Webhook
		err := db.transact(ctx, func(tx *txn) error {
			hooks, err := tx.orgWebhooks(ctx, big)
			if err == nil && len(hooks) != maxCached {
				return fmt.Errorf("%d webhooks, want %d", len(hooks), maxCached)
			}
			if err == nil {
				first = hooks[0]
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return first
	}
	// Read twice: the same pointer both times would be the cache's.
	if a, b := use(), use(); a == b {
		t.Fatalf("an organization of %d webhooks was kept; want it read for each use", maxCached)
	}
	if _, ok := db.hooks.orgs[big]; ok || db.hooks.size > maxCached {
		t.Fatalf("the cache holds the large organization (size %d)", db.hooks.size)
	}
}

// TestKeptHealth: an outcome's health change is skipped only when the
// webhook as this transaction sees it already has what the change would
// write, never on the strength of a row the transaction has changed since
// the cache read it, nor for an organization the cache does not hold.
func TestKeptHealth(t *testing.T) {
	ctx := context.Background()
	db, w, _ := openCache(t)
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	t1 := t0.Add(time.Minute)
	success := webhook.HealthChange{OrganizationID: w.OrganizationID, WebhookID: w.ID, Reset: true}
	failure := webhook.HealthChange{OrganizationID: w.OrganizationID, WebhookID: w.ID, Since: t1}
	failedAgainAfterSuccess := webhook.HealthChange{OrganizationID: w.OrganizationID, WebhookID: w.ID, Reset: true, Since: t0}
	failedLaterAfterSuccess := webhook.HealthChange{OrganizationID: w.OrganizationID, WebhookID: w.ID, Reset: true, Since: t1}
	disable := success
	disable.Disable = &webhook.Outcome{}
	otherOrg := success
	otherOrg.OrganizationID = uuid.Must(uuid.NewV7())

	err := db.transact(ctx, func(tx *txn) error {
		check := func(step string, want []bool, changes ...webhook.HealthChange) {
			t.Helper()
			got, err := keptHealth(ctx, tx, changes)
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: kept %v, want %v", step, got, want)
			}
		}
		check("not cached yet", []bool{false}, success)
		if _, err := tx.orgWebhooks(ctx, w.OrganizationID); err != nil {
			return err
		}
		check("healthy", []bool{true, false, false, false, false}, success, failure, failedAgainAfterSuccess, disable, otherOrg)

		// Failing since t0, written in this transaction after the cache
		// read the webhook healthy.
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET failing_since = ? WHERE id = ?`, micros(t0), w.ID); err != nil {
			return err
		}
		check("changed since read", []bool{false, false}, success, failure)
		if _, err := tx.orgWebhooks(ctx, w.OrganizationID); err != nil {
			return err
		}
		check("failing", []bool{false, true, true, false, false}, success, failure, failedAgainAfterSuccess, failedLaterAfterSuccess, disable)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
