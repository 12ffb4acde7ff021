package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// cli runs the client commands of the real binary against one server as
// one organization, the way a person at a shell does.
type cli struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T, srv *server, org uuid.UUID, token string) cli {
	return cli{t: t, env: map[string]string{"HOOKD_URL": srv.URL, "HOOKD_TOKEN": token, "HOOKD_ORGANIZATION": org.String()}}
}

// run runs a command that must succeed and returns its stdout.
func (c cli) run(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.exec(nil, args...)
	if err != nil {
		c.t.Fatalf("hookd %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// fail runs a command that must fail and returns its stderr and exit code.
func (c cli) fail(args ...string) (string, int) {
	c.t.Helper()
	out, errOut, err := c.exec(nil, args...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		c.t.Fatalf("hookd %s: want a non-zero exit, got %v\nstdout: %s", strings.Join(args, " "), err, out)
	}
	if out != "" {
		c.t.Errorf("hookd %s failed but printed on stdout: %q", strings.Join(args, " "), out)
	}
	return errOut, exit.ExitCode()
}

func (c cli) exec(stdin []byte, args ...string) (string, string, error) {
	c.t.Helper()
	cmd := exec.Command(hookdBin, args...)
	cmd.Env = environ(c.env)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &stdout, &stderr
	err := cmd.Run()
	if token := c.env["HOOKD_TOKEN"]; token != "" && strings.Contains(stdout.String()+stderr.String(), token) {
		c.t.Errorf("hookd %s printed the token", strings.Join(args, " "))
	}
	return stdout.String(), stderr.String(), err
}

// jsonEqual fails unless a and b are the same JSON value.
func jsonEqual(t *testing.T, what string, a, b []byte) {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %q is not JSON: %v", what, a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %q is not JSON: %v", what, b, err)
	}
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("%s:\n got %s\nwant %s", what, a, b)
	}
}

var idLine = regexp.MustCompile(`(?m)^ID:\s+(\S+)$`)

