package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// A word the command does not take must stop it, not be dropped: "hookd
// migrate reencrypt" (for --reencrypt) migrated, said "database is up to
// date" and re-encrypted nothing, and "hookd serve extra" served.
func TestCommandsRefuseStrayArguments(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "extra"},
		{"migrate", "reencrypt"},
		{"token", "create", "--organization", "3fa85f64-5717-4562-b3fc-2c963f66afa6", "ci"},
		{"token", "list", "--organization", "3fa85f64-5717-4562-b3fc-2c963f66afa6", "extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "hookd.db")
			env := []string{"HOOKD_DATABASE_URL=sqlite:" + db, "HOOKD_ADDR=127.0.0.1:0"}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // a serve that starts anyway stops at once
			var out, errOut bytes.Buffer
			err := run(ctx, args, env, &out, &errOut)
			var usage usageError
			if !errors.As(err, &usage) || !strings.Contains(err.Error(), args[len(args)-1]) {
				t.Fatalf("got %v, want a usage error naming %q", err, args[len(args)-1])
			}
			if out.Len() != 0 {
				t.Errorf("printed %q", out.String())
			}
			if _, err := os.Stat(db); err == nil {
				t.Errorf("the database was opened")
			}
		})
	}
}

// Each token subcommand's --help lists the flags it uses, and only those:
// revoke takes a token id alone (any organization's), list no name.
func TestTokenHelpListsItsOwnFlags(t *testing.T) {
	for sub, want := range map[string][]string{
		"create": {"-organization", "-name"},
		"list":   {"-organization"},
		"revoke": nil,
	} {
		var errOut bytes.Buffer
		run(context.Background(), []string{"token", sub, "--help"}, nil, io.Discard, &errOut)
		got := regexp.MustCompile(`(?m)^  (-[a-z-]+)`).FindAllStringSubmatch(errOut.String(), -1)
		var flags []string
		for _, m := range got {
			flags = append(flags, m[1])
		}
		slices.Sort(flags)
		slices.Sort(want)
		if !slices.Equal(flags, want) {
			t.Errorf("token %s --help lists %v, want %v:\n%s", sub, flags, want, errOut.String())
		}
	}
}

// A flag hookd does not know, or a flag's value it cannot parse, is a
// mistake in the command line like a missing argument: exit status 2.
func TestBadFlagsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--bogus"},
		{"migrate", "--bogus"},
		{"token", "create", "--bogus"},
		{"webhook", "list", "--bogus"},
		{"webhook", "edit", "3fa85f64-5717-4562-b3fc-2c963f66afa6", "--enabled=maybe"},
		{"delivery", "list", "3fa85f64-5717-4562-b3fc-2c963f66afa6", "--limit", "many"},
		{"audit", "--bogus"},
		{"emit", "--bogus"},
		{"bench", "--bogus"},
	} {
		err := run(context.Background(), args, nil, io.Discard, io.Discard)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("hookd %s: %v, exit status %d; want a usage error, exit status 2", strings.Join(args, " "), err, exitCode(err))
		}
	}
}

// webhook edit keeps every field whose flag is not given, so its --help
// promises no default for any (it said "--enabled (default true)", as if
// an edit without it re-enabled the webhook).
func TestWebhookEditHelpPromisesNoDefault(t *testing.T) {
	var errOut bytes.Buffer
	run(context.Background(), []string{"webhook", "edit", "--help"}, nil, io.Discard, &errOut)
	help := errOut.String()
	if !strings.Contains(help, "-enabled") {
		t.Fatalf("webhook edit --help lacks --enabled:\n%s", help)
	}
	for _, line := range strings.Split(help, "\n") {
		if strings.Contains(line, "(default") && !strings.Contains(line, "$HOOKD_") {
			t.Errorf("webhook edit --help promises a default: %q", line)
		}
	}
}

// --limit is 1 to 100, as its help says: 0 was taken as "not given" and
// listed 50, where -1 and 101 were refused by the server.
func TestLimitZeroRefused(t *testing.T) {
	env := []string{"HOOKD_URL=http://127.0.0.1:1", "HOOKD_TOKEN=hkd_x", "HOOKD_ORGANIZATION=3fa85f64-5717-4562-b3fc-2c963f66afa6"}
	for _, args := range [][]string{
		{"delivery", "list", "3fa85f64-5717-4562-b3fc-2c963f66afa6", "--limit", "0"},
		{"audit", "--limit", "0"},
	} {
		err := run(context.Background(), args, env, io.Discard, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), "--limit") {
			t.Errorf("hookd %s: %v; want a usage error naming --limit", strings.Join(args, " "), err)
		}
	}
}

