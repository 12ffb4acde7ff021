package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

// SecretRewriter is what `hookd migrate --reencrypt` needs of a backend
// besides webhook.Store (secrets.Rewriter).
type SecretRewriter interface {
	webhook.Store
	WebhookSecrets(ctx context.Context) ([]*webhook.Webhook, error)
	WebhookSetSecrets(ctx context.Context, was, sealed *webhook.Webhook) (bool, error)
}

// RunSecretRewrite checks s, an empty store opened with keys, lists
// every organization's sealed fields (target URL, secret, previous
// secret) as stored, and rewrites them with a compare-and-set that loses
// to an edit.
func RunSecretRewrite(t *testing.T, s SecretRewriter, keys *secrets.Keyring) {
	ctx := context.Background()
	a, b, none := newWebhook(t, newID(t)), newWebhook(t, newID(t)), newWebhook(t, newID(t))
	a.TargetSecret, b.TargetSecret, none.TargetSecret = "secret-a", "secret-b", "" // no secret: the URL is still sealed
	a.PreviousSecret, a.SecretRotatedAt = "old-a", a.UpdatedAt
	a.TargetURL = "https://user:pass-a@example.com/a"
	for _, w := range []*webhook.Webhook{a, b, none} {
		createWebhook(t, s, w)
	}

	got, err := s.WebhookSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sealedOf := func(w *webhook.Webhook) [3]string { return [3]string{w.TargetURL, w.TargetSecret, w.PreviousSecret} }
	// As stored: sealed, bound to their webhook, and opening to what was written.
	opened := func(w *webhook.Webhook) [3]string {
		if w.TargetURL == "" || !strings.HasPrefix(w.TargetURL, "enc:v1:") {
			t.Errorf("WebhookSecrets: webhook %s's URL is not as stored, sealed", w.ID)
		}
		o := *w
		if err := keys.OpenWebhook(&o); err != nil {
			t.Fatalf("WebhookSecrets: webhook %s: %v", w.ID, err)
		}
		return sealedOf(&o)
	}
	if len(got) != 3 || got[0].ID != a.ID || got[0].OrganizationID != a.OrganizationID ||
		opened(got[0]) != [3]string{a.TargetURL, "secret-a", "old-a"} ||
		got[1].ID != b.ID || opened(got[1]) != [3]string{b.TargetURL, "secret-b", ""} ||
		got[2].ID != none.ID || opened(got[2]) != [3]string{none.TargetURL, "", ""} {
		t.Fatalf("WebhookSecrets = %+v", got)
	}

	stored := func(edit func(w *webhook.Webhook)) *webhook.Webhook {
		w := webhook.Webhook{OrganizationID: a.OrganizationID, ID: a.ID, TargetURL: "sealed-url-a", TargetSecret: "sealed-a", PreviousSecret: "sealed-old-a"}
		edit(&w)
		return &w
	}
	if ok, err := s.WebhookSetSecrets(ctx, got[0], stored(func(*webhook.Webhook) {})); err != nil || !ok {
		t.Fatalf("set = %v, %v", ok, err)
	}
	// Stale URL, secret or previous secret (edited meanwhile), wrong
	// organization, missing webhook: no change.
	other := stored(func(w *webhook.Webhook) { w.TargetURL, w.TargetSecret, w.PreviousSecret = "other", "other", "other" })
	for name, was := range map[string]*webhook.Webhook{
		"stale URL":             stored(func(w *webhook.Webhook) { w.TargetURL = a.TargetURL }),
		"stale secret":          stored(func(w *webhook.Webhook) { w.TargetSecret = "secret-a" }),
		"stale previous secret": stored(func(w *webhook.Webhook) { w.PreviousSecret = "old-a" }),
		"other organization":    stored(func(w *webhook.Webhook) { w.OrganizationID = b.OrganizationID }),
		"missing webhook":       stored(func(w *webhook.Webhook) { w.ID = uuid.New() }),
	} {
		if ok, err := s.WebhookSetSecrets(ctx, was, other); err != nil || ok {
			t.Errorf("%s: set = %v, %v; want false", name, ok, err)
		}
	}
	w := getWebhook(t, s, a.OrganizationID, a.ID)
	if sealedOf(w) != [3]string{"sealed-url-a", "sealed-a", "sealed-old-a"} || !w.UpdatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("after set: %+v", w)
	}
}
