package storetest

import (
	"testing"

	"github.com/hookd/hookd/internal/secrets"
)

// Keys returns a keyring of one fresh key, for a test to open a backend
// with: stores under test seal secrets, as every deployment does.
func Keys(t testing.TB) *secrets.Keyring {
	t.Helper()
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.ParseKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
