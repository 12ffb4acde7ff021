package source

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"embed"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/signing"
	"github.com/hookd/hookd/internal/webhook"
)

const testSecret = "It's a Secret to Everybody"

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexHMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Signed returns the headers the tool of kind sends with body, signed (or
// authenticated) with secret; extra headers are added as they are.
func Signed(kind webhook.SourceKind, secret string, body []byte, extra map[string]string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	switch kind {
	case webhook.SourceGitHub:
		h.Set("X-Hub-Signature-256", "sha256="+hexHMAC(secret, body))
	case webhook.SourceGitLab:
		h.Set("X-Gitlab-Token", secret)
	case webhook.SourceFlux:
		h.Set("X-Signature", "sha256="+hexHMAC(secret, body))
	case webhook.SourceArgoCD:
		h.Set(TokenHeader, secret)
	case webhook.SourceQovery:
		h.Set("Qovery-Signature", secret)
	}
	for k, v := range extra {
		h.Set(k, v)
	}
	return h
}

func newSource(kind webhook.SourceKind) *webhook.Source {
	return &webhook.Source{ID: uuid.New(), OrganizationID: uuid.New(), Kind: kind, Name: "test", Secret: testSecret,
		EnvironmentTypes: []webhook.EnvironmentRule{
			{Pattern: "production", Type: webhook.ModeProduction},
			{Pattern: "prod-*", Type: webhook.ModeProduction},
			{Pattern: "stag*", Type: webhook.ModeStaging},
		}}
}

type wantApp struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	CommitID string `json:"commit_id"`
	Branch   string `json:"branch"`
	URL      string `json:"url"`
}

