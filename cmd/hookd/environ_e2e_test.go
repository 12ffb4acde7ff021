package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnknownVariables: a misspelt variable must not leave hookd on its
// defaults (for HOOKD_DATABASE_URL, an empty SQLite file beside the
// team's PostgreSQL); one that is merely unknown (a newer hookd's, a
// deployment's own) is logged and ignored. No value is ever printed.
func TestUnknownVariables(t *testing.T) {
	const secret = "s3cret-password"
	refused := []struct {
		name, env, meant string
		args             []string
	}{
		{"typo of the database", "HOOKD_DATABSE_URL", "HOOKD_DATABASE_URL", []string{"serve"}},
		{"transposed letters", "HOOKD_RETRY_SCHEDUEL", "HOOKD_RETRY_SCHEDULE", []string{"serve"}},
		{"lower case", "hookd_database_url", "HOOKD_DATABASE_URL", []string{"serve"}},
		{"a _FILE typo", "HOOKD_ENCRYPTION_KEY_FIEL", "HOOKD_ENCRYPTION_KEY_FILE", []string{"serve"}},
		{"a word short", "HOOKD_ENCRYPTION", "HOOKD_ENCRYPTION_KEY", []string{"serve"}},
		{"migrate", "HOOKD_DATABSE_URL", "HOOKD_DATABASE_URL", []string{"migrate"}},
		{"token create", "HOOKD_DATABSE_URL", "HOOKD_DATABASE_URL", []string{"token", "create", "--organization", "8d4b7c3e-7d0c-4a8e-9e57-3b8f1f0c2a11"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, hookdBin, tc.args...)
			cmd.Dir = dir
			cmd.Env = environ(map[string]string{"HOOKD_ADDR": "127.0.0.1:0", tc.env: "postgres://hookd:" + secret + "@db.invalid/hookd"})
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("hookd %s ran on with %s set (killed after 30s); stderr:\n%s", tc.args[0], tc.env, stderr.String())
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("hookd %s with %s: exit %v, want 1; stderr:\n%s", tc.args[0], tc.env, err, stderr.String())
			}
			if want := "did you mean " + tc.meant + "?"; !strings.Contains(stderr.String(), tc.env) || !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr does not name %s and say %q:\n%s", tc.env, want, stderr.String())
			}
			if strings.Contains(stderr.String(), secret) {
				t.Errorf("stderr shows the variable's value:\n%s", stderr.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "hookd.db")); err == nil {
				t.Errorf("hookd created the default SQLite database before refusing")
			}
		})
	}

	t.Run("unknown but far from every name", func(t *testing.T) {
		dir := t.TempDir()
		s := startServer(t, map[string]string{
			"HOOKD_DATABASE_URL": "sqlite:" + filepath.Join(dir, "hookd.db"),
			// A newer hookd's variable after a rollback, a deployment's own.
			"HOOKD_SHARDING_MODE": secret,
			// The client commands' and the tests': exported in the same shell.
			"HOOKD_TOKEN": secret, "HOOKD_URL": "http://127.0.0.1:1", "HOOKD_TEST_POSTGRES_URL": "postgres://x",
			// What Kubernetes gives every pod for the Service named hookd.
			"HOOKD_SERVICE_HOST": "10.96.0.10", "HOOKD_SERVICE_PORT": "8080", "HOOKD_SERVICE_PORT_HTTP": "8080",
			"HOOKD_PORT": "tcp://10.96.0.10:8080", "HOOKD_PORT_8080_TCP": "tcp://10.96.0.10:8080", "HOOKD_PORT_8080_TCP_PROTO": "tcp",
			"HOOKD_PORT_8080_TCP_PORT": "8080", "HOOKD_PORT_8080_TCP_ADDR": "10.96.0.10",
		})
		waitFor(t, 10*time.Second, "a warning naming HOOKD_SHARDING_MODE", func() bool {
			return strings.Contains(s.logs.String(), "HOOKD_SHARDING_MODE")
		})
		logs := s.logs.String()
		if !strings.Contains(logs, "level=WARN") || strings.Contains(logs, secret) {
			t.Errorf("want a warning naming HOOKD_SHARDING_MODE without its value:\n%s", logs)
		}
		for _, known := range []string{"HOOKD_TOKEN", "HOOKD_URL", "HOOKD_TEST_POSTGRES_URL", "HOOKD_SERVICE_", "HOOKD_PORT"} {
			if strings.Contains(logs, known) {
				t.Errorf("hookd warns of %s, which its client commands, its tests or Kubernetes set:\n%s", known, logs)
			}
		}
	})
}
