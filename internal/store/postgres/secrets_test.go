package postgres

import (
	"context"
	"testing"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
)

// TestWebhookSecrets covers what `hookd migrate --reencrypt` uses.
func TestWebhookSecrets(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	storetest.RunSecretRewrite(t, db, db.keys)
}

// TestSealedAtRest reads the tables straight, past the row codec.
func TestSealedAtRest(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	storetest.RunSealedAtRest(t, db, db.keys, func(t *testing.T) []string {
		var out []string
		for _, q := range []string{
			`SELECT unnest(ARRAY[target_url, target_secret, previous_secret]) FROM webhooks`,
			`SELECT secret FROM sources`,
		} {
			rows, err := db.pool.Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v string
				if err := rows.Scan(&v); err != nil {
					t.Fatal(err)
				}
				out = append(out, v)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		}
		return out
	})
}

// TestUnreadable opens one schema twice, as two nodes with different keys
// would.
func TestUnreadable(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.URL(t))
	storetest.RunUnreadable(t, openIn(t, dsn, storetest.Keys(t)), openIn(t, dsn, storetest.Keys(t)))
}
