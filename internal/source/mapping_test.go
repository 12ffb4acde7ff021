package source

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/hookd/hookd/internal/webhook"
)

// TestMappingTables checks each kind's status → event type table as
// docs/sources.md states it ("" is ignored).
func TestMappingTables(t *testing.T) {
	const (
		started   = webhook.EventDeploymentStarted
		succeeded = webhook.EventDeploymentSuccessful
		failed    = webhook.EventDeploymentFailure
		cancelled = webhook.EventDeploymentCancelled
	)
	type tc struct {
		kind    webhook.SourceKind
		headers map[string]string
		body    string
		want    webhook.EventType
	}
	var cases []tc
	for state, want := range map[string]webhook.EventType{
		"queued": started, "pending": started, "in_progress": started, "success": succeeded,
		"failure": failed, "error": failed, "inactive": "", "waiting": "",
	} {
		cases = append(cases, tc{webhook.SourceGitHub, map[string]string{"X-GitHub-Event": "deployment_status"},
			fmt.Sprintf(`{"deployment_status":{"state":%q},"deployment":{"id":1,"environment":"e"},"repository":{"name":"r"}}`, state), want})
	}
	for status, want := range map[string]webhook.EventType{
		"running": started, "success": succeeded, "failed": failed, "canceled": cancelled, "created": "", "blocked": "",
	} {
		cases = append(cases, tc{webhook.SourceGitLab, map[string]string{"X-Gitlab-Event": "Deployment Hook"},
			fmt.Sprintf(`{"status":%q,"deployment_id":1,"environment":"e","project":{"name":"p"}}`, status), want})
	}
	for _, f := range []struct {
		kind, severity, reason string
		want                   webhook.EventType
	}{
		{"Kustomization", "info", "Progressing", started},
		{"Kustomization", "info", "ReconciliationSucceeded", succeeded},
		{"HelmRelease", "info", "InstallSucceeded", succeeded},
		{"HelmRelease", "info", "UpgradeSucceeded", succeeded},
		{"Kustomization", "error", "HealthCheckFailed", failed},
		{"Kustomization", "error", "BuildFailed", failed},
		{"HelmRelease", "error", "ArtifactFailed", failed},
		{"HelmRelease", "info", "UpgradeFailed", failed},
		{"Kustomization", "error", "DependencyNotReady", failed},
		{"Kustomization", "info", "DependencyNotReady", ""},
		{"HelmRelease", "info", "RollbackSucceeded", ""},
		{"GitRepository", "error", "GitOperationFailed", ""},
	} {
		cases = append(cases, tc{webhook.SourceFlux, nil,
			fmt.Sprintf(`{"involvedObject":{"kind":%q,"namespace":"n","name":"o"},"severity":%q,"reason":%q}`, f.kind, f.severity, f.reason), f.want})
	}
	for _, a := range []struct {
		event, phase string
		want         webhook.EventType
	}{
		{"sync-running", "Running", started}, {"sync-succeeded", "Succeeded", succeeded}, {"sync-failed", "Failed", failed},
		{"health-degraded", "Succeeded", failed}, {"app-deleted", "", ""},
		{"", "Running", started}, {"", "Succeeded", succeeded}, {"", "Failed", failed}, {"", "Error", failed},
		{"", "Terminating", cancelled}, {"", "", ""},
	} {
		cases = append(cases, tc{webhook.SourceArgoCD, nil,
			fmt.Sprintf(`{"event":%q,"phase":%q,"app":"a","namespace":"n","revision":"r"}`, a.event, a.phase), a.want})
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s %s", c.kind, c.body)
		h := http.Header{}
		for k, v := range c.headers {
			h.Set(k, v)
		}
		res, err := Translate(newSource(c.kind), h, []byte(c.body))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var got webhook.EventType
		if res.Event != nil {
			got = res.Event.EventType
		} else if res.Ignored == "" {
			t.Errorf("%s: ignored without a reason", name)
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}

// FuzzTranslate: whatever a verified tool sends, translation gives an
// event that validates, a reason to ignore it, or an invalid-request
// error; never a panic or an internal error.
func FuzzTranslate(f *testing.F) {
	for _, name := range []string{"github_deployment_status.json", "gitlab_deployment.json", "flux_kustomization_failed.json",
		"flux_helmrelease_upgraded.json", "argocd_sync_succeeded.json", "qovery_deployment.json"} {
		b, err := testdataFS.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		for kind := range webhook.SourceKinds {
			f.Add(uint8(kind), b)
		}
	}
	f.Fuzz(func(t *testing.T, k uint8, body []byte) {
		kind := webhook.SourceKinds[int(k)%len(webhook.SourceKinds)]
		h := http.Header{"X-Github-Event": {"deployment_status"}, "X-Gitlab-Event": {"Deployment Hook"}}
		res, err := Translate(newSource(kind), h, body)
		switch {
		case err != nil:
			if code := webhook.ErrorCode(err); code != webhook.EInvalid {
				t.Fatalf("%s: error %s: %v", kind, code, err)
			}
		case res.Event != nil:
			if err := res.Event.Validate(); err != nil {
				t.Fatalf("%s: the event does not validate: %v", kind, err)
			}
		case res.Ignored == "":
			t.Fatalf("%s: no event, no reason, no error", kind)
		}
	})
}
