package source

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"testing"
	"text/template"

	"github.com/hookd/hookd/internal/webhook"
)

// TestArgoCDTemplatesInDocs renders the Argo CD templates docs/sources.md
// gives, as Argo CD's notifications controller renders them (Go
// templates over the application as a map), and runs each body through
// the translation: what a user pastes is what hookd understands.
func TestArgoCDTemplatesInDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/sources.md")
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, line := range strings.Split(string(doc), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, `{"event":`) {
			bodies = append(bodies, l)
		}
	}
	if len(bodies) != 4 {
		t.Fatalf("docs/sources.md has %d Argo CD template bodies, want 4", len(bodies))
	}
	app := func(labels map[string]any, phase, health string) map[string]any {
		metadata := map[string]any{"name": "guestbook"}
		if labels != nil {
			metadata["labels"] = labels
		}
		return map[string]any{
			"metadata": metadata,
			"spec": map[string]any{
				"project":     "default",
				"source":      map[string]any{"repoURL": "https://github.com/argoproj/argocd-example-apps.git"},
				"destination": map[string]any{"name": "in-cluster", "namespace": "prod-guestbook"},
			},
			"status": map[string]any{
				"sync":           map[string]any{"status": "Synced", "revision": "53e28ff20cc530b9ada2173fbbd64d48338583ba"},
				"health":         map[string]any{"status": health, "lastTransitionTime": "2024-05-02T09:20:41Z"},
				"operationState": map[string]any{"phase": phase, "startedAt": "2024-05-02T09:14:03Z"},
			},
		}
	}
	want := []webhook.EventType{webhook.EventDeploymentStarted, webhook.EventDeploymentSuccessful, webhook.EventDeploymentFailure, webhook.EventDeploymentFailure}
	src := newSource(webhook.SourceArgoCD)
	for i, body := range bodies {
		tmpl, err := template.New("body").Parse(body)
		if err != nil {
			t.Fatalf("template %d does not parse: %v", i, err)
		}
		for _, tc := range []struct {
			labels  map[string]any
			envName string
		}{
			{nil, "prod-guestbook"},
			{map[string]any{"environment": "staging"}, "staging"},
			{map[string]any{"team": "a"}, "prod-guestbook"},
		} {
			var out bytes.Buffer
			data := map[string]any{"app": app(tc.labels, "Succeeded", "Healthy"), "context": map[string]any{"argocdUrl": "https://argocd.example.com"}}
			if err := tmpl.Execute(&out, data); err != nil {
				t.Fatalf("template %d: %v", i, err)
			}
			h := http.Header{TokenHeader: {testSecret}}
			if err := Verify(src, h, out.Bytes(), testNow); err != nil {
				t.Fatal(err)
			}
			res, err := Translate(src, h, out.Bytes())
			if err != nil || res.Event == nil {
				t.Fatalf("template %d rendered %s: %+v, %v", i, out.String(), res, err)
			}
			e := res.Event
			if e.EventType != want[i] || e.Project.Name != "guestbook" || e.Environment.Name != tc.envName ||
				e.DeploymentID != "guestbook@53e28ff20cc530b9ada2173fbbd64d48338583ba" || e.Environment.ClusterName != "in-cluster" {
				t.Errorf("template %d with labels %v: %+v", i, tc.labels, e)
			}
			if degraded := i == 3; degraded != strings.Contains(res.DeliveryID, "2024-05-02T09:20:41Z") {
				t.Errorf("template %d: delivery id %q (the health's time belongs to health-degraded's alone)", i, res.DeliveryID)
			}
		}
	}
}