// TestTranslateFixtures runs each tool's published example payload
// through Verify and Translate and checks every field of the event.
func TestTranslateFixtures(t *testing.T) {
	tests := []struct {
		kind     webhook.SourceKind
		fixture  string
		headers  map[string]string
		want     webhook.DeploymentEvent
		app      wantApp
		delivery string
	}{
		{
			kind: webhook.SourceGitHub, fixture: "github_deployment_status.json",
			headers: map[string]string{"X-GitHub-Event": "deployment_status", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
			want: webhook.DeploymentEvent{EventType: webhook.EventDeploymentSuccessful, DeploymentID: "326191728", CurrentStatus: "success",
				Project:     webhook.DeploymentProject{ID: "186853002", Name: "Hello-World"},
				Environment: webhook.DeploymentEnvironment{Name: "production", Mode: webhook.ModeProduction}},
			app: wantApp{ID: "186853002", Name: "Codertocat/Hello-World", CommitID: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", Branch: "master",
				URL: "https://github.com/Codertocat/Hello-World/actions/runs/1/job/2"},
			delivery: "deployment_status:344177809",
		},
		{
			kind: webhook.SourceGitLab, fixture: "gitlab_deployment.json",
			headers: map[string]string{"X-Gitlab-Event": "Deployment Hook", "Idempotency-Key": "f1c5a4c8-8b0e-4d6f-9e1a-3b2c1d0e9f8a", "X-Gitlab-Event-UUID": "other"},
			want: webhook.DeploymentEvent{EventType: webhook.EventDeploymentSuccessful, DeploymentID: "15", CurrentStatus: "success",
				Project:     webhook.DeploymentProject{ID: "30", Name: "test-deployment-webhooks"},
				Environment: webhook.DeploymentEnvironment{Name: "staging", Mode: webhook.ModeStaging}},
			app: wantApp{ID: "30", Name: "root/test-deployment-webhooks", CommitID: "279484c09fbe69ededfced8c1bb6e6d24616b468",
				URL: "http://10.126.0.2:3000/root/test-deployment-webhooks/-/jobs/796"},
			delivery: "f1c5a4c8-8b0e-4d6f-9e1a-3b2c1d0e9f8a",
		},
		{
			kind: webhook.SourceFlux, fixture: "flux_kustomization_failed.json",
			want: webhook.DeploymentEvent{EventType: webhook.EventDeploymentFailure,
				DeploymentID:  "Kustomization/apps/webapp@main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1",
				CurrentStatus: "ValidationFailed",
				Project:       webhook.DeploymentProject{ID: "7d0cdc51-ddcf-4743-b223-83ca5c699632", Name: "webapp"},
				Environment:   webhook.DeploymentEnvironment{Name: "apps", Mode: webhook.ModeDevelopment}},
			app: wantApp{ID: "7d0cdc51-ddcf-4743-b223-83ca5c699632", Name: "Kustomization/apps/webapp",
				CommitID: "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1", Branch: "main"},
			delivery: "Kustomization/apps/webapp|main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1|ValidationFailed||apps",
		},
		{
			kind: webhook.SourceFlux, fixture: "flux_helmrelease_upgraded.json",
			want: webhook.DeploymentEvent{EventType: webhook.EventDeploymentSuccessful,
				DeploymentID:  "HelmRelease/prod-eu/podinfo@main@sha1:9f2c1a4e8b7d6c5b4a39281706f5e4d3c2b1a098",
				CurrentStatus: "UpgradeSucceeded",
				Project:       webhook.DeploymentProject{ID: "1b5b1e2a-6d3c-4d54-9b1c-3f1f9d9c2a10", Name: "podinfo"},
				Environment:   webhook.DeploymentEnvironment{Name: "prod-eu", Mode: webhook.ModeProduction, ClusterName: "eu-1"}},
			app: wantApp{ID: "1b5b1e2a-6d3c-4d54-9b1c-3f1f9d9c2a10", Name: "HelmRelease/prod-eu/podinfo",
				CommitID: "9f2c1a4e8b7d6c5b4a39281706f5e4d3c2b1a098", Branch: "main"},
			delivery: "HelmRelease/prod-eu/podinfo|main@sha1:9f2c1a4e8b7d6c5b4a39281706f5e4d3c2b1a098|UpgradeSucceeded|eu-1|prod-eu|" +
				"prod-eu/podinfo.v3",
		},
		{
			kind: webhook.SourceArgoCD, fixture: "argocd_sync_succeeded.json",
			want: webhook.DeploymentEvent{EventType: webhook.EventDeploymentSuccessful,
				DeploymentID: "guestbook@53e28ff20cc530b9ada2173fbbd64d48338583ba", CurrentStatus: "sync-succeeded (health Healthy)",
				Project:     webhook.DeploymentProject{ID: "default", Name: "guestbook"},
				Environment: webhook.DeploymentEnvironment{Name: "prod-guestbook", Mode: webhook.ModeProduction, ClusterName: "in-cluster"}},
			app: wantApp{ID: "guestbook", Name: "https://github.com/argoproj/argocd-example-apps.git",
				CommitID: "53e28ff20cc530b9ada2173fbbd64d48338583ba", URL: "https://argocd.example.com/applications/guestbook"},
			delivery: "guestbook|53e28ff20cc530b9ada2173fbbd64d48338583ba|sync-succeeded|2024-05-02T09:14:03Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			src := newSource(tt.kind)
			body := fixture(t, tt.fixture)
			h := Signed(tt.kind, testSecret, body, tt.headers)
			if err := Verify(src, h, body, testNow); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			res, err := Translate(src, h, body)
			if err != nil {
				t.Fatalf("Translate: %v", err)
			}
			if res.Event == nil {
				t.Fatalf("ignored: %s", res.Ignored)
			}
			if err := res.Event.Validate(); err != nil {
				t.Fatalf("the event does not validate: %v", err)
			}
			var apps []wantApp
			if err := json.Unmarshal(res.Event.Applications, &apps); err != nil || len(apps) != 1 {
				t.Fatalf("applications = %s (%v), want one", res.Event.Applications, err)
			}
			if apps[0] != tt.app {
				t.Errorf("application = %+v\nwant          %+v", apps[0], tt.app)
			}
			got := *res.Event
			got.Applications = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("event = %+v\nwant    %+v", got, tt.want)
			}
			if res.DeliveryID != tt.delivery {
				t.Errorf("delivery id = %q, want %q", res.DeliveryID, tt.delivery)
			}
		})
	}
}