// TestClientCommands drives every client command, as a table and as JSON,
// through a webhook's whole life, checking each against the API itself.
func TestClientCommands(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		srv := startServer(t, deliveryEnv(dbURL, nil))
		tg := newTarget(t)
		orgID := uuid.New()
		token := newToken(t, dbURL, orgID)
		c := newCLI(t, srv, orgID, token)
		api := call{t: t, base: srv.URL, auth: "Token " + token}
		hooks := "/organization/" + orgID.String() + "/webhook"

		// create, as a table: every field given.
		target := tg.URL + "/deploys/with/a/rather/long/path/that/a/table/cannot/show/whole"
		secretFile := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(secretFile, []byte("s3cr3t-value\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := c.run("webhook", "create", "--target-url", target, "--events", "DEPLOYMENT_STARTED, DEPLOYMENT_FAILURE",
			"--description", "deploys to chat", "--secret-file", secretFile, "--project-filter", "api,billing*", "--env-filter", "PRODUCTION")
		m := idLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("create printed no ID line:\n%s", out)
		}
		id := m[1]
		for _, want := range []string{"STANDARD", target, "Secret:", "set", "deploys to chat", "DEPLOYMENT_STARTED, DEPLOYMENT_FAILURE", "api, billing*", "PRODUCTION"} {
			if !strings.Contains(out, want) {
				t.Errorf("create table lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "s3cr3t-value") {
			t.Fatalf("create printed the secret:\n%s", out)
		}

		// get --json is the API's object, unchanged.
		_, _, apiObj := api.do("GET", hooks+"/"+id, nil, nil)
		jsonEqual(t, "get --json", []byte(c.run("webhook", "get", id, "--json")), apiObj)
		if out := c.run("webhook", "get", id); !strings.Contains(out, "deploys to chat") || !strings.Contains(out, target) {
			t.Fatalf("get table:\n%s", out)
		}

		// create --json, with the defaults (STANDARD, enabled).
		var second map[string]any
		out = c.run("webhook", "create", "--json", "--target-url", tg.URL+"/other", "--events", "DEPLOYMENT_SUCCESSFUL")
		if err := json.Unmarshal([]byte(out), &second); err != nil || second["kind"] != "STANDARD" || second["enabled"] != true || second["target_secret_set"] != false {
			t.Fatalf("create --json: %v %s", err, out)
		}
		secondID := second["id"].(string)

		// list, as a table: both, the long URL shortened, without scheme.
		out = c.run("webhook", "list")
		if !strings.Contains(out, id) || !strings.Contains(out, secondID) || !strings.HasPrefix(out, "ID ") {
			t.Fatalf("list table:\n%s", out)
		}
		if strings.Contains(out, target) || strings.Contains(out, "http://") || !strings.Contains(out, "…") {
			t.Errorf("list table shows the long URL in full:\n%s", out)
		}
		// list --json is the API's answer.
		_, _, apiList := api.do("GET", hooks, nil, nil)
		jsonEqual(t, "list --json", []byte(c.run("webhook", "list", "--json")), apiList)

		// edit changes what is given and keeps everything else, the secret
		// included.
		var before, after map[string]any
		json.Unmarshal(apiObj, &before)
		out = c.run("webhook", "edit", id, "--description", "paused for now", "--enabled=false")
		if !strings.Contains(out, "paused for now") || !regexp.MustCompile(`Enabled:\s+no`).MatchString(out) {
			t.Fatalf("edit table:\n%s", out)
		}
		api.do("GET", hooks+"/"+id, nil, &after)
		for k, v := range before {
			switch k {
			case "description":
				v = "paused for now"
			case "enabled":
				v = false
			case "updated_at":
				continue
			}
			if !reflect.DeepEqual(after[k], v) {
				t.Errorf("after edit, %s = %v, want %v", k, after[k], v)
			}
		}
		// edit --json: clear a filter, remove the secret, enable again.
		out = c.run("webhook", "edit", id, "--json", "--project-filter", "", "--remove-secret", "--enabled")
		var edited map[string]any
		if err := json.Unmarshal([]byte(out), &edited); err != nil || edited["target_secret_set"] != false ||
			edited["enabled"] != true || len(edited["project_names_filter"].([]any)) != 0 || edited["description"] != "paused for now" {
			t.Fatalf("edit --json: %v %s", err, out)
		}
		_, _, apiObj = api.do("GET", hooks+"/"+id, nil, nil)
		jsonEqual(t, "edit --json", []byte(out), apiObj)

		// emit, as a table: the event reaches the target.
		out = c.run("emit", "--event-type", "DEPLOYMENT_STARTED", "--project", "api", "--environment", "prod-eu",
			"--mode", "PRODUCTION", "--deployment-id", "dep-1", "--idempotency-key", "cli-1")
		em := regexp.MustCompile(`(?m)^([0-9a-f-]{36})\s+\S+\s+1$`).FindStringSubmatch(out)
		if em == nil {
			t.Fatalf("emit table (want one delivery):\n%s", out)
		}
		got := tg.waitCount(t, "/deploys/with/a/rather/long/path/that/a/table/cannot/show/whole", 1, 30*time.Second)
		if !strings.Contains(string(got[0].Body), `"DEPLOYMENT_STARTED"`) || !strings.Contains(string(got[0].Body), `"dep-1"`) {
			t.Fatalf("target got %s", got[0].Body)
		}
		// The same key again is the same event, not a second delivery.
		var again map[string]any
		json.Unmarshal([]byte(c.run("emit", "--json", "--event-type", "DEPLOYMENT_STARTED", "--project", "api", "--environment", "prod-eu",
			"--mode", "PRODUCTION", "--deployment-id", "dep-1", "--idempotency-key", "cli-1")), &again)
		if again["id"] != em[1] {
			t.Fatalf("emit with the same idempotency key made event %v, want %v", again["id"], em[1])
		}

		// emit --file - reads stdin and sends it unchanged; --json prints
		// the API's answer.
		doc := `{"event_type":"DEPLOYMENT_SUCCESSFUL","project":{"name":"api"},"environment":{"name":"prod-eu","mode":"PRODUCTION"},"applications":[{"name":"web"}]}`
		out, errOut, err := c.exec([]byte(doc), "emit", "--file", "-", "--json")
		var acc struct {
			ID         string `json:"id"`
			Deliveries int    `json:"deliveries"`
		}
		if err != nil || json.Unmarshal([]byte(out), &acc) != nil || acc.Deliveries != 1 {
			t.Fatalf("emit --file -: %v\n%s%s", err, out, errOut)
		}
		if got := tg.waitCount(t, "/other", 1, 30*time.Second); !strings.Contains(string(got[0].Body), `"web"`) {
			t.Fatalf("target got %s", got[0].Body)
		}

		// events: the attempt is logged, as a table and as the API's JSON.
		waitFor(t, 30*time.Second, "the attempt to be logged", func() bool {
			return strings.Contains(c.run("webhook", "events", id), "DEPLOYMENT_STARTED")
		})
		out = c.run("webhook", "events", id)
		if !regexp.MustCompile(`(?m)^\S+Z\s+DEPLOYMENT_STARTED\s+200\s+\S+\s+1\s+[0-9a-f-]{36}\s+-$`).MatchString(out) {
			t.Fatalf("events table:\n%s", out)
		}
		_, _, apiEvents := api.do("GET", hooks+"/"+id+"/event", nil, nil)
		jsonEqual(t, "events --json", []byte(c.run("webhook", "events", "--json", id)), apiEvents)

		// delete, then the webhook is gone: the API's detail on stderr.
		if out, errOut, err := c.exec(nil, "webhook", "delete", id); err != nil || out != "" || !strings.Contains(errOut, "deleted webhook "+id) {
			t.Fatalf("delete: %v %q %q", err, out, errOut)
		}
		var apiErr errorJSON
		if st, _, _ := api.do("GET", hooks+"/"+id, nil, &apiErr); st != 404 || apiErr.Detail == "" {
			t.Fatalf("after delete the API answered %d %+v", st, apiErr)
		}
		errOut, code := c.fail("webhook", "get", id)
		if code != 1 || errOut != "hookd: "+apiErr.Detail+"\n" {
			t.Fatalf("get after delete: exit %d, stderr %q; want 1 and the API's detail %q", code, errOut, apiErr.Detail)
		}
		c.run("webhook", "delete", secondID, "--json")
		if out := c.run("webhook", "list", "--json"); strings.TrimSpace(out) != `{"results":[]}` {
			t.Fatalf("list after deleting both: %s", out)
		}
	})
}

