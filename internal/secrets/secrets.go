// Package secrets keeps webhook and source secrets encrypted at rest. A
// Keyring seals and opens them with AES-256-GCM; each backend is given
// one at Open and seals and opens in its row codec (SealWebhook,
// OpenWebhook, SealSource, OpenSource), so no store method hands out a
// sealed value. Reencrypt rewrites every stored secret with the newest key.
//
// It must never log a plaintext secret or a key, nor put either in an
// error or a panic: errors name a webhook and a key id, nothing more. It
// imports no backend (they import it), so its tests that need a database
// are in package secrets_test.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// prefix marks a sealed value: "enc:v1:<key id>:<base64(nonce|ciphertext)>".
// A stored value without it is a secret written before encryption, read
// as it is.
const prefix = "enc:v1:"

// KeySize is the length of a key: AES-256.
const KeySize = 32

// Errors Open returns; compare with errors.Is.
var (
	// ErrUnknownKey: the value was sealed with a key that is not configured.
	ErrUnknownKey = errors.New("it was encrypted with a key that is not configured")
	// ErrCorrupt: the value is not one Seal made, or not for this webhook,
	// or was altered.
	ErrCorrupt = errors.New("it is corrupt or does not belong to this webhook")
)

type key struct {
	id   string // hex of the first 4 bytes of SHA-256(key): names the key without revealing it
	aead cipher.AEAD
}

// Keyring holds the keys secrets are sealed with, newest first. Seal uses
// the newest; Open picks the key by the id stored in the value, so old
// values stay readable while the old key is listed. An empty Keyring seals
// nothing: it stores secrets as they are (and opens only those).
type Keyring struct {
	keys []key
}

// ParseKeys reads a comma-separated list of base64-encoded 32-byte keys,
// newest first. An empty string is an empty Keyring.
func ParseKeys(s string) (*Keyring, error) {
	k := &Keyring{}
	if strings.TrimSpace(s) == "" {
		return k, nil
	}
	for i, field := range strings.Split(s, ",") {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(field))
		if err != nil {
			return nil, fmt.Errorf("key %d is not valid base64", i+1)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("key %d is %d bytes long, want %d (generate one with: openssl rand -base64 32)", i+1, len(raw), KeySize)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		sum := sha256.Sum256(raw)
		id := hex.EncodeToString(sum[:4])
		for j, prev := range k.keys {
			if prev.id == id {
				return nil, fmt.Errorf("key %d repeats key %d", i+1, j+1)
			}
		}
		k.keys = append(k.keys, key{id: id, aead: aead})
	}
	return k, nil
}

// GenerateKey returns a new random key, base64-encoded as ParseKeys reads it.
func GenerateKey() (string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Len is the number of keys.
func (k *Keyring) Len() int { return len(k.keys) }

// NewestID is the id of the key Seal uses, "" for an empty Keyring.
func (k *Keyring) NewestID() string {
	if len(k.keys) == 0 {
		return ""
	}
	return k.keys[0].id
}

// Seal encrypts secret for the webhook or source (kind) id with the
// newest key. The id is authenticated with it, so a sealed value copied
// onto another row does not open; kind only names it in errors. An empty
// secret (no secret) stays empty, and an empty Keyring returns secret as
// it is.
func (k *Keyring) Seal(kind string, id uuid.UUID, secret string) (string, error) {
	if secret == "" || len(k.keys) == 0 {
		return secret, nil
	}
	newest := k.keys[0]
	nonce := make([]byte, newest.aead.NonceSize(), newest.aead.NonceSize()+len(secret)+newest.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets: %s %s: making a nonce: %w", kind, id, err)
	}
	sealed := newest.aead.Seal(nonce, nonce, []byte(secret), id[:])
	return prefix + newest.id + ":" + base64.StdEncoding.EncodeToString(sealed), nil
}

// Open returns the secret stored for the webhook or source (kind) id: a
// value Seal made is decrypted with the key it names, anything else
// (written before encryption) is returned as it is.
func (k *Keyring) Open(kind string, id uuid.UUID, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, prefix)
	if !ok {
		return stored, nil
	}
	keyID, data, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("secrets: %s %s: cannot read its secret: %w", kind, id, ErrCorrupt)
	}
	for _, key := range k.keys {
		if key.id != keyID {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil || len(raw) < key.aead.NonceSize() {
			return "", fmt.Errorf("secrets: %s %s: cannot read its secret (key %s): %w", kind, id, keyID, ErrCorrupt)
		}
		n := key.aead.NonceSize()
		plain, err := key.aead.Open(nil, raw[:n], raw[n:], id[:])
		if err != nil {
			return "", fmt.Errorf("secrets: %s %s: cannot decrypt its secret with key %s: %w", kind, id, keyID, ErrCorrupt)
		}
		return string(plain), nil
	}
	// The key's id is hex made by Seal, but a corrupt value could hold
	// anything: quote it so it cannot forge log lines.
	return "", fmt.Errorf("secrets: %s %s: cannot decrypt its secret: %w: key %q (configured: %s)", kind, id, ErrUnknownKey, keyID, k.ids())
}

// Current reports whether stored needs no rewriting: empty, or sealed
// with the newest key (or left as it is by an empty Keyring).
func (k *Keyring) Current(stored string) bool {
	if stored == "" {
		return true
	}
	if len(k.keys) == 0 {
		return !strings.HasPrefix(stored, prefix)
	}
	return strings.HasPrefix(stored, prefix+k.keys[0].id+":")
}

func (k *Keyring) ids() string {
	if len(k.keys) == 0 {
		return "none"
	}
	ids := make([]string, len(k.keys))
	for i, key := range k.keys {
		ids[i] = key.id
	}
	return strings.Join(ids, ", ")
}
