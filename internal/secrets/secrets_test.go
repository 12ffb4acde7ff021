package secrets

import (
	"cmp"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

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
	a, err := k.Seal("webhook", id, secret)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Seal("webhook", id, secret)
	if a == b {
		t.Error("two seals of one secret are equal: the nonce is not random")
	}
	if strings.Contains(a, secret) || !strings.HasPrefix(a, "enc:v1:"+k.NewestID()+":") {
		t.Errorf("sealed = %q", a)
	}
	if got, err := k.Open("webhook", id, a); err != nil || got != secret {
		t.Errorf("Open = %q, %v", got, err)
	}
	// Bound to the webhook: a value copied onto another one does not open.
	if _, err := k.Open("webhook", uuid.New(), a); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open for another webhook = %v, want ErrCorrupt", err)
	}
	if _, err := k.Open("webhook", id, a[:len(a)-4]+"AAA="); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of an altered value = %v, want ErrCorrupt", err)
	}
	// No secret stays no secret; values from before encryption read as they are.
	if got, _ := k.Seal("webhook", id, ""); got != "" {
		t.Errorf("Seal(\"\") = %q", got)
	}
	if got, err := k.Open("webhook", id, "legacy-plain"); err != nil || got != "legacy-plain" {
		t.Errorf("Open(plaintext) = %q, %v", got, err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKeyB64 := newKey(t), newKey(t)
	old, rotated := keyring(t, oldKey), keyring(t, newKeyB64, oldKey)
	id := uuid.New()
	sealedOld, _ := old.Seal("webhook", id, secret)
	if got, err := rotated.Open("webhook", id, sealedOld); err != nil || got != secret {
		t.Fatalf("[new, old] opens an old value: %q, %v", got, err)
	}
	sealedNew, _ := rotated.Seal("webhook", id, secret)
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
	sealed, _ := a.Seal("webhook", id, secret)
	for _, k := range []*Keyring{b, keyring(t)} {
		_, err := k.Open("webhook", id, sealed)
		if !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Open with another key = %v, want ErrUnknownKey", err)
		}
		if msg := err.Error(); !strings.Contains(msg, a.NewestID()) || !strings.Contains(msg, id.String()) || strings.Contains(msg, secret) {
			t.Errorf("error %q should name key %s and webhook %s, and never the secret", msg, a.NewestID(), id)
		}
		if webhook.ErrorCode(err) != webhook.EInternal {
			t.Errorf("code = %s, want internal", webhook.ErrorCode(err))
		}
		if configured := "(configured: " + cmp.Or(k.NewestID(), "none") + ")"; !strings.Contains(err.Error(), configured) {
			t.Errorf("error %q does not list the keys configured, %s", err, configured)
		}
	}
}

// A row whose sealed fields another key sealed opens marked Unreadable,
// every sealed field cleared (the one in clear too), the rest as it is;
// with its key it opens whole, and unmarked.
func TestOpenRowsUnreadable(t *testing.T) {
	a, b := keyring(t, newKey(t)), keyring(t, newKey(t))
	w := &webhook.Webhook{ID: uuid.New(), TargetURL: "https://example.com/h", TargetSecret: secret, Description: "kept"}
	sealed, err := a.SealWebhook(w)
	if err != nil {
		t.Fatal(err)
	}
	got := *sealed
	if err := b.OpenWebhook(&got); !Unreadable(err) || got.Unreadable != err || got.TargetURL != "" || got.TargetSecret != "" || got.Description != "kept" {
		t.Errorf("OpenWebhook with another key: %v, marked %v, description %q; want unreadable, marked, cleared", err, got.Unreadable, got.Description)
	}
	got = *sealed
	got.Unreadable = ErrCorrupt // as a copy of a row read before would be
	if err := a.OpenWebhook(&got); err != nil || got.Unreadable != nil || got.TargetURL != w.TargetURL || got.TargetSecret != secret {
		t.Errorf("OpenWebhook with its key: %v, marked %v; want it whole and unmarked", err, got.Unreadable)
	}

	src := &webhook.Source{ID: uuid.New(), Name: "kept", Secret: secret}
	sealedSrc, err := a.SealSource(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, lenient := range []bool{false, true} {
		gotSrc := *sealedSrc
		err := b.OpenSource(&gotSrc, lenient)
		if (err == nil) != lenient || !Unreadable(gotSrc.Unreadable) || gotSrc.Secret != "" || gotSrc.Name != "kept" {
			t.Errorf("OpenSource(lenient %t) with another key: %v, marked %v, name %q; want marked, cleared, an error unless lenient", lenient, err, gotSrc.Unreadable, gotSrc.Name)
		}
	}
	gotSrc := *sealedSrc
	gotSrc.Unreadable = ErrCorrupt
	if err := a.OpenSource(&gotSrc, false); err != nil || gotSrc.Unreadable != nil || gotSrc.Secret != secret {
		t.Errorf("OpenSource with its key: %v, marked %v; want it whole and unmarked", err, gotSrc.Unreadable)
	}
}

func TestParseKeys(t *testing.T) {
	k, k2 := newKey(t), newKey(t)
	// The error names the key by its place in the list, as an operator
	// counts them in HOOKD_ENCRYPTION_KEY, and never holds a key.
	for bad, want := range map[string]string{
		"not base64!":          "key 1 is not valid base64",
		k + ",not base64!":     "key 2 is not valid base64",
		k + ",c2hvcnQ=":        "key 2 is 5 bytes long, want 32",
		k2 + "," + k + "," + k: "key 3 repeats key 2",
		k + ",,":               "key 2 is 0 bytes long",
	} {
		_, err := ParseKeys(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeys(%q) = %v, want %q", bad, err, want)
		} else if strings.Contains(err.Error(), k) || strings.Contains(err.Error(), k2) {
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
	if got, _ := keyring(t).Seal("webhook", uuid.New(), secret); got != secret {
		t.Errorf("empty keyring sealed to %q", got)
	}
}

// BenchmarkOpenWebhook is what a backend's row codec pays per webhook
// read: a sealed URL and secret, and no previous secret. Intake reads
// every webhook of an event's organization once per batch, so this times
// the organization's webhook count is its cost per intake transaction.
func BenchmarkOpenWebhook(b *testing.B) {
	key, err := GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	k, err := ParseKeys(key)
	if err != nil {
		b.Fatal(err)
	}
	w := webhook.Webhook{ID: uuid.New(), TargetURL: "https://hooks.example.com/qovery/deployments", TargetSecret: secret}
	sealed, err := k.SealWebhook(&w)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		opened := *sealed
		if err := k.OpenWebhook(&opened); err != nil {
			b.Fatal(err)
		}
	}
}
