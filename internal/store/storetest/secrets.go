package storetest

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// SecretRewriter is what `hookd migrate --reencrypt` needs of a backend
// besides webhook.Store (secrets.Rewriter).
type SecretRewriter interface {
	webhook.Store
	WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error)
	WebhookSetSecrets(ctx context.Context, was *webhook.Webhook, target, previous string) (bool, error)
}

// RunSecretRewrite checks s, an empty store, lists every organization's
// secrets, current and previous, and rewrites them with a compare-and-set
// that loses to an edit.
func RunSecretRewrite(t *testing.T, s SecretRewriter) {
	ctx := context.Background()
	a, b, none := newWebhook(t, newID(t)), newWebhook(t, newID(t)), newWebhook(t, newID(t))
	a.TargetSecret, b.TargetSecret, none.TargetSecret = "secret-a", "secret-b", "" // no secret: nothing to rewrite
	a.PreviousSecret, a.SecretRotatedAt = "old-a", a.UpdatedAt
	for _, w := range []*webhook.Webhook{a, b, none} {
		createWebhook(t, s, w)
	}

	got, err := s.WebhookSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[0].OrganizationID != a.OrganizationID || got[0].TargetSecret != "secret-a" || got[0].PreviousSecret != "old-a" ||
		got[1].ID != b.ID || got[1].TargetSecret != "secret-b" || got[1].PreviousSecret != "" {
		t.Fatalf("WebhookSecrets = %+v", got)
	}

	if ok, err := s.WebhookSetSecrets(ctx, got[0], "sealed-a", "sealed-old-a"); err != nil || !ok {
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
		if ok, err := s.WebhookSetSecrets(ctx, was, "other", "other"); err != nil || ok {
			t.Errorf("%s: set = %v, %v; want false", name, ok, err)
		}
	}
	w := getWebhook(t, s, a.OrganizationID, a.ID)
	if w.TargetSecret != "sealed-a" || w.PreviousSecret != "sealed-old-a" || !w.UpdatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("after set: %+v", w)
	}
}
