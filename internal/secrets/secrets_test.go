package secrets

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/webhook"
)

func newKey(t *testing.T) string {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyring(t *testing.T, keys ...string) *Keyring {
	t.Helper()
	k, err := ParseKeys(strings.Join(keys, ","))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	secret         = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1sZWFr"
	previousSecret = "whsec_cHJldmlvdXMtc2VjcmV0LW5ldmVyLWxlYWtz"
)

func TestSealOpen(t *testing.T) {
	k := keyring(t, newKey(t))
	id := uuid.New()
	a, err := k.Seal(id, secret)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Seal(id, secret)
	if a == b {
		t.Error("two seals of one secret are equal: the nonce is not random")
	}
	if strings.Contains(a, secret) || !strings.HasPrefix(a, "enc:v1:"+k.NewestID()+":") {
		t.Errorf("sealed = %q", a)
	}
	if got, err := k.Open(id, a); err != nil || got != secret {
		t.Errorf("Open = %q, %v", got, err)
	}
	// Bound to the webhook: a value copied onto another one does not open.
	if _, err := k.Open(uuid.New(), a); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open for another webhook = %v, want ErrCorrupt", err)
	}
	if _, err := k.Open(id, a[:len(a)-4]+"AAA="); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of an altered value = %v, want ErrCorrupt", err)
	}
	// No secret stays no secret; values from before encryption read as they are.
	if got, _ := k.Seal(id, ""); got != "" {
		t.Errorf("Seal(\"\") = %q", got)
	}
	if got, err := k.Open(id, "legacy-plain"); err != nil || got != "legacy-plain" {
		t.Errorf("Open(plaintext) = %q, %v", got, err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKeyB64 := newKey(t), newKey(t)
	old, rotated := keyring(t, oldKey), keyring(t, newKeyB64, oldKey)
	id := uuid.New()
	sealedOld, _ := old.Seal(id, secret)
	if got, err := rotated.Open(id, sealedOld); err != nil || got != secret {
		t.Fatalf("[new, old] opens an old value: %q, %v", got, err)
	}
	sealedNew, _ := rotated.Seal(id, secret)
	if !strings.HasPrefix(sealedNew, "enc:v1:"+rotated.NewestID()+":") || rotated.NewestID() == old.NewestID() {
		t.Errorf("new writes use %q, want the newest key %s", sealedNew[:16], rotated.NewestID())
	}
	if rotated.Current(sealedOld) || !rotated.Current(sealedNew) || !rotated.Current("") || rotated.Current("plain") {
		t.Error("Current is wrong")
	}
}

func TestWrongKey(t *testing.T) {
	a, b := keyring(t, newKey(t)), keyring(t, newKey(t))
	id := uuid.New()
	sealed, _ := a.Seal(id, secret)
	for _, k := range []*Keyring{b, keyring(t)} {
		_, err := k.Open(id, sealed)
		if !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Open with another key = %v, want ErrUnknownKey", err)
		}
		if msg := err.Error(); !strings.Contains(msg, a.NewestID()) || !strings.Contains(msg, id.String()) || strings.Contains(msg, secret) {
			t.Errorf("error %q should name key %s and webhook %s, and never the secret", msg, a.NewestID(), id)
		}
		if webhook.ErrorCode(err) != webhook.EInternal {
			t.Errorf("code = %s, want internal", webhook.ErrorCode(err))
		}
	}
}

func TestParseKeys(t *testing.T) {
	k := newKey(t)
	for _, bad := range []string{"not base64!", "c2hvcnQ=", k + "," + k, k + ",,"} {
		_, err := ParseKeys(bad)
		if err == nil {
			t.Errorf("ParseKeys(%q) = nil error", bad)
		} else if strings.Contains(err.Error(), k) {
			t.Errorf("error %q holds the key", err)
		}
	}
	if r := keyring(t, " "+k+" ", newKey(t)); r.Len() != 2 {
		t.Errorf("Len = %d", r.Len())
	}
	if r := keyring(t); r.Len() != 0 || r.NewestID() != "" {
		t.Error("empty keyring")
	}
	// With no key, secrets are stored as they are.
	if got, _ := keyring(t).Seal(uuid.New(), secret); got != secret {
		t.Errorf("empty keyring sealed to %q", got)
	}
}