// Two upgrades of a HelmRelease's values alone keep its chart's version,
// Flux's revision for it: each is its own event, told apart by the Helm
// release's version its message names, and a repeat of one is the same.
// A Kustomization's message (how long the apply took) is not part of
// its key.
func TestFluxUpgradesOfValuesAlone(t *testing.T) {
	src := newSource(webhook.SourceFlux)
	delivery := func(fixtureName, from, to string) string {
		t.Helper()
		body := bytes.Replace(fixture(t, fixtureName), []byte(from), []byte(to), 1)
		res, err := Translate(src, Signed(webhook.SourceFlux, testSecret, body, nil), body)
		if err != nil || res.Event == nil {
			t.Fatalf("Translate = %+v, %v", res, err)
		}
		return res.DeliveryID
	}
	v3 := delivery("flux_helmrelease_upgraded.json", "", "")
	if v4 := delivery("flux_helmrelease_upgraded.json", "podinfo.v3", "podinfo.v4"); v4 == v3 {
		t.Errorf("two Helm releases of one chart version share the delivery id %q", v3)
	}
	if again := delivery("flux_helmrelease_upgraded.json", "", ""); again != v3 {
		t.Errorf("a repeat has the delivery id %q, the first %q", again, v3)
	}
	// A failure's message names no release version and carries Helm's
	// log, stamped anew at each repeat: it is no part of the key.
	failed := func(log string) string {
		return delivery("flux_helmrelease_upgraded.json", `"reason": "UpgradeSucceeded",
  "message": "Helm upgrade succeeded for release prod-eu/podinfo.v3 with chart podinfo@6.5.4"`,
			`"reason": "UpgradeFailed", "severity": "error",
  "message": "Helm upgrade failed for release prod-eu/podinfo with chart podinfo@6.5.4: timed out\n\nLast Helm logs:\n\n`+log+`"`)
	}
	if a, b := failed("2026-12-06T14:00:00.1Z: waiting for 1 pods"), failed("2026-12-06T14:05:00.2Z: waiting for 2 pods"); a != b || strings.Contains(a, "|UpgradeSucceeded|") {
		t.Errorf("two repeats of one failure have the delivery ids %q and %q, want one of a failure", a, b)
	}
	body := fixture(t, "flux_kustomization_failed.json")
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	if msg, _ := e["message"].(string); msg != "" {
		if other := delivery("flux_kustomization_failed.json", msg, msg+" (again)"); other != delivery("flux_kustomization_failed.json", "", "") {
			t.Errorf("a Kustomization's message changed its delivery id: %q", other)
		}
	}
}

// TestArgoCDHealthDegradedAgain: health can degrade, recover and degrade
// again within one sync, and Argo CD notifies each time; the second is a
// new deployment failure, not a repeat of the first.
func TestArgoCDHealthDegradedAgain(t *testing.T) {
	src := newSource(webhook.SourceArgoCD)
	delivery := func(event, healthSince string) string {
		t.Helper()
		body := []byte(`{"event":"` + event + `","app":"guestbook","namespace":"prod-guestbook","revision":"53e28ff",` +
			`"health":"Degraded","startedAt":"2026-12-06T09:14:03Z","healthSince":"` + healthSince + `"}`)
		res, err := Translate(src, Signed(webhook.SourceArgoCD, testSecret, body, nil), body)
		if err != nil || res.Event == nil {
			t.Fatalf("Translate = %+v, %v", res, err)
		}
		return res.DeliveryID
	}
	first := delivery("health-degraded", "2026-12-06T09:20:00Z")
	if again := delivery("health-degraded", "2026-12-06T09:20:00Z"); again != first {
		t.Errorf("a repeat has the delivery id %q, the first %q", again, first)
	}
	if second := delivery("health-degraded", "2026-12-06T11:02:40Z"); second == first {
		t.Errorf("a second degradation of one sync has the first's delivery id %q", first)
	}
	// Before Argo CD 2.14 the template renders no time: the sync's key.
	if old, older := delivery("health-degraded", "<no value>"), delivery("health-degraded", ""); old != older || old == first {
		t.Errorf("without a health time the delivery ids are %q and %q (with one %q)", old, older, first)
	}
	// Health changes are no part of a sync trigger's key.
	if a, b := delivery("sync-failed", "2026-12-06T09:20:00Z"), delivery("sync-failed", "2026-12-06T11:02:40Z"); a != b {
		t.Errorf("one sync's failure has the delivery ids %q and %q", a, b)
	}
}

