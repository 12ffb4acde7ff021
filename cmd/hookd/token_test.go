package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// A token for the nil UUID could never be used: no caller may act on
// organization 00000000-…, so every request with it would answer 403.
// token create refuses it before touching the database, as it does any
// other bad --organization.
func TestTokenCreateRefusesNilOrganization(t *testing.T) {
	env := []string{"HOOKD_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "hookd.db")}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"token", "create", "--organization", "00000000-0000-0000-0000-000000000000"}, env, &out, &errOut)
	var usage usageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--organization") {
		t.Fatalf("token create for the nil organization: %v, want a usage error naming --organization", err)
	}
	if out.Len() != 0 {
		t.Errorf("a token was printed: %q", out.String())
	}
}