// TestClientErrors checks that what the API refuses reaches the person as
// the API's detail with a non-zero exit, and that the command line is
// checked before anything is sent.
func TestClientErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		srv := startServer(t, deliveryEnv(dbURL, nil))
		orgID := uuid.New()
		token := newToken(t, dbURL, orgID)
		c := newCLI(t, srv, orgID, token)

		for _, tc := range []struct {
			name   string
			env    map[string]string // replaces c's
			args   []string
			code   int
			stderr string // a part of it
		}{
			{"invalid webhook", nil, []string{"webhook", "create", "--target-url", "ftp://example.com", "--events", "DEPLOYMENT_STARTED"}, 1, "target_url"},
			{"unknown event type", nil, []string{"emit", "--event-type", "DEPLOYMENT_EXPLODED", "--project", "a", "--environment", "b", "--mode", "PRODUCTION"}, 1, "event_type"},
			{"malformed file", nil, []string{"emit", "--file", "/dev/null"}, 1, "empty"},
			{"not a UUID", nil, []string{"webhook", "get", "nope"}, 1, "webhookId"},
			{"bad token", map[string]string{"HOOKD_TOKEN": "hkd_wrong"}, []string{"webhook", "list"}, 1, ""},
			{"other organization", map[string]string{"HOOKD_ORGANIZATION": uuid.NewString()}, []string{"webhook", "list"}, 1, "organization"},
			{"no token", map[string]string{"HOOKD_TOKEN": ""}, []string{"webhook", "list"}, 2, "HOOKD_TOKEN"},
			{"no organization", map[string]string{"HOOKD_ORGANIZATION": ""}, []string{"webhook", "list"}, 2, "HOOKD_ORGANIZATION"},
			{"missing id", nil, []string{"webhook", "get"}, 2, "WEBHOOK_ID"},
			{"secret on the command line", nil, []string{"webhook", "create", "--target-url", "http://x", "--events", "DEPLOYMENT_STARTED", "--secret", "s3cr3t"}, 2, "--secret-file"},
			{"empty secret file", nil, []string{"webhook", "create", "--target-url", "http://x", "--events", "DEPLOYMENT_STARTED", "--secret-file", "/dev/null"}, 2, "--remove-secret"},
			{"missing secret file", nil, []string{"webhook", "create", "--target-url", "http://x", "--events", "DEPLOYMENT_STARTED", "--secret-file", "/nonexistent/secret"}, 1, "--secret-file"},
			{"recover without since", nil, []string{"webhook", "recover", uuid.NewString()}, 2, "--since"},
			{"recover with a bad time", nil, []string{"webhook", "recover", uuid.NewString(), "--since", "9am"}, 2, "RFC 3339"},
			{"retry without delivery", nil, []string{"delivery", "retry", uuid.NewString()}, 2, "DELIVERY_ID"},
			{"unknown shell", nil, []string{"completion", "fish"}, 2, "fish"},
			{"edit without changes", nil, []string{"webhook", "edit", uuid.NewString()}, 2, "nothing to change"},
			{"file and fields", nil, []string{"emit", "--file", "-", "--project", "a"}, 2, "--project"},
			{"emit without mode", nil, []string{"emit", "--event-type", "DEPLOYMENT_STARTED", "--project", "a", "--environment", "b"}, 2, "--mode"},
			{"unknown command", nil, []string{"webhook", "frobnicate"}, 2, "frobnicate"},
			{"help", nil, []string{"webhook", "edit", "--help"}, 2, "-remove-secret"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cc := cli{t: t, env: map[string]string{}}
				for k, v := range c.env {
					cc.env[k] = v
				}
				for k, v := range tc.env {
					cc.env[k] = v
				}
				errOut, code := cc.fail(tc.args...)
				if code != tc.code || !strings.Contains(errOut, tc.stderr) {
					t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.stderr)
				}
				if strings.Contains(errOut, token) {
					t.Fatalf("stderr shows the token: %q", errOut)
				}
			})
		}

		// The API's own words, exactly: 401 with its detail.
		var apiErr errorJSON
		call{t: t, base: srv.URL, auth: "Token hkd_wrong"}.do("GET", "/organization/"+orgID.String()+"/webhook", nil, &apiErr)
		bad := cli{t: t, env: map[string]string{"HOOKD_URL": srv.URL, "HOOKD_TOKEN": "hkd_wrong", "HOOKD_ORGANIZATION": orgID.String()}}
		if errOut, _ := bad.fail("webhook", "list"); apiErr.Status != 401 || errOut != "hookd: "+apiErr.Detail+"\n" {
			t.Fatalf("bad token: stderr %q, API said %+v", errOut, apiErr)
		}
	})
}
