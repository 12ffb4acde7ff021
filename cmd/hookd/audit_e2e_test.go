package main

import (
	"encoding/json"
	"fmt"
	"os/user"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

type auditChangeJSON struct {
	Field  string          `json:"field"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Secret string          `json:"secret"`
}

type auditEntryJSON struct {
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
	Action    string `json:"action"`
	Actor     struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"actor"`
	ResourceType string            `json:"resource_type"`
	ResourceID   string            `json:"resource_id"`
	ResourceName string            `json:"resource_name"`
	Changes      []auditChangeJSON `json:"changes"`
}

func (e auditEntryJSON) change(field string) *auditChangeJSON {
	for i := range e.Changes {
		if e.Changes[i].Field == field {
			return &e.Changes[i]
		}
	}
	return nil
}

// auditTrail reads an organization's whole audit trail a page of `limit`
// at a time, following next_cursor, and returns it with every raw page.
func auditTrail(t *testing.T, api call, org uuid.UUID, limit int) ([]auditEntryJSON, string) {
	t.Helper()
	var (
		all []auditEntryJSON
		raw strings.Builder
	)
	path := fmt.Sprintf("/organization/%s/audit?limit=%d", org, limit)
	for range 100 {
		var page struct {
			Results    []auditEntryJSON `json:"results"`
			NextCursor *string          `json:"next_cursor"`
		}
		st, _, body := api.do("GET", path, nil, &page)
		if st != 200 || page.Results == nil {
			t.Fatalf("GET %s: %d %s", path, st, body)
		}
		raw.Write(body)
		if len(page.Results) > limit {
			t.Fatalf("GET %s: %d entries", path, len(page.Results))
		}
		all = append(all, page.Results...)
		if page.NextCursor == nil {
			return all, raw.String()
		}
		path = fmt.Sprintf("/organization/%s/audit?limit=%d&cursor=%s", org, limit, *page.NextCursor)
	}
	t.Fatal("the audit trail never ends")
	return nil, ""
}

var createdTokenRE = regexp.MustCompile(`created token (\S+) for organization`)

// TestAuditTrail makes every kind of audited change through the real
// binary (API with a token and a JWT, the token CLI, hookd disabling a
// webhook after a 410) and reads them back from the audit endpoint: who,
// when, what, newest first, per organization, and never a secret.
func TestAuditTrail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		const (
			jwtSecret  = "e2e-audit-jwt-secret-at-least-32-bytes!"
			secretOne  = "s3cr3t-one-never-in-the-trail"
			secretTwo  = "s3cr3t-two-never-in-the-trail"
			urlPass    = "pa55-in-url-never-in-the-trail"
			jwtSubject = "alice@example.com"
		)
		tg := newTarget(t)
		tg.setAnswer(func(path string, n int) int { return 410 })
		srv := startServer(t, deliveryEnv(dbURL, map[string]string{"HOOKD_JWT_HS256_SECRET": jwtSecret}))
		start := time.Now().UTC().Truncate(time.Second)

		orgID, otherOrg := uuid.New(), uuid.New()
		token := newToken(t, dbURL, orgID)
		otherToken := newToken(t, dbURL, otherOrg)
		api := call{t: t, base: srv.URL, auth: "Token " + token}
		jwtToken := signJWT(t, jwtSecret, jwt.MapClaims{"sub": jwtSubject, "exp": time.Now().Add(time.Hour).Unix(), "organizations": []string{orgID.String()}})
		asJWT := call{t: t, base: srv.URL, auth: "Bearer " + jwtToken}
		hooks := "/organization/" + orgID.String() + "/webhook"

		// A webhook's life: created (token), edited (JWT), disabled
		// (token), saved unchanged (not recorded), deleted (token).
		body := map[string]any{"kind": "STANDARD", "target_url": "https://deploy:" + urlPass + "@example.com/hook",
			"target_secret": secretOne, "description": "v1", "events": []string{"DEPLOYMENT_STARTED"}}
		var w webhookJSON
		if st, _, resp := api.do("POST", hooks, body, &w); st != 201 {
			t.Fatalf("create: %d %s", st, resp)
		}
		body["target_secret"] = secretTwo
		body["description"] = "v2"
		body["target_url"] = "https://deploy:" + urlPass + "-2@example.com/hook"
		if st, _, resp := asJWT.do("PUT", hooks+"/"+w.ID, body, nil); st != 200 {
			t.Fatalf("edit: %d %s", st, resp)
		}
		delete(body, "target_secret")
		body["enabled"] = false
		for range 2 {
			if st, _, resp := api.do("PUT", hooks+"/"+w.ID, body, nil); st != 200 {
				t.Fatalf("disable: %d %s", st, resp)
			}
		}
		if st, _, resp := api.do("DELETE", hooks+"/"+w.ID, nil, nil); st != 204 {
			t.Fatalf("delete: %d %s", st, resp)
		}

		// A token created and revoked with the CLI.
		env := map[string]string{"HOOKD_DATABASE_URL": dbURL}
		out, errOut, err := hookd(t, env, "token", "create", "--organization", orgID.String(), "--name", "ci-bot")
		m := createdTokenRE.FindStringSubmatch(errOut)
		if err != nil || m == nil {
			t.Fatalf("token create: %v\n%s", err, errOut)
		}
		ciToken, ciTokenID := strings.TrimSpace(out), m[1]
		if _, errOut, err := hookd(t, env, "token", "revoke", ciTokenID); err != nil {
			t.Fatalf("token revoke: %v\n%s", err, errOut)
		}

		// hookd disables a webhook whose target answers 410.
		var gone webhookJSON
		if st, _, resp := api.do("POST", hooks, map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/gone",
			"events": []string{"DEPLOYMENT_STARTED"}}, &gone); st != 201 {
			t.Fatalf("create: %d %s", st, resp)
		}
		if st, _, resp := api.do("POST", "/organization/"+orgID.String()+"/deployment-event",
			deploymentEvent("DEPLOYMENT_STARTED", "api", "STAGING"), nil); st != 202 {
			t.Fatalf("event: %d %s", st, resp)
		}
		waitFor(t, 20*time.Second, "hookd to disable the webhook", func() bool {
			var g webhookJSON
			api.do("GET", hooks+"/"+gone.ID, nil, &g)
			return !g.Enabled
		})
		end := time.Now().UTC().Add(time.Second)

		trail, raw := auditTrail(t, api, orgID, 3)
		all, _ := auditTrail(t, api, orgID, 100)
		if fmt.Sprint(trail) != fmt.Sprint(all) {
			t.Errorf("pages of 3 differ from one page:\n%v\n%v", trail, all)
		}
		var got []string
		for _, e := range trail {
			got = append(got, e.Action+" by "+e.Actor.Kind)
		}
		want := []string{
			"webhook.disabled by hookd", "webhook.created by token",
			"token.revoked by cli", "token.created by cli",
			"webhook.deleted by token", "webhook.disabled by token", "webhook.updated by jwt", "webhook.created by token",
			"token.created by cli",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("audit trail, newest first:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// When: in order, during the test.
		var prev time.Time
		for i := len(trail) - 1; i >= 0; i-- {
			at, err := time.Parse(time.RFC3339Nano, trail[i].CreatedAt)
			if err != nil || at.Before(start) || at.After(end) || at.Before(prev) {
				t.Errorf("entry %d created_at %q, want in order between %v and %v", i, trail[i].CreatedAt, start, end)
			}
			prev = at
		}

		// Who.
		mainTokenID := trail[8].ResourceID
		osUser := ""
		if u, err := user.Current(); err == nil {
			osUser = u.Username
		}
		for i, who := range map[int]string{0: "", 1: mainTokenID, 2: osUser, 3: osUser, 4: mainTokenID, 5: mainTokenID, 6: jwtSubject, 7: mainTokenID, 8: osUser} {
			if trail[i].Actor.ID != who {
				t.Errorf("entry %d (%s): actor id %q, want %q", i, trail[i].Action, trail[i].Actor.ID, who)
			}
		}

		// What.
		created, updated, disabled, deleted := trail[7], trail[6], trail[5], trail[4]
		for _, e := range []auditEntryJSON{created, updated, disabled, deleted} {
			if e.ResourceType != "webhook" || e.ResourceID != w.ID {
				t.Errorf("%s: resource %s %s, want webhook %s", e.Action, e.ResourceType, e.ResourceID, w.ID)
			}
		}
		if c := created.change("target_secret"); c == nil || c.Secret != "set" || c.Before != nil || c.After != nil {
			t.Errorf("created: target_secret change %+v, want only set", c)
		}
		if c := created.change("description"); c == nil || string(c.After) != `"v1"` {
			t.Errorf("created: description change %+v", c)
		}
		if c := updated.change("target_secret"); c == nil || c.Secret != "changed" || c.Before != nil || c.After != nil {
			t.Errorf("updated: target_secret change %+v, want only changed", c)
		}
		if c := updated.change("description"); c == nil || string(c.Before) != `"v1"` || string(c.After) != `"v2"` {
			t.Errorf("updated: description change %+v", c)
		}
		if c := updated.change("target_url"); c == nil || c.Secret != "changed" || string(c.After) != `"https://deploy:xxxxx@example.com/hook"` {
			t.Errorf("updated: target_url change %+v, want the masked URL and changed", c)
		}
		if len(disabled.Changes) != 1 || disabled.Changes[0].Field != "enabled" || string(disabled.Changes[0].After) != "false" {
			t.Errorf("disabled: changes %+v, want enabled alone", disabled.Changes)
		}
		if deleted.change("description") == nil || deleted.ResourceName != "https://deploy:xxxxx@example.com/hook" {
			t.Errorf("deleted: %+v, want what was deleted", deleted)
		}
		if e := trail[3]; e.ResourceType != "token" || e.ResourceID != ciTokenID || e.ResourceName != "ci-bot" {
			t.Errorf("token.created: %+v", e)
		}
		if e := trail[2]; e.ResourceType != "token" || e.ResourceID != ciTokenID || e.ResourceName != "ci-bot" || len(e.Changes) != 0 {
			t.Errorf("token.revoked: %+v", e)
		}
		byHookd := trail[0]
		if byHookd.ResourceID != gone.ID || byHookd.change("enabled") == nil ||
			!strings.Contains(string(byHookd.change("disabled_reason").After), "410 Gone") {
			t.Errorf("disabled by hookd: %+v, want the reason", byHookd)
		}

		// Another organization sees none of it, and its own entry only.
		other := call{t: t, base: srv.URL, auth: "Token " + otherToken}
		if st, _, resp := other.do("GET", "/organization/"+orgID.String()+"/audit", nil, nil); st != 403 {
			t.Errorf("another organization's token: %d %s, want 403", st, resp)
		}
		own, _ := auditTrail(t, other, otherOrg, 50)
		if len(own) != 1 || own[0].Action != "token.created" || own[0].ResourceID == mainTokenID {
			t.Fatalf("the other organization's trail: %+v, want its own token alone", own)
		}
		for _, e := range trail {
			if e.ResourceID == own[0].ResourceID {
				t.Errorf("organization A's trail holds B's entry %+v", e)
			}
		}

		// Never a secret, a token or a password: not in any answer, not
		// in the log.
		for _, secret := range []string{secretOne, secretTwo, urlPass, token, otherToken, ciToken, jwtToken, jwtSecret} {
			if strings.Contains(raw, secret) {
				t.Errorf("the audit trail holds a secret: %s", raw)
			}
			if strings.Contains(srv.logs.String(), secret) {
				t.Errorf("the server log holds a secret or token")
			}
		}
	})
}
