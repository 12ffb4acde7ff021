package postgres

import (
	"testing"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
)

// TestWebhookSecrets covers what `hookd migrate --reencrypt` uses.
func TestWebhookSecrets(t *testing.T) {
	storetest.RunSecretRewrite(t, openSchema(t, pgtest.URL(t)))
}
