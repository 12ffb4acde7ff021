package postgres

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// TestWebhookSecrets covers what `hookd migrate --reencrypt` uses: every
// organization's secrets, current and previous, and a compare-and-set
// that loses to an edit.
func TestWebhookSecrets(t *testing.T) {
	ctx := context.Background()
	db := openSchema(t, TestURL(t))
	a, b, none := newHook(uuid.New()), newHook(uuid.New()), newHook(uuid.New())
	a.TargetSecret, b.TargetSecret = "secret-a", "secret-b"
	a.PreviousSecret, a.SecretRotatedAt = "old-a", a.UpdatedAt
	for _, w := range []*webhook.Webhook{a, b, none} {
		if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
			t.Fatal(err)
		}
	}

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
	if err != nil || w.TargetSecret != "sealed-a" || w.PreviousSecret != "sealed-old-a" || !w.UpdatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("after set: %+v, %v", w, err)
	}
}