// TestArgoCDMultiSourceDeploymentID: a multi-source application has no
// sync.revision (only sync.revisions), so the template renders none;
// each sync operation is still a deployment of its own, the same one for
// its running and succeeded notifications.
func TestArgoCDMultiSourceDeploymentID(t *testing.T) {
	src := newSource(webhook.SourceArgoCD)
	deploymentID := func(event, startedAt string) string {
		t.Helper()
		body := []byte(`{"event":"` + event + `","app":"guestbook","namespace":"prod","revision":"<no value>","repo":"<no value>",` +
			`"startedAt":"` + startedAt + `"}`)
		res, err := Translate(src, Signed(webhook.SourceArgoCD, testSecret, body, nil), body)
		if err != nil || res.Event == nil {
			t.Fatalf("Translate = %+v, %v", res, err)
		}
		return res.Event.DeploymentID
	}
	running, succeeded := deploymentID("sync-running", "2026-12-06T09:14:03Z"), deploymentID("sync-succeeded", "2026-12-06T09:14:03Z")
	if running != succeeded {
		t.Errorf("one sync's notifications have the deployment ids %q and %q", running, succeeded)
	}
	if next := deploymentID("sync-running", "2026-12-06T10:00:00Z"); next == running {
		t.Errorf("two syncs share the deployment id %q", next)
	}
}

func TestTranslateQovery(t *testing.T) {
	src := newSource(webhook.SourceQovery)
	body := fixture(t, "qovery_deployment.json")
	// hookd's own STANDARD delivery: Standard Webhooks headers.
	h := http.Header{}
	h.Set(signing.HeaderID, "0190a6d2-1111-7000-8000-000000000001")
	h.Set(signing.HeaderTimestamp, "1767323045")
	h.Set(signing.HeaderSignature, signing.Sign(testSecret, "0190a6d2-1111-7000-8000-000000000001", time.Unix(1767323045, 0), body))
	if err := Verify(src, h, body, time.Unix(1767323045, 0).Add(time.Minute)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := Verify(src, h, body, time.Unix(1767323045, 0).Add(time.Hour)); err == nil {
		t.Error("a signature an hour old verified")
	}
	res, err := Translate(src, h, body)
	if err != nil || res.Event == nil {
		t.Fatalf("Translate = %+v, %v", res, err)
	}
	e := res.Event
	if e.EventType != webhook.EventDeploymentFailure || e.DeploymentID != "7f3c9a1e-5b2d-4c8e-9f1a-2b3c4d5e6f70" ||
		e.CurrentStatus != "DEPLOYMENT_ERROR" || e.DesiredStatus != "DEPLOYED" ||
		e.Project != (webhook.DeploymentProject{ID: "p-123", Name: "billing"}) ||
		e.Environment != (webhook.DeploymentEnvironment{ID: "e-456", Name: "production", Mode: webhook.ModeProduction, ClusterName: "eu-west-3"}) ||
		string(e.Applications) != `[{"id":"a-1","name":"api","commit_id":"c0ffee"}]` {
		t.Errorf("event = %+v (applications %s)", e, e.Applications)
	}
	if res.DeliveryID != "0190a6d2-1111-7000-8000-000000000001" {
		t.Errorf("delivery id = %q", res.DeliveryID)
	}
	// Qovery itself: the secret in Qovery-Signature.
	if err := Verify(src, Signed(webhook.SourceQovery, testSecret, body, nil), body, testNow); err != nil {
		t.Errorf("Qovery-Signature: %v", err)
	}
}

// TestVerifyRefuses: every kind refuses a request without its credential,
// with a wrong one, and with a body altered after signing.
func TestVerifyRefuses(t *testing.T) {
	body := []byte(`{"any":"thing"}`)
	for _, kind := range webhook.SourceKinds {
		t.Run(string(kind), func(t *testing.T) {
			src := newSource(kind)
			cases := map[string]http.Header{
				"unsigned":     {},
				"wrong secret": Signed(kind, "not the secret", body, nil),
			}
			if kind == webhook.SourceGitHub || kind == webhook.SourceFlux {
				altered := Signed(kind, testSecret, []byte(`{"any":"other"}`), nil)
				cases["altered body"] = altered
				bad := Signed(kind, testSecret, body, nil)
				for k := range bad {
					if strings.Contains(k, "Signature") {
						bad.Set(k, "sha256=zz")
					}
				}
				cases["not hex"] = bad
			}
			for name, h := range cases {
				err := Verify(src, h, body, testNow)
				if webhook.ErrorCode(err) != webhook.EUnauthorized {
					t.Errorf("%s: %v, want unauthorized", name, err)
					continue
				}
				if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "not the secret") {
					t.Errorf("%s: the error names a secret: %v", name, err)
				}
			}
			if err := Verify(src, Signed(kind, testSecret, body, nil), body, testNow); err != nil {
				t.Errorf("the right secret: %v", err)
			}
		})
	}
	// An unsigned request says what to set in the tool: Flux's usual
	// Provider type (generic) does not sign.
	for kind, want := range map[webhook.SourceKind]string{webhook.SourceGitHub: "Secret", webhook.SourceFlux: "generic-hmac"} {
		if err := Verify(newSource(kind), http.Header{}, body, testNow); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s unsigned: %v, want an error naming %s", kind, err, want)
		}
	}
	// Flux's other hash functions.
	m := hmac.New(sha512.New, []byte(testSecret))
	m.Write(body)
	h := http.Header{"X-Signature": {"sha512=" + hex.EncodeToString(m.Sum(nil))}}
	if err := Verify(newSource(webhook.SourceFlux), h, body, testNow); err != nil {
		t.Errorf("Flux sha512: %v", err)
	}
}

