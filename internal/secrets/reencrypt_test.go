package secrets_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/webhook"
)

// These tests run the keyring with a real backend, which imports this
// package: hence package secrets_test.

const (
	secret         = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1sZWFr"
	previousSecret = "whsec_cHJldmlvdXMtc2VjcmV0LW5ldmVyLWxlYWtz"
)

func newKey(t *testing.T) string {
	t.Helper()
	k, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyring(t *testing.T, keys ...string) *secrets.Keyring {
	t.Helper()
	k, err := secrets.ParseKeys(strings.Join(keys, ","))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openSQLite opens the database at path sealing with keys, as a hookd
// started with those keys would; several may be open on one file.
func openSQLite(t *testing.T, path string, keys *secrets.Keyring) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestReencrypt: values sealed with an old key and values stored in
// clear by an older hookd both read with [new, old], Reencrypt moves
// them all to the new key, after which the new key alone reads them and
// the old key alone does not.
func TestReencrypt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	oldKey, nextKey := newKey(t), newKey(t)
	org := uuid.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	hook := func(secret string) *webhook.Webhook {
		return &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now, UpdatedAt: now,
			Kind: webhook.KindStandard, TargetURL: "https://example.com", TargetSecret: secret, Enabled: true,
			Events: webhook.EventTypes}
	}
	sealedHook, noSecret, legacy := hook(secret), hook(""), hook("legacy-plain")
	sealedHook.PreviousSecret, sealedHook.SecretRotatedAt = previousSecret, now
	legacy.PreviousSecret, legacy.SecretRotatedAt = "legacy-previous", now
	old := openSQLite(t, path, keyring(t, oldKey))
	for _, w := range []*webhook.Webhook{sealedHook, noSecret} {
		if err := old.WebhookCreate(ctx, w, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	// As stored before encryption: an empty keyring writes in clear.
	if err := openSQLite(t, path, keyring(t)).WebhookCreate(ctx, legacy, 0, nil); err != nil {
		t.Fatal(err)
	}

	rotated := keyring(t, nextKey, oldKey)
	db := openSQLite(t, path, rotated)
	list, err := db.WebhookList(ctx, org)
	if err != nil || len(list) != 3 || list[0].TargetSecret != secret || list[0].PreviousSecret != previousSecret ||
		list[1].TargetSecret != "" || list[2].TargetSecret != "legacy-plain" || list[2].PreviousSecret != "legacy-previous" {
		t.Fatalf("WebhookList with [new, old] = %v, %v", list, err)
	}
	res, err := secrets.Reencrypt(ctx, db, rotated)
	// Three: the webhook without a secret has its URL sealed too.
	if err != nil || res != (secrets.ReencryptResult{Rewritten: 3}) {
		t.Fatalf("Reencrypt = %+v, %v", res, err)
	}
	if res, err := secrets.Reencrypt(ctx, db, rotated); err != nil || res != (secrets.ReencryptResult{Current: 3}) {
		t.Fatalf("Reencrypt again = %+v, %v", res, err)
	}
	stored, err := db.WebhookSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	only := keyring(t, nextKey)
	for _, w := range stored {
		for _, f := range secrets.SealedFields(w) {
			if !only.Current(*f) {
				t.Errorf("after Reencrypt webhook %s still has a value not sealed with the new key", w.ID)
			}
		}
	}
	list, err = openSQLite(t, path, only).WebhookList(ctx, org)
	if err != nil || list[0].TargetSecret != secret || list[0].PreviousSecret != previousSecret ||
		list[2].TargetSecret != "legacy-plain" || list[2].PreviousSecret != "legacy-previous" {
		t.Fatalf("WebhookList with the new key alone = %v, %v", list, err)
	}
	// The old key alone can no longer open them: read, they are marked
	// and hold no secret; edited, a clear error names the key, and no
	// secret.
	oldOnly := openSQLite(t, path, keyring(t, oldKey))
	got, err := oldOnly.WebhookGet(ctx, org, sealedHook.ID)
	if err != nil || !secrets.Unreadable(got.Unreadable) || got.TargetSecret != "" || got.TargetURL != "" {
		t.Errorf("WebhookGet with a missing key: %v, marked %v; want it marked, its sealed fields empty", err, got != nil && got.Unreadable != nil)
	}
	_, err = oldOnly.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: sealedHook.ID,
		Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) { return nil, nil }})
	if !errors.Is(err, secrets.ErrUnknownKey) || !strings.Contains(err.Error(), only.NewestID()) || strings.Contains(err.Error(), secret) {
		t.Errorf("WebhookUpdate with a missing key = %v", err)
	}
}

// TestReencryptSources moves every source secret, sealed with the old key
// or stored in clear, to the newest key and leaves the old key unneeded.
func TestReencryptSources(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	oldKey, nextKey := newKey(t), newKey(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	org := uuid.New()
	var refs []webhook.SourceRef
	for i, secretValue := range []string{"one", "two"} {
		src := &webhook.Source{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now.Add(time.Duration(i)), UpdatedAt: now,
			Kind: webhook.SourceFlux, Name: secretValue, Secret: secretValue, EnvironmentTypes: []webhook.EnvironmentRule{}}
		keys := keyring(t, oldKey)
		if i == 1 {
			keys = keyring(t) // stored before encryption
		}
		if err := openSQLite(t, path, keys).SourceCreate(ctx, src, 0, nil); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, webhook.SourceRef{OrganizationID: org, ID: src.ID})
	}
	keys := keyring(t, nextKey, oldKey)
	db := openSQLite(t, path, keys)
	if res, err := secrets.ReencryptSources(ctx, db, keys); err != nil || res != (secrets.ReencryptResult{Rewritten: 2}) {
		t.Fatalf("ReencryptSources = %+v, %v", res, err)
	}
	if res, err := secrets.ReencryptSources(ctx, db, keys); err != nil || res != (secrets.ReencryptResult{Current: 2}) {
		t.Fatalf("ReencryptSources again = %+v, %v", res, err)
	}
	only := openSQLite(t, path, keyring(t, nextKey))
	for i, want := range []string{"one", "two"} {
		if got, err := only.SourceGet(ctx, refs[i]); err != nil || got.Secret != want {
			t.Errorf("with the new key alone, source %d = %+v, %v", i, got, err)
		}
	}
}
