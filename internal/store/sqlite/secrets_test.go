package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/hookd/hookd/internal/store/storetest"
)

// TestWebhookSecrets covers what `hookd migrate --reencrypt` uses.
func TestWebhookSecrets(t *testing.T) {
	keys := storetest.Keys(t)
	storetest.RunSecretRewrite(t, openWith(t, filepath.Join(t.TempDir(), "hookd.db"), keys), keys)
}

// TestSealedAtRest reads the tables with a connection of its own, past
// the backend's row codec.
func TestSealedAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	keys := storetest.Keys(t)
	db := openWith(t, path, keys)
	storetest.RunSealedAtRest(t, db, keys, func(t *testing.T) []string {
		raw, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		return rawColumns(t, raw, `SELECT target_url, target_secret, previous_secret FROM webhooks`,
			`SELECT secret FROM sources`)
	})
}

// rawColumns returns every value of every column the queries select.
func rawColumns(t *testing.T, db *sql.DB, queries ...string) []string {
	t.Helper()
	var out []string
	for _, q := range queries {
		rows, err := db.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]string, len(cols))
			dest := make([]any, len(cols))
			for i := range vals {
				dest[i] = &vals[i]
			}
			if err := rows.Scan(dest...); err != nil {
				t.Fatal(err)
			}
			out = append(out, vals...)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return out
}

// TestUnreadable opens one file twice, as two processes with different
// keys would.
func TestUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	storetest.RunUnreadable(t, openWith(t, path, storetest.Keys(t)), openWith(t, path, storetest.Keys(t)))
}
