package webhook

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestWebhookAudit(t *testing.T) {
	by := Actor{Kind: ActorJWT, ID: "alice@example.com"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := Webhook{
		ID: uuid.New(), OrganizationID: uuid.New(), Kind: KindStandard,
		TargetURL: "https://deploy:hunter2@example.com/h?x=1", TargetSecret: "whsec_topsecret",
		Description: "d", Enabled: true, Events: []EventType{EventDeploymentStarted},
		ProjectNamesFilter: []string{}, EnvironmentTypesFilter: nil,
	}
	with := func(edit func(w *Webhook)) *Webhook {
		w := base
		edit(&w)
		return &w
	}
	tests := []struct {
		name          string
		before, after *Webhook
		action        AuditAction // "" for no entry
		changes       string      // the Changes as JSON
	}{
		{"create", nil, &base, AuditWebhookCreated,
			`[{"field":"kind","after":"STANDARD"},{"field":"target_url","after":"https://deploy:xxxxx@example.com/h?x=1"},` +
				`{"field":"target_secret","secret":"set"},{"field":"description","after":"d"},{"field":"enabled","after":true},` +
				`{"field":"events","after":["DEPLOYMENT_STARTED"]},{"field":"project_names_filter","after":[]},` +
				`{"field":"environment_types_filter","after":[]}]`},
		{"delete", &base, nil, AuditWebhookDeleted,
			`[{"field":"kind","before":"STANDARD"},{"field":"target_url","before":"https://deploy:xxxxx@example.com/h?x=1"},` +
				`{"field":"target_secret","secret":"removed"},{"field":"description","before":"d"},{"field":"enabled","before":true},` +
				`{"field":"events","before":["DEPLOYMENT_STARTED"]},{"field":"project_names_filter","before":[]},` +
				`{"field":"environment_types_filter","before":[]}]`},
		{"nothing changed", &base, with(func(w *Webhook) { w.UpdatedAt = at; w.EnvironmentTypesFilter = []EnvironmentMode{} }), "", "null"},
		{"secret changed", &base, with(func(w *Webhook) { w.TargetSecret = "whsec_other" }), AuditWebhookUpdated,
			`[{"field":"target_secret","secret":"changed"}]`},
		{"secret removed", &base, with(func(w *Webhook) { w.TargetSecret = "" }), AuditWebhookUpdated,
			`[{"field":"target_secret","secret":"removed"}]`},
		{"URL password changed", &base, with(func(w *Webhook) { w.TargetURL = "https://deploy:hunter3@example.com/h?x=1" }), AuditWebhookUpdated,
			`[{"field":"target_url","before":"https://deploy:xxxxx@example.com/h?x=1","after":"https://deploy:xxxxx@example.com/h?x=1","secret":"changed"}]`},
		{"URL changed", &base, with(func(w *Webhook) { w.TargetURL = "https://example.org/" }), AuditWebhookUpdated,
			`[{"field":"target_url","before":"https://deploy:xxxxx@example.com/h?x=1","after":"https://example.org/"}]`},
		{"disabled with an edit", &base, with(func(w *Webhook) { w.Enabled = false; w.ProjectNamesFilter = []string{"api-*"} }), AuditWebhookDisabled,
			`[{"field":"enabled","before":true,"after":false},{"field":"project_names_filter","before":[],"after":["api-*"]}]`},
		{"enabled, clearing hookd's reason", with(func(w *Webhook) { w.Enabled = false; w.DisabledReason = "410" }), &base, AuditWebhookEnabled,
			`[{"field":"enabled","before":false,"after":true},{"field":"disabled_reason","before":"410","after":""}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := WebhookAudit(by, at, tt.before, tt.after)
			if tt.action == "" {
				if e != nil {
					t.Fatalf("got an entry %+v for no change", e)
				}
				return
			}
			if e == nil {
				t.Fatal("no entry")
			}
			if e.Action != tt.action || e.Actor != by || !e.CreatedAt.Equal(at) || e.ResourceID != base.ID ||
				e.OrganizationID != base.OrganizationID || e.ResourceName != "https://deploy:xxxxx@example.com/h?x=1" && tt.name != "URL changed" {
				t.Errorf("entry = %+v", e)
			}
			b, _ := json.Marshal(e.Changes)
			if string(b) != tt.changes {
				t.Errorf("changes:\n got %s\nwant %s", b, tt.changes)
			}
			all, _ := json.Marshal(e)
			for _, secret := range []string{"hunter", "topsecret", "whsec_other"} {
				if strings.Contains(string(all), secret) {
					t.Errorf("the entry holds %q: %s", secret, all)
				}
			}
		})
	}
}

func TestAuditActionResourceType(t *testing.T) {
	for _, a := range AuditActions {
		if rt := a.ResourceType(); rt != "webhook" && rt != "token" && rt != "source" {
			t.Errorf("%s: resource type %q", a, rt)
		}
	}
}