// TestTranslateIgnores: what is not a deployment comes back with a reason,
// never an error; what is not the tool's JSON is invalid.
func TestTranslateIgnores(t *testing.T) {
	gh := fixture(t, "github_deployment_status.json")
	inactive := []byte(strings.Replace(string(gh), `"state": "success"`, `"state": "inactive"`, 1))
	tests := []struct {
		name    string
		kind    webhook.SourceKind
		headers map[string]string
		body    []byte
		ping    bool
	}{
		{"github ping", webhook.SourceGitHub, map[string]string{"X-GitHub-Event": "ping"}, fixture(t, "github_ping.json"), true},
		{"github push", webhook.SourceGitHub, map[string]string{"X-GitHub-Event": "push"}, []byte(`{}`), false},
		{"github inactive", webhook.SourceGitHub, map[string]string{"X-GitHub-Event": "deployment_status"}, inactive, false},
		{"gitlab push", webhook.SourceGitLab, map[string]string{"X-Gitlab-Event": "Push Hook"}, []byte(`{}`), false},
		{"gitlab created", webhook.SourceGitLab, map[string]string{"X-Gitlab-Event": "Deployment Hook"}, []byte(`{"status":"created","project":{"name":"p"},"environment":"e"}`), false},
		{"flux source", webhook.SourceFlux, nil, []byte(`{"involvedObject":{"kind":"GitRepository","name":"flux-system"},"severity":"info","reason":"NewArtifact"}`), false},
		{"flux dependency", webhook.SourceFlux, nil, []byte(`{"involvedObject":{"kind":"Kustomization","name":"apps"},"severity":"info","reason":"DependencyNotReady"}`), false},
		{"argocd created", webhook.SourceArgoCD, nil, []byte(`{"event":"app-created","app":"a","namespace":"n"}`), false},
		{"qovery other payload", webhook.SourceQovery, nil, []byte(`{"event_type":"DEPLOYMENT_STARTED","payload_type":"AUDIT_LOG","payload":{}}`), false},
		{"qovery unknown event", webhook.SourceQovery, nil, []byte(`{"event_type":"CLUSTER_UPDATED","payload_type":"DEPLOYMENT","payload":{}}`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(tt.kind)
			res, err := Translate(src, Signed(tt.kind, testSecret, tt.body, tt.headers), tt.body)
			if err != nil || res.Event != nil || res.Ignored == "" || res.Ping != tt.ping {
				t.Errorf("Translate = %+v, %v; want ignored with a reason (ping %v)", res, err, tt.ping)
			}
		})
	}
	// A webhook left with GitHub's default content type (form) must fail
	// at its ping, when it is set up and GitHub shows the answer, not at
	// the first deployment.
	form := []byte("payload=%7B%22action%22%3A%22created%22%7D")
	for _, event := range []string{"deployment_status", "ping"} {
		if _, err := Translate(newSource(webhook.SourceGitHub), http.Header{"X-Github-Event": {event}}, form); err == nil ||
			!strings.Contains(err.Error(), "application/json") {
			t.Errorf("a form-encoded GitHub %s: %v, want an error naming the content type to set", event, err)
		}
	}
	for _, kind := range webhook.SourceKinds {
		headers := map[string]string{"X-GitHub-Event": "deployment_status", "X-Gitlab-Event": "Deployment Hook"}
		for _, body := range []string{`{"broken`, `[1,2]`, `"s"`} {
			if _, err := Translate(newSource(kind), Signed(kind, testSecret, []byte(body), headers), []byte(body)); webhook.ErrorCode(err) != webhook.EInvalid {
				t.Errorf("%s %s: %v, want invalid", kind, body, err)
			}
		}
	}
}

