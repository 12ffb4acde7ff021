package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// TestWebhookSecrets covers what `hookd migrate --reencrypt` uses: every
// organization's secrets, current and previous, and a compare-and-set
// that loses to an edit.
func TestWebhookSecrets(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "hookd.db"))
	now := time.Now().UTC().Truncate(time.Microsecond)
	hook := func(org uuid.UUID, secret string) *webhook.Webhook {
		w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now, UpdatedAt: now,
			Kind: webhook.KindStandard, TargetURL: "https://example.com", TargetSecret: secret, Enabled: true,
			Events: webhook.EventTypes}
		if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
			t.Fatal(err)
		}
		return w
	}
	a := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: uuid.New(), CreatedAt: now, UpdatedAt: now,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", TargetSecret: "secret-a", Enabled: true,
		Events: webhook.EventTypes, PreviousSecret: "old-a", SecretRotatedAt: now}
	if err := db.WebhookCreate(ctx, a, 0, nil); err != nil {
		t.Fatal(err)
	}
	b := hook(uuid.New(), "secret-b")
	hook(uuid.New(), "") // no secret: nothing to rewrite

	got, err := db.WebhookSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[0].OrganizationID != a.OrganizationID || got[0].TargetSecret != "secret-a" || got[0].PreviousSecret != "old-a" ||
		got[1].ID != b.ID || got[1].TargetSecret != "secret-b" || got[1].PreviousSecret != "" {
		t.Fatalf("WebhookSecrets = %+v", got)
	}

	if ok, err := db.WebhookSetSecrets(ctx, got[0], "sealed-a", "sealed-old-a"); err != nil || !ok {
		t.Fatalf("set = %v, %v", ok, err)
	}
	// Stale secret or previous secret (edited meanwhile), wrong
	// organization, missing webhook: no change.
	stored := func(edit func(w *webhook.Webhook)) *webhook.Webhook {
		w := webhook.Webhook{OrganizationID: a.OrganizationID, ID: a.ID, TargetSecret: "sealed-a", PreviousSecret: "sealed-old-a"}
		edit(&w)
		return &w
	}
	for name, was := range map[string]*webhook.Webhook{
		"stale secret":          stored(func(w *webhook.Webhook) { w.TargetSecret = "secret-a" }),
		"stale previous secret": stored(func(w *webhook.Webhook) { w.PreviousSecret = "old-a" }),
		"other organization":    stored(func(w *webhook.Webhook) { w.OrganizationID = b.OrganizationID }),
		"missing webhook":       stored(func(w *webhook.Webhook) { w.ID = uuid.New() }),
	} {
		if ok, err := db.WebhookSetSecrets(ctx, was, "other", "other"); err != nil || ok {
			t.Errorf("%s: set = %v, %v; want false", name, ok, err)
		}
	}
	w, err := db.WebhookGet(ctx, a.OrganizationID, a.ID)
	if err != nil || w.TargetSecret != "sealed-a" || w.PreviousSecret != "sealed-old-a" || !w.UpdatedAt.Equal(now) {
		t.Fatalf("after set: %+v, %v", w, err)
	}
}