// openSQLite returns a fresh, migrated SQLite store.
func openSQLite(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hookd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestStore runs the decorator on the real SQLite backend: the database
// holds sealed values, callers see plaintext, and Reencrypt moves every
// secret (including one from before encryption) to the newest key.
func TestStore(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	oldKey, nextKey := newKey(t), newKey(t)
	s := &Store{Store: db, Keys: keyring(t, oldKey)}
	org := uuid.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	hook := func(secret string) *webhook.Webhook {
		return &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now, UpdatedAt: now,
			Kind: webhook.KindStandard, TargetURL: "https://example.com", TargetSecret: secret, Enabled: true,
			Events: webhook.EventTypes}
	}
	sealedHook, noSecret, legacy := hook(secret), hook(""), hook("legacy-plain")
	// Rotating: the previous secret is sealed like the current one.
	sealedHook.PreviousSecret, sealedHook.SecretRotatedAt = previousSecret, now
	legacy.PreviousSecret, legacy.SecretRotatedAt = "legacy-previous", now
	for _, w := range []*webhook.Webhook{sealedHook, noSecret} {
		if err := s.WebhookCreate(ctx, w, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	if sealedHook.TargetSecret != secret || sealedHook.PreviousSecret != previousSecret {
		t.Error("WebhookCreate changed the caller's webhook")
	}
	if err := db.WebhookCreate(ctx, legacy, 0, nil); err != nil { // as stored before encryption
		t.Fatal(err)
	}
	raw, _ := db.WebhookGet(ctx, org, sealedHook.ID)
	if !strings.HasPrefix(raw.TargetURL, "enc:v1:") {
		t.Errorf("the target URL is stored as %q", raw.TargetURL)
	}
	if !strings.HasPrefix(raw.TargetSecret, "enc:v1:") || !strings.HasPrefix(raw.PreviousSecret, "enc:v1:") {
		t.Fatalf("stored secrets are %q and %q", raw.TargetSecret, raw.PreviousSecret)
	}
	// Bound to the webhook like the current secret.
	if _, err := s.Keys.Open(noSecret.ID, raw.PreviousSecret); !errors.Is(err, ErrCorrupt) {
		t.Errorf("the previous secret opened for another webhook: %v", err)
	}
	got, err := s.WebhookGet(ctx, org, sealedHook.ID)
	if err != nil || got.TargetSecret != secret || got.PreviousSecret != previousSecret {
		t.Fatalf("WebhookGet = %v, %v", got, err)
	}
	list, err := s.WebhookList(ctx, org)
	if err != nil || len(list) != 3 || list[0].TargetSecret != secret || list[0].PreviousSecret != previousSecret ||
		list[1].TargetSecret != "" || list[2].TargetSecret != "legacy-plain" || list[2].PreviousSecret != "legacy-previous" {
		t.Fatalf("WebhookList = %v, %v", list, err)
	}
	// An edit seals both anew.
	if _, err := s.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: sealedHook.ID,
		Apply: func(w *webhook.Webhook) (*webhook.AuditEntry, error) {
			if w.TargetSecret != secret {
				t.Errorf("Apply saw the secret %q, want it opened", w.TargetSecret)
			}
			w.Description = "edited"
			return nil, nil
		}}); err != nil {
		t.Fatal(err)
	}
	if raw2, _ := db.WebhookGet(ctx, org, sealedHook.ID); raw2.PreviousSecret == raw.PreviousSecret || !strings.HasPrefix(raw2.PreviousSecret, "enc:v1:") {
		t.Fatalf("after an edit the previous secret is stored as %q", raw2.PreviousSecret)
	}

	// Rotate: [next, old] reads everything; Reencrypt moves it all to next.
	rotated := &Store{Store: db, Keys: keyring(t, nextKey, oldKey)}
	res, err := Reencrypt(ctx, db, rotated.Keys)
	// Three: the webhook without a secret has its URL sealed too.
	if err != nil || res != (ReencryptResult{Rewritten: 3}) {
		t.Fatalf("Reencrypt = %+v, %v", res, err)
	}
	if res, err := Reencrypt(ctx, db, rotated.Keys); err != nil || res != (ReencryptResult{Current: 3}) {
		t.Fatalf("Reencrypt again = %+v, %v", res, err)
	}
	only := &Store{Store: db, Keys: keyring(t, nextKey)}
	list, err = only.WebhookList(ctx, org)
	if err != nil || list[0].TargetSecret != secret || list[0].PreviousSecret != previousSecret ||
		list[2].TargetSecret != "legacy-plain" || list[2].PreviousSecret != "legacy-previous" {
		t.Fatalf("WebhookList with the new key alone = %v, %v", list, err)
	}
	raw, _ = db.WebhookGet(ctx, org, legacy.ID)
	if !only.Keys.Current(raw.TargetSecret) || !only.Keys.Current(raw.PreviousSecret) || !only.Keys.Current(raw.TargetURL) {
		t.Fatalf("after Reencrypt the legacy secrets are stored as %q and %q, the URL as %q", raw.TargetSecret, raw.PreviousSecret, raw.TargetURL)
	}

	// The old key alone can no longer read them: a clear error, no secret.
	_, err = (&Store{Store: db, Keys: keyring(t, oldKey)}).WebhookGet(ctx, org, sealedHook.ID)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), only.Keys.NewestID()) {
		t.Errorf("WebhookGet with a missing key = %v", err)
	}
}

