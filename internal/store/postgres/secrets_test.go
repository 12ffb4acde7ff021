package postgres

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// TestWebhookSecrets covers what `hookd migrate --reencrypt` uses: every
// organization's secrets, and a compare-and-set that loses to an edit.
func TestWebhookSecrets(t *testing.T) {
	ctx := context.Background()
	db := openSchema(t, TestURL(t))
	a, b, none := newHook(uuid.New()), newHook(uuid.New()), newHook(uuid.New())
	a.TargetSecret, b.TargetSecret = "secret-a", "secret-b"
	for _, w := range []*webhook.Webhook{a, b, none} {
		if err := db.WebhookCreate(ctx, w, 0); err != nil {
			t.Fatal(err)
		}
	}

	got, err := db.WebhookSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[0].OrganizationID != a.OrganizationID || got[0].TargetSecret != "secret-a" || got[1].ID != b.ID {
		t.Fatalf("WebhookSecrets = %+v", got)
	}

	if ok, err := db.WebhookSetSecret(ctx, a.OrganizationID, a.ID, "secret-a", "sealed-a"); err != nil || !ok {
		t.Fatalf("set = %v, %v", ok, err)
	}
	// Stale prev (edited meanwhile), wrong organization, missing webhook: no change.
	for _, c := range []struct{ org, id uuid.UUID }{{a.OrganizationID, a.ID}, {b.OrganizationID, a.ID}, {a.OrganizationID, uuid.New()}} {
		if ok, err := db.WebhookSetSecret(ctx, c.org, c.id, "secret-a", "other"); err != nil || ok {
			t.Errorf("set(%v, %v) = %v, %v; want false", c.org, c.id, ok, err)
		}
	}
	w, err := db.WebhookGet(ctx, a.OrganizationID, a.ID)
	if err != nil || w.TargetSecret != "sealed-a" || !w.UpdatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("after set: %+v, %v", w, err)
	}
}
