package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/hookd/hookd/internal/store/storetest"
)

// TestWebhookSecrets covers what `hookd migrate --reencrypt` uses.
func TestWebhookSecrets(t *testing.T) {
	storetest.RunSecretRewrite(t, open(t, filepath.Join(t.TempDir(), "hookd.db")))
}
