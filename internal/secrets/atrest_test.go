package secrets_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/webhook"
)

// Credentials carried by target URLs, which must never be stored in clear.
const (
	urlPassword = "pa55w0rd-in-url"
	slackToken  = "SlackT0kenAtRest"
	queryToken  = "qu3ryT0kenAtRest"
)

// writeURLCredentials creates, edits and deletes webhooks whose URLs
// carry credentials through s, auditing each change as the API does, and
// returns the webhook kept. Reading it back through s gives the URL.
func writeURLCredentials(t *testing.T, s webhook.Store) *webhook.Webhook {
	t.Helper()
	ctx := context.Background()
	org := uuid.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	by := webhook.Actor{Kind: webhook.ActorToken, ID: "token:1"}
	hook := func(u string) *webhook.Webhook {
		return &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now, UpdatedAt: now,
			Kind: webhook.KindStandard, TargetURL: u, Enabled: true, Events: webhook.EventTypes}
	}
	kept := hook("https://deploy:" + urlPassword + "@example.com/hook?api_token=" + queryToken)
	gone := hook("https://hooks.slack.com/services/T01/B02/" + slackToken)
	for _, w := range []*webhook.Webhook{kept, gone} {
		if err := s.WebhookCreate(ctx, w, 0, webhook.WebhookAudit(by, now, nil, w)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: kept.ID,
		Apply: func(w *webhook.Webhook) (*webhook.AuditEntry, error) {
			before := *w
			w.TargetURL = strings.Replace(w.TargetURL, "/hook", "/hook2", 1)
			return webhook.WebhookAudit(by, now, &before, w), nil
		}}); err != nil {
		t.Fatal(err)
	}
	if err := s.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: gone.ID,
		Apply: func(w *webhook.Webhook) (*webhook.AuditEntry, error) {
			return webhook.WebhookAudit(by, now, w, nil), nil
		}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.WebhookGet(ctx, org, kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.TargetURL, urlPassword) || !strings.Contains(got.TargetURL, "/hook2") {
		t.Fatalf("read back, the URL is %q, want it whole", got.TargetURL)
	}
	return got
}

func wantNoURLCredential(t *testing.T, where, raw string) {
	t.Helper()
	for _, c := range []string{urlPassword, slackToken, queryToken} {
		if strings.Contains(raw, c) {
			t.Errorf("%s holds %q in clear", where, c)
		}
	}
}

// TestURLCredentialsSealedSQLite reads the database file and its WAL
// byte by byte: no URL credential is in either, in the webhooks table or
// the audit trail, not even of the webhook deleted.
func TestURLCredentialsSealedSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookd.db")
	writeURLCredentials(t, openSQLite(t, path, keyring(t, newKey(t))))
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		wantNoURLCredential(t, filepath.Base(f), string(b))
	}
}

// TestURLCredentialsResealedSQLite starts from a database written before
// URLs were sealed: a webhook kept and one deleted, both with URL
// credentials in clear. Reencrypt and Compact (`hookd migrate
// --reencrypt`) leave no copy of either in the file or the WAL.
func TestURLCredentialsResealedSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	// As an earlier hookd stored them: no sealing, no audit.
	kept := writeURLCredentials(t, openSQLite(t, path, keyring(t)))
	keys := keyring(t, newKey(t))
	db := openSQLite(t, path, keys)
	if _, err := secrets.Reencrypt(ctx, db, keys); err != nil {
		t.Fatal(err)
	}
	if emptied, err := db.Compact(ctx); err != nil || !emptied {
		t.Fatalf("Compact = %v, %v", emptied, err)
	}
	got, err := db.WebhookGet(ctx, kept.OrganizationID, kept.ID)
	if err != nil || got.TargetURL != kept.TargetURL {
		t.Fatalf("after re-sealing, the URL reads %q, %v; want %q", got.TargetURL, err, kept.TargetURL)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		wantNoURLCredential(t, filepath.Base(f), string(b))
	}
}

// TestURLCredentialsSealedPostgres reads every row of the webhooks and
// audit tables as text.
func TestURLCredentialsSealedPostgres(t *testing.T) {
	ctx := context.Background()
	db := pgtest.Migrated(t, postgres.Open, keyring(t, newKey(t)))
	writeURLCredentials(t, db)
	for _, table := range []string{"webhooks", "audit_entries"} {
		var raw string
		if err := db.Pool().QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+table+` t`).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if raw == "" {
			t.Fatalf("%s is empty", table)
		}
		wantNoURLCredential(t, table, raw)
	}
}