func TestEnvironmentType(t *testing.T) {
	src := newSource(webhook.SourceGitHub)
	for name, want := range map[string]webhook.EnvironmentMode{
		"production": webhook.ModeProduction, "PROD-eu": webhook.ModeProduction, "staging": webhook.ModeStaging,
		"preview-42": webhook.ModeDevelopment, "": webhook.ModeDevelopment,
	} {
		if got := src.EnvironmentType(name); got != want {
			t.Errorf("EnvironmentType(%q) = %s, want %s", name, got, want)
		}
	}
}

//go:embed testdata/*.json
var testdataFS embed.FS

// TestGitHubKeyIsSigned: GitHub signs the body alone, not its headers, so
// the key comes from the signed body: a captured request sent again with
// a fresh (or no) X-GitHub-Delivery is the same delivery, answered as a
// replay, never a new event. Each deployment status is its own event.
func TestGitHubKeyIsSigned(t *testing.T) {
	src := newSource(webhook.SourceGitHub)
	delivery := func(body []byte, guid string) string {
		t.Helper()
		headers := map[string]string{"X-GitHub-Event": "deployment_status"}
		if guid != "" {
			headers["X-GitHub-Delivery"] = guid
		}
		res, err := Translate(src, Signed(webhook.SourceGitHub, testSecret, body, headers), body)
		if err != nil || res.Event == nil {
			t.Fatalf("Translate = %+v, %v", res, err)
		}
		if res.DeliveryID == "" {
			t.Fatalf("no delivery id: the event would have no key")
		}
		return res.DeliveryID
	}
	success := fixture(t, "github_deployment_status.json")
	first := delivery(success, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	for _, guid := range []string{"72d3162e-cc78-11e3-81ab-4c9367dc0958", "00000000-0000-4000-8000-000000000001", ""} {
		if again := delivery(success, guid); again != first {
			t.Errorf("the same signed body with X-GitHub-Delivery %q: delivery id %q, the first %q", guid, again, first)
		}
	}
	// The same deployment's next status: another id, another event.
	running := bytes.Replace(success, []byte(`"id": 344177809`), []byte(`"id": 344177808`), 1)
	running = bytes.Replace(running, []byte(`"state": "success"`), []byte(`"state": "in_progress"`), 1)
	if other := delivery(running, "72d3162e-cc78-11e3-81ab-4c9367dc0959"); other == first {
		t.Errorf("two statuses of one deployment share the delivery id %q", first)
	}
	// A body without the status's id (not GitHub's) is keyed on its
	// bytes, all of them signed.
	bare := []byte(`{"deployment_status":{"state":"success"},"deployment":{"id":1,"environment":"e"},"repository":{"name":"r"}}`)
	if a, b := delivery(bare, "a"), delivery(bare, "b"); a != b {
		t.Errorf("one body without a status id, two X-GitHub-Delivery: delivery ids %q and %q", a, b)
	}
	failed := bytes.Replace(bare, []byte("success"), []byte("failure"), 1)
	if a, b := delivery(bare, "a"), delivery(failed, "a"); a == b {
		t.Errorf("two bodies without a status id share the delivery id %q", a)
	}
}
