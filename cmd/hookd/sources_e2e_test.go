package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/signing"
)

// sourceFixture is one tool's published example payload, as that tool
// sends it to a source's ingest URL, and what the STANDARD webhook must
// receive for it.
type sourceFixture struct {
	kind, file string
	headers    map[string]string
	// The envelope's fields.
	eventType, project, environment, mode, deploymentID, status, commit, cluster string
}

var sourceFixtures = []sourceFixture{
	{kind: "GITHUB", file: "github_deployment_status.json",
		headers:   map[string]string{"X-GitHub-Event": "deployment_status", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		eventType: "DEPLOYMENT_SUCCESSFUL", project: "Hello-World", environment: "production", mode: "PRODUCTION",
		deploymentID: "326191728", status: "success", commit: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
	{kind: "GITLAB", file: "gitlab_deployment.json",
		headers:   map[string]string{"X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"},
		eventType: "DEPLOYMENT_SUCCESSFUL", project: "test-deployment-webhooks", environment: "staging", mode: "STAGING",
		deploymentID: "15", status: "success", commit: "279484c09fbe69ededfced8c1bb6e6d24616b468"},
	{kind: "FLUX", file: "flux_kustomization_failed.json",
		eventType: "DEPLOYMENT_FAILURE", project: "webapp", environment: "apps", mode: "DEVELOPMENT",
		deploymentID: "Kustomization/apps/webapp@main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1", status: "ValidationFailed",
		commit: "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"},
	{kind: "ARGOCD", file: "argocd_sync_succeeded.json",
		eventType: "DEPLOYMENT_SUCCESSFUL", project: "guestbook", environment: "prod-guestbook", mode: "PRODUCTION",
		deploymentID: "guestbook@53e28ff20cc530b9ada2173fbbd64d48338583ba", status: "sync-succeeded (health Healthy)",
		commit: "53e28ff20cc530b9ada2173fbbd64d48338583ba", cluster: "in-cluster"},
	{kind: "QOVERY", file: "qovery_deployment.json",
		eventType: "DEPLOYMENT_FAILURE", project: "billing", environment: "production", mode: "PRODUCTION",
		deploymentID: "7f3c9a1e-5b2d-4c8e-9f1a-2b3c4d5e6f70", status: "DEPLOYMENT_ERROR", commit: "c0ffee", cluster: "eu-west-3"},
}

// signAs returns the headers kind's tool sends body with, authenticated
// with secret the way that tool does it.
func signAs(kind, secret string, body []byte, extra map[string]string) http.Header {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	sig := hex.EncodeToString(mac.Sum(nil))
	h := http.Header{}
	switch kind {
	case "GITHUB":
		h.Set("X-Hub-Signature-256", "sha256="+sig)
	case "GITLAB":
		h.Set("X-Gitlab-Token", secret)
	case "FLUX":
		h.Set("X-Signature", "sha256="+sig)
	case "ARGOCD":
		h.Set("X-Hookd-Token", secret)
	case "QOVERY": // as hookd itself (or Qovery) signs a STANDARD delivery
		now := time.Now()
		h.Set("webhook-id", "msg_"+strings.Repeat("q", 8))
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("webhook-signature", signing.Sign(secret, "msg_"+strings.Repeat("q", 8), now, body))
	}
	for k, v := range extra {
		h.Set(k, v)
	}
	return h
}

// TestSources: a deployment reported by each kind of tool, with its
// published example payload, reaches a STANDARD and a SLACK webhook
// through the real binary; a retry is delivered once; a bad signature is
// refused.
func TestSources(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		tg := newTarget(t)
		srv := startServer(t, deliveryEnv(dbURL, nil))
		o := newOrg(t, srv, dbURL)
		all := []string{"DEPLOYMENT_STARTED", "DEPLOYMENT_CANCELLED", "DEPLOYMENT_FAILURE", "DEPLOYMENT_SUCCESSFUL"}
		o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/standard", "events": all, "target_secret": "receiver-secret"})
		o.createWebhook(map[string]any{"kind": "SLACK", "target_url": tg.URL + "/slack", "events": all})

		for i, fx := range sourceFixtures {
			t.Run(fx.kind, func(t *testing.T) {
				secret := "source-secret-" + fx.kind
				var src struct {
					ID        string `json:"id"`
					IngestURL string `json:"ingest_url"`
				}
				create := map[string]any{"kind": fx.kind, "name": fx.kind + " source", "secret": secret,
					"environment_types": []map[string]string{{"pattern": "prod*", "type": "PRODUCTION"}, {"pattern": "staging", "type": "STAGING"}}}
				if st, _, body := o.api.do("POST", o.path("/source"), create, &src); st != 201 {
					t.Fatalf("create source: %d %s", st, body)
				}
				if !strings.HasPrefix(src.IngestURL, srv.URL+"/organization/") {
					t.Fatalf("ingest_url = %q, want it under %s", src.IngestURL, srv.URL)
				}
				body, err := os.ReadFile(filepath.Join("..", "..", "internal", "source", "testdata", fx.file))
				if err != nil {
					t.Fatal(err)
				}
				// The tool needs no API token: its signature is the credential.
				tool := call{t: t, base: src.IngestURL, extra: signAs(fx.kind, secret, body, fx.headers)}
				var a accepted
				if st, _, resp := tool.do("POST", "", body, &a); st != 202 || a.Deliveries != 2 {
					t.Fatalf("ingest: %d %s, want 202 and 2 deliveries", st, resp)
				}
				// The tool's retry: the same event again, nothing new.
				var again accepted
				if st, _, resp := tool.do("POST", "", body, &again); st != 202 || again.ID != a.ID {
					t.Errorf("the retry: %d %s, want the first event %s", st, resp, a.ID)
				}
				forged := call{t: t, base: src.IngestURL, extra: signAs(fx.kind, "not-"+secret, body, fx.headers)}
				if st, _, resp := forged.do("POST", "", body, nil); st != 401 {
					t.Errorf("a wrong secret: %d %s, want 401", st, resp)
				}

				// The STANDARD webhook gets Qovery's envelope, signed.
				var std receipt
				waitFor(t, 20*time.Second, "the STANDARD delivery", func() bool {
					for _, r := range tg.got("/standard") {
						if r.payloadID() == a.ID {
							std = r
							return true
						}
					}
					return false
				})
				checkSourceEnvelope(t, std, fx, a.ID, o.id.String())
				// The SLACK webhook gets a message naming the project.
				waitFor(t, 20*time.Second, "the SLACK delivery", func() bool { return len(tg.got("/slack")) >= i+1 })
				var slack struct{ Text string }
				found := false
				for _, r := range tg.got("/slack") {
					if json.Unmarshal(r.Body, &slack) == nil && strings.Contains(slack.Text, "project "+fx.project+",") {
						found = true
						if !strings.Contains(slack.Text, "environment "+fx.environment+" ("+fx.mode+")") {
							t.Errorf("Slack text %q does not name environment %s (%s)", slack.Text, fx.environment, fx.mode)
						}
					}
				}
				if !found {
					t.Errorf("no Slack message names project %s", fx.project)
				}
			})
		}
		// Each event once, however many times its tool sent it.
		time.Sleep(300 * time.Millisecond) // room for a wrongly queued duplicate to show up
		seen := map[string]int{}
		for _, r := range tg.got("/standard") {
			seen[r.payloadID()]++
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("event %s reached the STANDARD webhook %d times, want once", id, n)
			}
		}
		if n := len(tg.got("/slack")); n != len(sourceFixtures) {
			t.Errorf("the SLACK webhook got %d messages, want %d", n, len(sourceFixtures))
		}
	})
}

