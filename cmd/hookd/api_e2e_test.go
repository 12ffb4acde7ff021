package main

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

type webhookJSON struct {
	ID                     string   `json:"id"`
	CreatedAt              string   `json:"created_at"`
	UpdatedAt              string   `json:"updated_at"`
	Kind                   string   `json:"kind"`
	TargetURL              string   `json:"target_url"`
	TargetSecretSet        bool     `json:"target_secret_set"`
	Description            string   `json:"description"`
	Enabled                bool     `json:"enabled"`
	Events                 []string `json:"events"`
	ProjectNamesFilter     []string `json:"project_names_filter"`
	EnvironmentTypesFilter []string `json:"environment_types_filter"`
}

type errorJSON struct {
	Status int    `json:"status"`
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

// TestWebhookAPI drives every webhook operation and error case through
// the real binary, as a Qovery client would.
func TestWebhookAPI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		const jwtSecret = "e2e-jwt-secret-at-least-32-bytes-long!"
		srv := startServer(t, map[string]string{"HOOKD_DATABASE_URL": dbURL, "HOOKD_JWT_HS256_SECRET": jwtSecret})
		org, otherOrg := uuid.New(), uuid.New()
		token := newToken(t, dbURL, org)
		otherToken := newToken(t, dbURL, otherOrg)
		api := call{t: t, base: srv.URL, auth: "Token " + token}
		base := "/organization/" + org.String() + "/webhook"

		// Empty list first.
		var list struct{ Results []webhookJSON }
		if st, _, body := api.do("GET", base, nil, &list); st != 200 || list.Results == nil || len(list.Results) != 0 {
			t.Fatalf("empty list: %d %s", st, body)
		}

		// Create with every field, duplicates in arrays removed, order kept.
		var created webhookJSON
		st, hdr, body := api.do("POST", base, map[string]any{
			"kind": "STANDARD", "target_url": "https://example.com/hook", "target_secret": "s3cr3t-value",
			"description": "deploys", "enabled": true,
			"events":                   []string{"DEPLOYMENT_FAILURE", "DEPLOYMENT_STARTED", "DEPLOYMENT_FAILURE"},
			"project_names_filter":     []string{"billing*", "api", "billing*"},
			"environment_types_filter": []string{"PRODUCTION", "STAGING", "PRODUCTION"},
			"unknown_field":            "ignored",
		}, &created)
		if st != 201 || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("create: %d %s %s", st, hdr.Get("Content-Type"), body)
		}
		if strings.Contains(string(body), "s3cr3t-value") {
			t.Fatalf("create response leaks the secret: %s", body)
		}
		want := webhookJSON{ID: created.ID, CreatedAt: created.CreatedAt, UpdatedAt: created.UpdatedAt, Kind: "STANDARD",
			TargetURL: "https://example.com/hook", TargetSecretSet: true, Description: "deploys", Enabled: true,
			Events: []string{"DEPLOYMENT_FAILURE", "DEPLOYMENT_STARTED"}, ProjectNamesFilter: []string{"billing*", "api"},
			EnvironmentTypesFilter: []string{"PRODUCTION", "STAGING"}}
		if fmt.Sprint(created) != fmt.Sprint(want) {
			t.Fatalf("created:\n got %+v\nwant %+v", created, want)
		}
		if _, err := uuid.Parse(created.ID); err != nil {
			t.Fatalf("id %q is not a UUID", created.ID)
		}
		for _, ts := range []string{created.CreatedAt, created.UpdatedAt} {
			if tm, err := time.Parse(time.RFC3339, ts); err != nil || tm.Location() != time.UTC {
				t.Fatalf("timestamp %q is not RFC 3339 UTC", ts)
			}
		}
		hook := base + "/" + created.ID

		// Minimal create: every field comes back, arrays as [], description "".
		st, _, body = api.do("POST", base, `{"kind":"SLACK","target_url":"https://hooks.slack.com/services/x","events":["DEPLOYMENT_SUCCESSFUL"]}`, nil)
		if st != 201 || !strings.Contains(string(body), `"project_names_filter":[]`) || !strings.Contains(string(body), `"description":""`) ||
			!strings.Contains(string(body), `"enabled":true`) || !strings.Contains(string(body), `"target_secret_set":false`) {
			t.Fatalf("minimal create: %d %s", st, body)
		}

		// Get and list.
		var got webhookJSON
		if st, _, body := api.do("GET", hook, nil, &got); st != 200 || fmt.Sprint(got) != fmt.Sprint(created) {
			t.Fatalf("get: %d %s", st, body)
		}
		if st, _, body := api.do("GET", base, nil, &list); st != 200 || len(list.Results) != 2 {
			t.Fatalf("list: %d %s", st, body)
		}

		// Edit is a full replace; an absent secret keeps the stored one,
		// as Qovery's console sends the response object back.
		edit := map[string]any{"id": created.ID, "created_at": created.CreatedAt, "target_secret_set": true,
			"kind": "STANDARD", "target_url": "https://example.com/v2", "events": []string{"DEPLOYMENT_SUCCESSFUL"}, "enabled": false}
		var edited webhookJSON
		if st, _, body := api.do("PUT", hook, edit, &edited); st != 200 || !edited.TargetSecretSet || edited.Enabled ||
			edited.TargetURL != "https://example.com/v2" || edited.Description != "" || len(edited.ProjectNamesFilter) != 0 ||
			edited.CreatedAt != created.CreatedAt || edited.UpdatedAt < created.UpdatedAt {
			t.Fatalf("edit: %d %s", st, body)
		}
		edit["target_secret"] = nil
		if api.do("PUT", hook, edit, &edited); !edited.TargetSecretSet {
			t.Fatal("target_secret: null removed the secret; it must keep it")
		}
		edit["target_secret"] = ""
		if api.do("PUT", hook, edit, &edited); edited.TargetSecretSet {
			t.Fatal(`target_secret: "" did not remove the secret`)
		}
		edit["target_secret"] = "new-secret"
		if api.do("PUT", hook, edit, &edited); !edited.TargetSecretSet {
			t.Fatal("a new target_secret was not set")
		}

		// The delivery log is empty until something is delivered.
		if st, _, body := api.do("GET", hook+"/event", nil, nil); st != 200 || strings.TrimSpace(string(body)) != `{"results":[]}` {
			t.Fatalf("event log: %d %s", st, body)
		}

		// Validation: each error is a 400 that names the field.
		valid := func() map[string]any {
			return map[string]any{"kind": "STANDARD", "target_url": "https://example.com/x", "events": []string{"DEPLOYMENT_STARTED"}}
		}
		with := func(k string, v any) map[string]any { m := valid(); m[k] = v; return m }
		without := func(k string) map[string]any { m := valid(); delete(m, k); return m }
		cases := []struct {
			name  string
			body  any
			field string
		}{
			{"no kind", without("kind"), "kind"},
			{"bad kind", with("kind", "EMAIL"), "kind"},
			{"no url", without("target_url"), "target_url"},
			{"relative url", with("target_url", "/hook"), "target_url"},
			{"ftp url", with("target_url", "ftp://example.com/x"), "target_url"},
			{"url without host", with("target_url", "https:///x"), "target_url"},
			{"long url", with("target_url", "https://example.com/"+strings.Repeat("a", 2048)), "target_url"},
			{"no events", without("events"), "events"},
			{"empty events", with("events", []string{}), "events"},
			{"bad event", with("events", []string{"DEPLOYMENT_EXPLODED"}), "events"},
			{"bad env type", with("environment_types_filter", []string{"QA"}), "environment_types_filter"},
			{"long description", with("description", strings.Repeat("d", 1025)), "description"},
			{"long secret", with("target_secret", strings.Repeat("s", 1025)), "target_secret"},
			{"too many project filters", with("project_names_filter", manyNames(101)), "project_names_filter"},
			{"long project filter", with("project_names_filter", []string{strings.Repeat("p", 256)}), "project_names_filter"},
			{"wrong type", with("enabled", "yes"), "enabled"},
			{"events not array", with("events", "DEPLOYMENT_STARTED"), "events"},
		}
		for _, c := range cases {
			var e errorJSON
			st, hdr, body := api.do("POST", base, c.body, &e)
			if st != 400 || e.Status != 400 || e.Error != "Bad Request" || !strings.Contains(e.Detail, c.field) || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("%s: got %d %s, want 400 naming %s", c.name, st, body, c.field)
			}
		}
		for name, raw := range map[string]string{"malformed JSON": `{"kind":`, "not an object": `[1,2]`, "empty body": ``} {
			var e errorJSON
			if st, _, body := api.do("POST", base, raw, &e); st != 400 || e.Detail == "" {
				t.Errorf("%s: got %d %s, want 400", name, st, body)
			}
		}
		var e errorJSON
		big := `{"description":"` + strings.Repeat("x", 1<<20) + `"}`
		if st, _, body := api.do("POST", base, big, &e); st != 413 || e.Status != 413 {
			t.Errorf("body over 1 MiB: got %d %s, want 413", st, body)
		}
		if api.do("GET", base, nil, &list); len(list.Results) != 2 {
			t.Errorf("failed requests stored something: %d webhooks", len(list.Results))
		}

		// Authentication and tenancy.
		authCases := []struct {
			name   string
			auth   string
			path   string
			status int
		}{
			{"no credentials", "", base, 401},
			{"malformed header", "Token", base, 401},
			{"unknown scheme", "Basic dXNlcjpwYXNz", base, 401},
			{"unknown token", "Token hkd_unknown", base, 401},
			{"other organization", "Token " + otherToken, base, 403},
			{"other organization's webhook", "Token " + otherToken, "/organization/" + otherOrg.String() + "/webhook/" + created.ID, 404},
			{"expired JWT", "Bearer " + signJWT(t, jwtSecret, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "organizations": []string{org.String()}}), base, 401},
			{"JWT without exp", "Bearer " + signJWT(t, jwtSecret, jwt.MapClaims{"organizations": []string{org.String()}}), base, 401},
			{"JWT with wrong key", "Bearer " + signJWT(t, "another-secret-another-secret-xx", jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "organizations": []string{org.String()}}), base, 401},
			{"JWT for other org", "Bearer " + signJWT(t, jwtSecret, jwt.MapClaims{"sub": "e2e-user", "exp": time.Now().Add(time.Hour).Unix(), "organizations": []string{otherOrg.String()}}), base, 403},
			{"valid JWT", "Bearer " + signJWT(t, jwtSecret, jwt.MapClaims{"sub": "e2e-user", "exp": time.Now().Add(time.Hour).Unix(), "organizations": []string{org.String()}}), base, 200},
			{"JWT without sub", "Bearer " + signJWT(t, jwtSecret, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix(), "organizations": []string{org.String()}}), base, 401},
			{"malformed organization id", "Token " + token, "/organization/not-a-uuid/webhook", 400},
			{"malformed webhook id", "Token " + token, base + "/123", 400},
			{"unknown webhook", "Token " + token, base + "/" + uuid.NewString(), 404},
		}
		for _, c := range authCases {
			var e errorJSON
			st, _, body := call{t: t, base: srv.URL, auth: c.auth}.do("GET", c.path, nil, &e)
			if st != c.status || (st >= 400 && (e.Status != st || e.Detail == "")) {
				t.Errorf("%s: got %d %s, want %d", c.name, st, body, c.status)
			}
			if strings.Contains(string(body), token) || strings.Contains(string(body), otherToken) || strings.Contains(string(body), created.TargetURL) && st >= 400 {
				t.Errorf("%s: the answer leaks a credential or another organization's data: %s", c.name, body)
			}
		}
		// Another organization can't edit or delete through its own path.
		other := call{t: t, base: srv.URL, auth: "Token " + otherToken}
		otherHook := "/organization/" + otherOrg.String() + "/webhook/" + created.ID
		if st, _, _ := other.do("PUT", otherHook, valid(), nil); st != 404 {
			t.Errorf("edit of another organization's webhook: %d, want 404", st)
		}
		if st, _, _ := other.do("DELETE", otherHook, nil, nil); st != 404 {
			t.Errorf("delete of another organization's webhook: %d, want 404", st)
		}

		// Method not allowed and unknown paths get the JSON error body.
		if st, hdr, body := api.do("PATCH", hook, nil, &e); st != 405 || e.Status != 405 || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("PATCH: %d %s", st, body)
		}
		if st, _, body := api.do("GET", "/nope", nil, &e); st != 404 || e.Status != 404 {
			t.Errorf("unknown path: %d %s", st, body)
		}

		// Delete, then it is gone.
		if st, _, body := api.do("DELETE", hook, nil, nil); st != 204 || len(body) != 0 {
			t.Fatalf("delete: %d %q", st, body)
		}
		if st, _, _ := api.do("GET", hook, nil, nil); st != 404 {
			t.Fatalf("get after delete: %d", st)
		}
		if st, _, _ := api.do("DELETE", hook, nil, nil); st != 404 {
			t.Fatalf("second delete: %d", st)
		}

		// Revoke the token: 401 from then on, while the server runs.
		listOut, _, err := hookd(t, map[string]string{"HOOKD_DATABASE_URL": dbURL}, "token", "list", "--organization", org.String())
		if err != nil || !strings.Contains(listOut, "e2e") || strings.Contains(listOut, token) {
			t.Fatalf("token list: %v %q", err, listOut)
		}
		tokenID := strings.Fields(strings.Split(listOut, "\n")[1])[0]
		if _, errOut, err := hookd(t, map[string]string{"HOOKD_DATABASE_URL": dbURL}, "token", "revoke", tokenID); err != nil {
			t.Fatalf("token revoke: %v %s", err, errOut)
		}
		// The server trusts a token it looked up for a second at most.
		for deadline := time.Now().Add(5 * time.Second); ; {
			st, _, _ := api.do("GET", base, nil, nil)
			if st == 401 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("revoked token: still %d after 5s, want 401", st)
			}
			time.Sleep(50 * time.Millisecond)
		}

		// Health, readiness and the OpenAPI document need no credentials.
		anon := call{t: t, base: srv.URL}
		for _, p := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
			if st, _, _ := anon.do("GET", p, nil, nil); st != 200 {
				t.Errorf("%s: %d", p, st)
			}
		}

		// SIGTERM: exit 0, promptly.
		start := time.Now()
		if err := srv.Stop(syscall.SIGTERM); err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("took %v to stop", d)
		}
		for _, secret := range []string{token, otherToken, "s3cr3t-value", "new-secret", jwtSecret} {
			if strings.Contains(srv.logs.String(), secret) {
				t.Fatalf("the logs contain a secret or token")
			}
		}
	})
}

func manyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("p%d", i)
	}
	return out
}

func signJWT(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var _ = http.StatusOK
