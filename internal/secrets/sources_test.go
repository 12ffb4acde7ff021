package secrets

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// TestSourceSecret: a source's secret is sealed in the database, bound to
// the source, and its callers see it in plaintext.
func TestSourceSecret(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	s := &Store{Store: db, Keys: keyring(t, newKey(t))}
	now := time.Now().UTC().Truncate(time.Microsecond)
	src := &webhook.Source{ID: uuid.Must(uuid.NewV7()), OrganizationID: uuid.New(), CreatedAt: now, UpdatedAt: now,
		Kind: webhook.SourceGitHub, Name: "gh", Secret: secret, EnvironmentTypes: []webhook.EnvironmentRule{}}
	if err := s.SourceCreate(ctx, src, nil); err != nil {
		t.Fatal(err)
	}
	if src.Secret != secret {
		t.Error("SourceCreate changed the caller's source")
	}
	ref := webhook.SourceRef{OrganizationID: src.OrganizationID, ID: src.ID}
	raw, err := db.SourceGet(ctx, ref)
	if err != nil || !strings.HasPrefix(raw.Secret, "enc:v1:") || strings.Contains(raw.Secret, secret) {
		t.Fatalf("the stored secret is %q (%v), want it sealed", raw.Secret, err)
	}
	if _, err := s.Keys.Open(uuid.New(), raw.Secret); !errors.Is(err, ErrCorrupt) {
		t.Errorf("the sealed secret opened for another row: %v", err)
	}
	got, err := s.SourceGet(ctx, ref)
	if err != nil || got.Secret != secret {
		t.Fatalf("SourceGet = %+v, %v", got, err)
	}
	list, err := s.SourceList(ctx, src.OrganizationID)
	if err != nil || len(list) != 1 || list[0].Secret != secret {
		t.Fatalf("SourceList = %+v, %v", list, err)
	}
	got.Name = "renamed"
	if err := s.SourceUpdate(ctx, got, nil); err != nil {
		t.Fatal(err)
	}
	if raw2, _ := db.SourceGet(ctx, ref); raw2.Secret == raw.Secret || !strings.HasPrefix(raw2.Secret, "enc:v1:") {
		t.Errorf("after an edit the secret is stored as %q", raw2.Secret)
	}
	// Another key cannot read it: a clear error, no secret.
	_, err = (&Store{Store: db, Keys: keyring(t, newKey(t))}).SourceGet(ctx, ref)
	if !errors.Is(err, ErrUnknownKey) || strings.Contains(err.Error(), secret) {
		t.Errorf("SourceGet with a missing key = %v", err)
	}
}

// TestReencryptSources moves every source secret to the newest key and
// leaves the old key unneeded.
func TestReencryptSources(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	oldKey, nextKey := newKey(t), newKey(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	org := uuid.New()
	var refs []webhook.SourceRef
	for i, secretValue := range []string{"one", "two"} {
		src := &webhook.Source{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now.Add(time.Duration(i)), UpdatedAt: now,
			Kind: webhook.SourceFlux, Name: secretValue, Secret: secretValue, EnvironmentTypes: []webhook.EnvironmentRule{}}
		store := &Store{Store: db, Keys: keyring(t, oldKey)}
		if i == 1 {
			store = &Store{Store: db, Keys: keyring(t)} // stored before encryption
		}
		if err := store.SourceCreate(ctx, src, nil); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, webhook.SourceRef{OrganizationID: org, ID: src.ID})
	}
	keys := keyring(t, nextKey, oldKey)
	if res, err := ReencryptSources(ctx, db, keys); err != nil || res != (ReencryptResult{Rewritten: 2}) {
		t.Fatalf("ReencryptSources = %+v, %v", res, err)
	}
	if res, err := ReencryptSources(ctx, db, keys); err != nil || res != (ReencryptResult{Current: 2}) {
		t.Fatalf("ReencryptSources again = %+v, %v", res, err)
	}
	only := &Store{Store: db, Keys: keyring(t, nextKey)}
	for i, want := range []string{"one", "two"} {
		if got, err := only.SourceGet(ctx, refs[i]); err != nil || got.Secret != want {
			t.Errorf("with the new key alone, source %d = %+v, %v", i, got, err)
		}
	}
}