func checkSourceEnvelope(t *testing.T, r receipt, fx sourceFixture, eventID, orgID string) {
	t.Helper()
	var env struct {
		CreatedAt   string `json:"created_at"`
		EventType   string `json:"event_type"`
		PayloadType string `json:"payload_type"`
		PayloadID   string `json:"payload_id"`
		Payload     struct {
			ID            string `json:"id"`
			DeploymentID  string `json:"deployment_id"`
			CurrentStatus string `json:"current_status"`
			Organization  struct {
				ID string `json:"id"`
			} `json:"organization"`
			Project struct {
				Name string `json:"name"`
			} `json:"project"`
			Environment struct {
				Name        string `json:"name"`
				Mode        string `json:"mode"`
				ClusterName string `json:"cluster_name"`
			} `json:"environment"`
			Applications []struct {
				CommitID string `json:"commit_id"`
			} `json:"applications"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil {
		t.Fatalf("the STANDARD body is not JSON: %v: %s", err, r.Body)
	}
	p := env.Payload
	got := []string{env.EventType, env.PayloadType, env.PayloadID, p.Organization.ID, p.Project.Name, p.Environment.Name,
		p.Environment.Mode, p.Environment.ClusterName, p.DeploymentID, p.ID, p.CurrentStatus}
	want := []string{fx.eventType, "DEPLOYMENT", eventID, orgID, fx.project, fx.environment,
		fx.mode, fx.cluster, fx.deploymentID, fx.deploymentID, fx.status}
	names := []string{"event_type", "payload_type", "payload_id", "payload.organization.id", "payload.project.name", "payload.environment.name",
		"payload.environment.mode", "payload.environment.cluster_name", "payload.deployment_id", "payload.id", "payload.current_status"}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s = %q, want %q", names[i], got[i], want[i])
		}
	}
	if len(p.Applications) != 1 || p.Applications[0].CommitID != fx.commit {
		t.Errorf("payload.applications = %+v, want one at commit %s", p.Applications, fx.commit)
	}
	if _, err := time.Parse(time.RFC3339Nano, env.CreatedAt); err != nil {
		t.Errorf("created_at %q: %v", env.CreatedAt, err)
	}
	if err := signing.Verify([]string{"receiver-secret"}, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"),
		r.Header.Get("webhook-signature"), r.Body, time.Now(), time.Minute); err != nil {
		t.Errorf("the STANDARD delivery's signature: %v", err)
	}
}

// TestSourceCommands: hookd source create|list|get|edit|delete against a
// running server; the secret comes from a file or standard input, never
// an argument, and is never printed.
func TestSourceCommands(t *testing.T) {
	dbURL := backends()[0].url(t)
	srv := startServer(t, deliveryEnv(dbURL, nil))
	org := uuid.New()
	c := newCLI(t, srv, org, newToken(t, dbURL, org))

	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("cli-source-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.run("source", "create", "--kind", "gitlab", "--name", "acme on GitLab", "--secret-file", secretFile,
		"--env-types", "prod*=PRODUCTION, staging=staging")
	m := idLine.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "GITLAB") || !strings.Contains(out, "prod*=PRODUCTION,staging=STAGING") ||
		!strings.Contains(out, srv.URL+"/organization/"+org.String()+"/source/"+m[1]+"/ingest") {
		t.Fatalf("create printed:\n%s", out)
	}
	id := m[1]
	if strings.Contains(out, "cli-source-secret") {
		t.Errorf("create printed the secret:\n%s", out)
	}
	if out := c.run("source", "list"); !strings.Contains(out, id) || !strings.Contains(out, "acme on GitLab") {
		t.Errorf("list:\n%s", out)
	}
	var got struct {
		Name      string `json:"name"`
		SecretSet bool   `json:"secret_set"`
		IngestURL string `json:"ingest_url"`
	}
	if err := json.Unmarshal([]byte(c.run("source", "get", id, "--json")), &got); err != nil || !got.SecretSet || got.Name != "acme on GitLab" {
		t.Errorf("get --json = %+v, %v", got, err)
	}

	// The secret from the file (its newline dropped) is what GitLab must send.
	body, err := os.ReadFile(filepath.Join("..", "..", "internal", "source", "testdata", "gitlab_deployment.json"))
	if err != nil {
		t.Fatal(err)
	}
	gitlab := func(secret string) int {
		tool := call{t: t, base: got.IngestURL, extra: signAs("GITLAB", secret, body, map[string]string{"X-Gitlab-Event": "Deployment Hook"})}
		st, _, _ := tool.do("POST", "", body, nil)
		return st
	}
	if st := gitlab("cli-source-secret"); st != 202 {
		t.Errorf("ingest with the file's secret: %d, want 202", st)
	}

	// Edit: a new secret from standard input, the name kept.
	out, errOut, err := c.exec([]byte("rotated-source-secret"), "source", "edit", id, "--secret-file", "-", "--env-types", "")
	if err != nil || !strings.Contains(out, "acme on GitLab") || strings.Contains(out, "prod*") {
		t.Fatalf("edit: %v\n%s%s", err, out, errOut)
	}
	if st := gitlab("cli-source-secret"); st != 401 {
		t.Errorf("ingest with the replaced secret: %d, want 401", st)
	}
	if st := gitlab("rotated-source-secret"); st != 202 {
		t.Errorf("ingest with the new secret: %d, want 202", st)
	}

	if errOut, _ := c.fail("source", "create", "--kind", "GITHUB", "--name", "x"); !strings.Contains(errOut, "--secret-file is required") {
		t.Errorf("create without a secret: %s", errOut)
	}
	if errOut, _ := c.fail("source", "create", "--kind", "JENKINS", "--name", "x", "--secret-file", secretFile); !strings.Contains(errOut, "kind") {
		t.Errorf("create with a bad kind: %s", errOut)
	}
	c.run("source", "delete", id)
	if st := gitlab("rotated-source-secret"); st != 404 {
		t.Errorf("ingest after delete: %d, want 404", st)
	}
}

// TestSourceSecretsReencrypt: `hookd migrate --reencrypt` moves sources'
// secrets to the newest key too, so the old key can go and the tools go
// on being verified.
func TestSourceSecretsReencrypt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		keyA, keyB := generateKey(t), generateKey(t)
		env := deliveryEnv(dbURL, map[string]string{"HOOKD_ENCRYPTION_KEY": keyA})
		srv := startServer(t, env)
		o := newOrg(t, srv, dbURL)
		var src struct {
			ID string `json:"id"`
		}
		if st, _, body := o.api.do("POST", o.path("/source"), map[string]any{"kind": "GITHUB", "name": "gh", "secret": "gh-source-secret"}, &src); st != 201 {
			t.Fatalf("create source: %d %s", st, body)
		}
		body, err := os.ReadFile(filepath.Join("..", "..", "internal", "source", "testdata", "github_deployment_status.json"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		ingest := func(srv *server) int {
			n++
			tool := call{t: t, base: srv.URL + o.path("/source/"+src.ID+"/ingest"),
				extra: signAs("GITHUB", "gh-source-secret", body, map[string]string{"X-GitHub-Event": "deployment_status", "X-GitHub-Delivery": "d-" + strconv.Itoa(n)})}
			st, _, _ := tool.do("POST", "", body, nil)
			return st
		}
		if st := ingest(srv); st != 202 {
			t.Fatalf("ingest with key A: %d", st)
		}
		srv.Stop(syscall.SIGTERM)
		env["HOOKD_ENCRYPTION_KEY"] = keyB + "," + keyA
		_, errOut, err := hookd(t, env, "migrate", "--reencrypt")
		if err != nil || !strings.Contains(errOut, "1 source secrets re-encrypted with key "+keyID(t, keyB)) {
			t.Fatalf("migrate --reencrypt: %v\n%s", err, errOut)
		}
		env["HOOKD_ENCRYPTION_KEY"] = keyB
		srv = startServer(t, env)
		if st := ingest(srv); st != 202 {
			t.Errorf("ingest with key B alone after --reencrypt: %d, want 202", st)
		}
	})
}