// A file flag's mistakes name that flag: --secret-file "" said "--file
// needs a file name", and emit --file with a missing file only "open
// …: no such file or directory".
func TestFileFlagErrorsNameTheFlag(t *testing.T) {
	env := []string{"HOOKD_URL=http://127.0.0.1:1", "HOOKD_TOKEN=hkd_x", "HOOKD_ORGANIZATION=3fa85f64-5717-4562-b3fc-2c963f66afa6"}
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"webhook", "create", "--target-url", "https://x.example", "--events", "DEPLOYMENT_FAILURE", "--secret-file", ""}, "--secret-file needs a file name"},
		{[]string{"source", "create", "--kind", "GITHUB", "--name", "n", "--secret-file", ""}, "--secret-file needs a file name"},
		{[]string{"emit", "--file", ""}, "--file needs a file name"},
		{[]string{"emit", "--file", missing}, "--file: open " + missing},
		{[]string{"webhook", "create", "--target-url", "https://x.example", "--events", "DEPLOYMENT_FAILURE", "--secret-file", missing}, "--secret-file: open " + missing},
	} {
		err := run(context.Background(), tc.args, env, io.Discard, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("hookd %s: %v; want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// "hookd token --help" lists the token commands, as webhook, delivery,
// source and completion do, instead of calling --help an unknown one.
func TestTokenHelp(t *testing.T) {
	for _, word := range []string{"--help", "-h", "help"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"token", word}, nil, &out, io.Discard)
		if err != nil || !strings.Contains(out.String(), "revoke TOKEN_ID") {
			t.Errorf("hookd token %s: %v, printed %q; want the token commands", word, err, out.String())
		}
	}
}

// webhook edit reads the webhook and writes it back with If-Match; when
// someone changed it in between the API answers 412 and asks to "read it
// again", which the person at the CLI never did: the command says what
// happened and to run it again.
func TestWebhookEditConflictSaysRunAgain(t *testing.T) {
	const id = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			w.Header().Set("ETag", `"v1"`)
			io.WriteString(w, `{"id":"`+id+`","kind":"STANDARD","target_url":"https://x.example","enabled":true,"events":["DEPLOYMENT_FAILURE"],"project_names_filter":[],"environment_types_filter":[]}`)
			return
		}
		w.WriteHeader(http.StatusPreconditionFailed)
		io.WriteString(w, `{"status":412,"error":"Precondition Failed","detail":"the webhook changed since you read it (If-Match does not match its ETag \"v2\"); read it again"}`)
	}))
	t.Cleanup(srv.Close)
	env := []string{"HOOKD_URL=" + srv.URL, "HOOKD_TOKEN=hkd_x", "HOOKD_ORGANIZATION=" + id}
	err := run(context.Background(), []string{"webhook", "edit", id, "--description", "d"}, env, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "run the command again") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("got %v; want an error saying nothing was changed and to run the command again", err)
	}
}

// source edit reads the source and writes it back with If-Match, as
// webhook edit does: an edit made in between is not overwritten, and the
// command says to run it again.
func TestSourceEditConflictSaysRunAgain(t *testing.T) {
	const id = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
	var ifMatch string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			w.Header().Set("ETag", `"v1"`)
			io.WriteString(w, `{"id":"`+id+`","kind":"FLUX","name":"flux","secret_set":true,"environment_types":[]}`)
			return
		}
		ifMatch = r.Header.Get("If-Match")
		w.WriteHeader(http.StatusPreconditionFailed)
		io.WriteString(w, `{"status":412,"error":"Precondition Failed","detail":"the source changed since you read it (If-Match does not match its ETag \"v2\"); read it again"}`)
	}))
	t.Cleanup(srv.Close)
	env := []string{"HOOKD_URL=" + srv.URL, "HOOKD_TOKEN=hkd_x", "HOOKD_ORGANIZATION=" + id}
	err := run(context.Background(), []string{"source", "edit", id, "--name", "flux on eu-1"}, env, io.Discard, io.Discard)
	if ifMatch != `"v1"` {
		t.Errorf("source edit sent If-Match %q, want the ETag it read", ifMatch)
	}
	if err == nil || !strings.Contains(err.Error(), "run the command again") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("got %v; want an error saying nothing was changed and to run the command again", err)
	}
}

// serve, migrate and token look for misspelt variables in the
// environment run is given, the one their configuration is read from:
// the process's own environment neither stops them (it held a misspelt
// name run was not given) nor hides the one run was given (they ran on
// with HOOKD_RETRY_SCHEDULE at its default). TestUnknownVariables runs
// the binary; this calls run in-process, as newAppOrg does.
func TestVariableNamesCheckedInRunsEnvironment(t *testing.T) {
	const secret = "s3cret-password"
	t.Setenv("HOOKD_DATABSE_URL", "postgres://hookd:"+secret+"@db.invalid/hookd")
	for _, args := range [][]string{
		{"serve"},
		{"migrate"},
		{"token", "create", "--organization", "8d4b7c3e-7d0c-4a8e-9e57-3b8f1f0c2a11", "--name", "ci"},
	} {
		t.Run(args[0], func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if args[0] == "serve" {
				cancel() // serve, once past its configuration, stops at once
			}
			base := []string{"HOOKD_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "hookd.db"), "HOOKD_ADDR=127.0.0.1:0"}

			var stderr bytes.Buffer
			err := run(ctx, args, append(base, "HOOKD_RETRY_SCHEDUEL="+secret), io.Discard, &stderr)
			if err == nil || !strings.Contains(err.Error(), "HOOKD_RETRY_SCHEDUEL") || !strings.Contains(err.Error(), "did you mean HOOKD_RETRY_SCHEDULE?") {
				t.Errorf("with HOOKD_RETRY_SCHEDUEL: %v; want it refused, naming HOOKD_RETRY_SCHEDULE", err)
			}
			if err != nil && strings.Contains(err.Error()+stderr.String(), secret) {
				t.Errorf("the refusal shows the variable's value: %v\n%s", err, stderr.String())
			}

			stderr.Reset()
			err = run(ctx, args, append(base, "HOOKD_SHARDING_MODE="+secret), io.Discard, &stderr)
			if err != nil && strings.Contains(err.Error(), "HOOKD_DATABSE_URL") {
				t.Errorf("refused for the process's HOOKD_DATABSE_URL, which run was not given: %v", err)
			} else if err != nil && args[0] != "serve" {
				t.Errorf("%v\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "HOOKD_SHARDING_MODE") || strings.Contains(stderr.String(), secret) {
				t.Errorf("stderr does not say HOOKD_SHARDING_MODE is ignored, or shows its value:\n%s", stderr.String())
			}
		})
	}
}