// TestDeliveryClaim checks tasks carry the plaintext secret, and that a
// task whose key is missing is not handed out but given back.
func TestDeliveryClaim(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	s := &Store{Store: db, Keys: keyring(t, newKey(t))}
	org := uuid.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now, UpdatedAt: now,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", TargetSecret: secret, Enabled: true,
		Events: webhook.EventTypes, PreviousSecret: previousSecret, SecretRotatedAt: now}
	if err := s.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	ev := &webhook.Event{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now,
		Type: webhook.EventDeploymentStarted, ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	if _, err := s.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	claim := webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10}

	other := &Store{Store: db, Keys: keyring(t, newKey(t))}
	if _, err := other.DeliveryClaim(ctx, claim); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("claim with the wrong key = %v, want ErrUnknownKey", err)
	}
	// Given back until the lease would have ended, then claimable again.
	if tasks, err := s.DeliveryClaim(ctx, claim); err != nil || len(tasks) != 0 {
		t.Fatalf("claim right after = %d tasks, %v; want none yet", len(tasks), err)
	}
	claim.Now = claim.LeaseUntil
	claim.LeaseUntil = claim.Now.Add(time.Minute)
	tasks, err := s.DeliveryClaim(ctx, claim)
	if err != nil || len(tasks) != 1 || tasks[0].Webhook.TargetSecret != secret || tasks[0].Webhook.PreviousSecret != previousSecret {
		t.Fatalf("claim = %v, %v", tasks, err)
	}
	if tasks[0].Delivery.Attempts != 0 {
		t.Errorf("attempts = %d: giving back must not count an attempt", tasks[0].Delivery.Attempts)
	}
}

// TestEventsCreateLease checks deliveries leased at intake carry the
// plaintext secret, and that one whose key is missing is left out (it
// stays leased, then a claim reports why) without failing the intake.
func TestEventsCreateLease(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	s := &Store{Store: db, Keys: keyring(t, newKey(t))}
	org := uuid.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now, UpdatedAt: now,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", TargetSecret: secret, Enabled: true,
		Events: webhook.EventTypes}
	if err := s.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	newEvent := func() *webhook.Event {
		return &webhook.Event{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now,
			Type: webhook.EventDeploymentStarted, ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	}
	lease := webhook.Lease{Until: now.Add(time.Minute), Limit: 10}
	rs, err := s.EventsCreate(ctx, []*webhook.Event{newEvent()}, lease)
	if err != nil || len(rs[0].Tasks) != 1 || rs[0].Tasks[0].Webhook.TargetSecret != secret {
		t.Fatalf("EventsCreate = %+v, %v; want one task with the plaintext secret", rs, err)
	}

	other := &Store{Store: db, Keys: keyring(t, newKey(t))}
	rs, err = other.EventsCreate(ctx, []*webhook.Event{newEvent()}, lease)
	if err != nil || rs[0].Deliveries != 1 || len(rs[0].Tasks) != 0 {
		t.Fatalf("EventsCreate with the wrong key = %+v, %v; want the event stored, no task", rs, err)
	}
	// Given back at once, so a claim reports the missing key now rather
	// than when the lease would have ended.
	claim := webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10}
	if _, err := other.DeliveryClaim(ctx, claim); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("claim right after = %v, want ErrUnknownKey", err)
	}
}
