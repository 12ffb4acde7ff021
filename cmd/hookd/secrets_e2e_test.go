package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/signing"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// TestSecretsEncryptedAtRest creates a webhook with a secret and checks
// that the database never holds it in clear, that deliveries are still
// signed with it, and that a key rotation (two keys, then
// `migrate --reencrypt`, then the new key alone) keeps it readable. The
// webhook's secret is changed too, so the previous secret (kept to sign
// during the grace) goes through all of it as well.
func TestSecretsEncryptedAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		tg := newTarget(t)
		env := deliveryEnv(dbURL, nil)
		sqlitePath, isSQLite := strings.CutPrefix(dbURL, "sqlite:")
		var keyA string
		if !isSQLite {
			keyA = generateKey(t)
			env["HOOKD_ENCRYPTION_KEY"] = keyA
		}
		srv := startServer(t, env)
		if isSQLite {
			// No key configured: hookd made one beside the database, said
			// so, and did not log it.
			keyA = readKeyFile(t, sqlitePath+".key")
			if logs := srv.logs.String(); !strings.Contains(logs, "created an encryption key") || strings.Contains(logs, keyA) {
				t.Fatalf("first start should log that it created a key, without the key:\n%s", logs)
			}
		}
		idA, idB := keyID(t, keyA), ""

		o := newOrg(t, srv, dbURL)
		secret := "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(t, 24))
		all := []string{"DEPLOYMENT_STARTED", "DEPLOYMENT_CANCELLED", "DEPLOYMENT_FAILURE", "DEPLOYMENT_SUCCESSFUL"}
		fields := map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/signed", "target_secret": secret, "events": all}
		hookID := o.createWebhook(fields)
		signers := []string{secret} // the secrets deliveries must verify with, each alone

		delivered := 0
		deliverSigned := func(srv *server) {
			t.Helper()
			o.api.base = srv.URL
			ev := o.emit(deploymentEvent("DEPLOYMENT_STARTED", "api", "PRODUCTION"))
			delivered++
			got := tg.waitCount(t, "/signed", delivered, 30*time.Second)
			r := got[len(got)-1]
			if r.payloadID() != ev.ID {
				t.Fatalf("target got event %s, want %s", r.payloadID(), ev.ID)
			}
			for i, s := range signers {
				if err := signing.Verify([]string{s}, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), r.Body, time.Now(), 5*time.Minute); err != nil {
					t.Fatalf("delivery not signed with the webhook's secret #%d of %d: %v", i+1, len(signers), err)
				}
			}
		}
		deliverSigned(srv)
		assertSealedAtRest(t, dbURL, signers, idA)

		// A new webhook secret: the previous one is kept, sealed, and
		// still signs (the grace is the default 24h).
		secret2 := "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(t, 24))
		fields["target_secret"] = secret2
		if st, _, body := o.api.do("PUT", o.path("/webhook/"+hookID), fields, nil); st != 200 {
			t.Fatalf("edit: %d %s", st, body)
		}
		signers = []string{secret2, secret}
		deliverSigned(srv)
		assertSealedAtRest(t, dbURL, signers, idA)

		// Rotation: the new key first, the old one still listed to read.
		keyB := generateKey(t)
		idB = keyID(t, keyB)
		srv.Stop(syscall.SIGTERM)
		env["HOOKD_ENCRYPTION_KEY"] = keyB + "," + keyA
		srv = startServer(t, env)
		deliverSigned(srv)
		_, errOut, err := hookd(t, env, "migrate", "--reencrypt")
		if err != nil || !strings.Contains(errOut, "1 webhook secrets re-encrypted with key "+idB) {
			t.Fatalf("migrate --reencrypt: %v\n%s", err, errOut)
		}
		assertSealedAtRest(t, dbURL, signers, idB)

		// The old key can go.
		srv.Stop(syscall.SIGTERM)
		env["HOOKD_ENCRYPTION_KEY"] = keyB
		srv = startServer(t, env)
		deliverSigned(srv)
		srv.Stop(syscall.SIGTERM)

		// With the old key alone, nothing is sent with a wrong signature:
		// the error names the missing key, never the secret.
		env["HOOKD_ENCRYPTION_KEY"] = keyA
		srv = startServer(t, env)
		o.api.base = srv.URL
		o.emit(deploymentEvent("DEPLOYMENT_STARTED", "api", "PRODUCTION"))
		waitFor(t, 30*time.Second, "an error naming the missing key", func() bool {
			return strings.Contains(srv.logs.String(), idB)
		})
		if logs := srv.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, secret2) || !strings.Contains(logs, "not configured") {
			t.Errorf("logs should explain the missing key without the secrets:\n%s", logs)
		}
		if n := len(tg.got("/signed")); n != delivered {
			t.Errorf("target got %d requests, want %d: nothing may be sent without the right secret", n, delivered)
		}
		// Its owner still sees it, marked, with nothing decrypted.
		var list struct{ Results []map[string]any }
		if st, _, body := o.api.do("GET", o.path("/webhook"), nil, &list); st != 200 || len(list.Results) != 1 ||
			list.Results[0]["secrets_unreadable"] != true || list.Results[0]["target_url"] != "urn:hookd:unreadable" {
			t.Errorf("the list with the old key alone: %d %s; want the webhook marked unreadable", st, body)
		}
	})
}

// assertSealedAtRest reads the database as an attacker with a copy of it
// would: every byte of the SQLite file and its WAL, or every webhook row
// of PostgreSQL as text. None of the secrets may be there; a value sealed
// with key id must, for each of them.
func assertSealedAtRest(t *testing.T, dbURL string, secrets []string, id string) {
	t.Helper()
	var dump []byte
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		for _, p := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(p)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			dump = append(dump, b...)
		}
	} else {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT w::text FROM webhooks w`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		dump = []byte(strings.Join(texts, "\n"))
	}
	for i, secret := range secrets {
		if bytes.Contains(dump, []byte(secret)) || bytes.Contains(dump, []byte(strings.TrimPrefix(secret, "whsec_"))) {
			t.Fatalf("the database holds webhook secret #%d of %d in clear", i+1, len(secrets))
		}
		if key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_")); err == nil && bytes.Contains(dump, key) {
			t.Fatalf("the database holds the key of webhook secret #%d of %d in clear", i+1, len(secrets))
		}
	}
	if n := bytes.Count(dump, []byte("enc:v1:"+id+":")); n < len(secrets) {
		t.Fatalf("the database holds %d values sealed with key %s, want at least %d", n, id, len(secrets))
	}
}

func generateKey(t *testing.T) string {
	t.Helper()
	k, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyID(t *testing.T, key string) string {
	t.Helper()
	k, err := secrets.ParseKeys(key)
	if err != nil {
		t.Fatal(err)
	}
	return k.NewestID()
}

func readKeyFile(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no key file beside the database: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// On PostgreSQL there is no place for a key the database's dump would not
// hold, so serve refuses to start without one, and says how to make one.
func TestPostgresNeedsEncryptionKey(t *testing.T) {
	dbURL := pgtest.URL(t)
	_, errOut, err := hookd(t, map[string]string{"HOOKD_DATABASE_URL": dbURL, "HOOKD_ADDR": "127.0.0.1:0"}, "serve")
	if err == nil || !strings.Contains(errOut, "HOOKD_ENCRYPTION_KEY: required with PostgreSQL") || !strings.Contains(errOut, "openssl rand -base64 32") {
		t.Fatalf("serve without a key on PostgreSQL: %v\n%s", err, errOut)
	}
}
