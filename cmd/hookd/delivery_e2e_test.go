package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/delivery"
	"github.com/hookd/hookd/internal/signing"
)

// deliveryEnv is a server that may deliver to loopback targets, with a
// short retry schedule so retries happen within a test.
func deliveryEnv(dbURL string, extra map[string]string) map[string]string {
	env := map[string]string{
		"HOOKD_DATABASE_URL":         dbURL,
		"HOOKD_ALLOWED_TARGET_CIDRS": "127.0.0.0/8,::1/128",
		"HOOKD_RETRY_SCHEDULE":       "0s,200ms,200ms",
		"HOOKD_DELIVERY_TIMEOUT":     "30s",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// org is one organization's view of a running server.
type org struct {
	t   *testing.T
	id  uuid.UUID
	api call
}

func newOrg(t *testing.T, srv *server, dbURL string) *org {
	id := uuid.New()
	return &org{t: t, id: id, api: call{t: t, base: srv.URL, auth: "Token " + newToken(t, dbURL, id)}}
}

func (o *org) path(p string) string { return "/organization/" + o.id.String() + p }

// createWebhook creates a webhook from fields and returns its id.
func (o *org) createWebhook(fields map[string]any) string {
	o.t.Helper()
	var w webhookJSON
	if st, _, body := o.api.do("POST", o.path("/webhook"), fields, &w); st != 201 {
		o.t.Fatalf("create webhook: %d %s", st, body)
	}
	return w.ID
}

type accepted struct {
	ID         string `json:"id"`
	CreatedAt  string `json:"created_at"`
	Deliveries int    `json:"deliveries"`
}

// deploymentEvent is a valid intake body.
func deploymentEvent(eventType, project, mode string) map[string]any {
	return map[string]any{
		"event_type":     eventType,
		"deployment_id":  "dep-" + uuid.NewString()[:8],
		"current_status": "DEPLOYING",
		"desired_status": "DEPLOYED",
		"project":        map[string]any{"id": "p1", "name": project},
		"environment":    map[string]any{"id": "e1", "name": "prod-eu", "mode": mode, "cluster_name": "eu-1"},
		"applications":   []any{map[string]any{"id": "a1", "name": "web", "nested": map[string]any{"x": []int{1, 2}}}},
	}
}

func (o *org) emit(ev map[string]any) accepted {
	o.t.Helper()
	var a accepted
	if st, _, body := o.api.do("POST", o.path("/deployment-event"), ev, &a); st != 202 {
		o.t.Fatalf("emit: %d %s", st, body)
	}
	return a
}

func TestDelivery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		tg := newTarget(t)
		srv := startServer(t, deliveryEnv(dbURL, nil))
		o := newOrg(t, srv, dbURL)
		all := []string{"DEPLOYMENT_STARTED", "DEPLOYMENT_CANCELLED", "DEPLOYMENT_FAILURE", "DEPLOYMENT_SUCCESSFUL"}

		t.Run("matching", func(t *testing.T) {
			o.t = t
			hooks := map[string]map[string]any{
				"/all":        {"events": all},
				"/failures":   {"events": []string{"DEPLOYMENT_FAILURE"}},
				"/prefix":     {"events": all, "project_names_filter": []string{"billing*"}},
				"/suffix":     {"events": all, "project_names_filter": []string{"*-API"}},
				"/exact":      {"events": all, "project_names_filter": []string{"Billing"}},
				"/production": {"events": all, "environment_types_filter": []string{"PRODUCTION"}},
				"/disabled":   {"events": all, "enabled": false},
			}
			for p, f := range hooks {
				f["kind"], f["target_url"] = "STANDARD", tg.URL+p
				o.createWebhook(f)
			}
			// Another organization's webhook must never see these events.
			other := newOrg(t, srv, dbURL)
			other.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/other-org", "events": all})

			events := []struct {
				ev   map[string]any
				want []string
			}{
				{deploymentEvent("DEPLOYMENT_STARTED", "billing", "STAGING"), []string{"/all", "/prefix", "/exact"}},
				{deploymentEvent("DEPLOYMENT_FAILURE", "billing-api", "PRODUCTION"), []string{"/all", "/failures", "/prefix", "/suffix", "/production"}},
				{deploymentEvent("DEPLOYMENT_SUCCESSFUL", "payments-api", "DEVELOPMENT"), []string{"/all", "/suffix"}},
				{deploymentEvent("DEPLOYMENT_CANCELLED", "BILLING", "PREVIEW"), []string{"/all", "/prefix", "/exact"}},
			}
			want := map[string]int{}
			for _, e := range events {
				a := o.emit(e.ev)
				if a.Deliveries != len(e.want) {
					t.Errorf("%v: matched %d webhooks, want %d (%v)", e.ev["event_type"], a.Deliveries, len(e.want), e.want)
				}
				for _, p := range e.want {
					want[p]++
				}
			}
			for p, n := range want {
				tg.waitCount(t, p, n, 20*time.Second)
			}
			for _, p := range []string{"/disabled", "/other-org"} {
				if got := tg.got(p); len(got) != 0 {
					t.Errorf("%s received %d events, want none", p, len(got))
				}
			}
			for p, n := range want {
				if got := len(tg.got(p)); got != n {
					t.Errorf("%s received %d events, want %d", p, got, n)
				}
			}
		})

		t.Run("envelope and signature", func(t *testing.T) {
			o.t = t
			const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
			o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/signed", "events": all, "target_secret": secret})
			ev := deploymentEvent("DEPLOYMENT_FAILURE", "sig", "PRODUCTION")
			a := o.emit(ev)
			r := tg.waitCount(t, "/signed", 1, 20*time.Second)[0]
			if r.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(r.Header.Get("User-Agent"), "hookd/") {
				t.Errorf("headers: %v", r.Header)
			}
			if r.Header.Get("Qovery-Signature") != secret || r.Header.Get("Qovery-Secret") != secret {
				t.Errorf("Qovery secret headers missing: %v", r.Header)
			}
			if r.Header.Get("webhook-id") != a.ID {
				t.Errorf("webhook-id = %q, want the event id %q", r.Header.Get("webhook-id"), a.ID)
			}
			if err := signing.Verify([]string{secret}, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), r.Body, time.Now(), 5*time.Minute); err != nil {
				t.Errorf("Standard Webhooks signature does not verify: %v", err)
			}
			if err := signing.Verify([]string{"whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA=="}, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), r.Body, time.Now(), 5*time.Minute); err == nil {
				t.Errorf("signature verifies with the wrong secret")
			}
			var env map[string]any
			if err := json.Unmarshal(r.Body, &env); err != nil {
				t.Fatal(err)
			}
			payload := env["payload"].(map[string]any)
			checks := map[string]any{
				"event_type": "DEPLOYMENT_FAILURE", "payload_type": "DEPLOYMENT", "payload_id": a.ID, "created_at": a.CreatedAt,
			}
			for k, v := range checks {
				if env[k] != v {
					t.Errorf("envelope %s = %v, want %v", k, env[k], v)
				}
			}
			if payload["id"] != ev["deployment_id"] || payload["deployment_id"] != ev["deployment_id"] ||
				payload["current_status"] != "DEPLOYING" || payload["desired_status"] != "DEPLOYED" {
				t.Errorf("payload: %v", payload)
			}
			if fmt.Sprint(payload["organization"]) != fmt.Sprint(map[string]any{"id": o.id.String()}) {
				t.Errorf("payload organization: %v", payload["organization"])
			}
			wantEnv := map[string]any{"id": "e1", "name": "prod-eu", "mode": "PRODUCTION", "cluster_name": "eu-1"}
			if fmt.Sprint(payload["environment"]) != fmt.Sprint(wantEnv) || fmt.Sprint(payload["project"]) != fmt.Sprint(map[string]any{"id": "p1", "name": "sig"}) {
				t.Errorf("payload project/environment: %v %v", payload["project"], payload["environment"])
			}
			if !strings.Contains(string(r.Body), `"nested":{"x":[1,2]}`) {
				t.Errorf("applications not passed through verbatim: %s", r.Body)
			}
			for _, k := range []string{"databases", "containers", "jobs", "logs"} {
				if fmt.Sprint(payload[k]) != "[]" {
					t.Errorf("payload %s = %v, want []", k, payload[k])
				}
			}
		})

		t.Run("slack", func(t *testing.T) {
			o.t = t
			o.createWebhook(map[string]any{"kind": "SLACK", "target_url": tg.URL + "/slack", "events": all, "target_secret": "never-sent"})
			o.emit(deploymentEvent("DEPLOYMENT_FAILURE", "billing-api", "PRODUCTION"))
			r := tg.waitCount(t, "/slack", 1, 20*time.Second)[0]
			var msg struct {
				Text   string           `json:"text"`
				Blocks []map[string]any `json:"blocks"`
			}
			if err := json.Unmarshal(r.Body, &msg); err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{"billing-api", "prod-eu", "PRODUCTION"} {
				if !strings.Contains(msg.Text, s) {
					t.Errorf("slack text %q lacks %q", msg.Text, s)
				}
			}
			if len(msg.Blocks) == 0 || strings.Contains(string(r.Body), "never-sent") || r.Header.Get("Qovery-Signature") != "" {
				t.Errorf("slack message: %s %v", r.Body, r.Header)
			}
		})

		t.Run("retries then success", func(t *testing.T) {
			o.t = t
			tg.setAnswer(func(path string, n int) int {
				if path == "/flaky" && n <= 2 {
					return 500
				}
				return 200
			})
			id := o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/flaky", "events": all})
			a := o.emit(deploymentEvent("DEPLOYMENT_STARTED", "x", "STAGING"))
			got := tg.waitCount(t, "/flaky", 3, 20*time.Second)
			var log struct{ Results []map[string]any }
			waitFor(t, 10*time.Second, "3 attempts in the log", func() bool {
				o.api.do("GET", o.path("/webhook/"+id+"/event"), nil, &log)
				return len(log.Results) >= 3
			})
			if len(log.Results) != 3 || len(tg.got("/flaky")) != 3 {
				t.Fatalf("want exactly 3 attempts and 3 records, got %d receipts and %d records", len(tg.got("/flaky")), len(log.Results))
			}
			for i, wantStatus := range []float64{200, 500, 500} { // newest first
				r := log.Results[i]
				if r["target_response_status_code"] != wantStatus || r["matched_event"] != "DEPLOYMENT_STARTED" || r["kind"] != "STANDARD" ||
					r["target_url_used"] != tg.URL+"/flaky" || r["target_response_body"] != `{"ok":true}` {
					t.Errorf("log record %d: %v", i, r)
				}
				if req, _ := r["request"].(map[string]any); req["payload_id"] != a.ID {
					t.Errorf("log record %d request: %v", i, r["request"])
				}
			}
			for _, r := range got {
				if r.Header.Get("webhook-id") != a.ID {
					t.Errorf("retry changed webhook-id to %q", r.Header.Get("webhook-id"))
				}
			}
			var page struct {
				Results []struct {
					ID       string `json:"id"`
					Status   string `json:"status"`
					Attempts int    `json:"attempts"`
				}
			}
			o.api.do("GET", o.path("/webhook/"+id+"/delivery"), nil, &page)
			if len(page.Results) != 1 || page.Results[0].Status != "succeeded" || page.Results[0].Attempts != 3 {
				t.Fatalf("deliveries: %+v", page.Results)
			}
			// A manual retry sends it once more.
			if st, _, body := o.api.do("POST", o.path("/webhook/"+id+"/delivery/"+page.Results[0].ID+"/retry"), nil, nil); st != 202 {
				t.Fatalf("retry: %d %s", st, body)
			}
			tg.waitCount(t, "/flaky", 4, 20*time.Second)
			// A test event goes to this webhook alone.
			var test struct {
				EventID    string `json:"event_id"`
				DeliveryID string `json:"delivery_id"`
			}
			if st, _, body := o.api.do("POST", o.path("/webhook/"+id+"/test"), nil, &test); st != 202 || test.DeliveryID == "" {
				t.Fatalf("test: %d %s", st, body)
			}
			if r := tg.waitCount(t, "/flaky", 5, 20*time.Second)[4]; r.payloadID() != test.EventID {
				t.Errorf("test event: got payload_id %q, want %q", r.payloadID(), test.EventID)
			}
		})

		t.Run("410 disables", func(t *testing.T) {
			o.t = t
			tg.setAnswer(func(path string, n int) int {
				if path == "/gone" {
					return 410
				}
				return 200
			})
			id := o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/gone", "events": all})
			o.emit(deploymentEvent("DEPLOYMENT_STARTED", "x", "STAGING"))
			var w struct {
				Enabled        bool   `json:"enabled"`
				DisabledReason string `json:"disabled_reason"`
			}
			waitFor(t, 20*time.Second, "the webhook to be disabled", func() bool {
				o.api.do("GET", o.path("/webhook/"+id), nil, &w)
				return !w.Enabled
			})
			if !strings.Contains(w.DisabledReason, "410") {
				t.Errorf("disabled_reason = %q", w.DisabledReason)
			}
			if a := o.emit(deploymentEvent("DEPLOYMENT_STARTED", "x", "STAGING")); a.Deliveries == 0 {
				t.Fatal("no webhook matched")
			}
			if n := len(tg.got("/gone")); n != 1 {
				t.Errorf("a disabled webhook got %d requests, want 1", n)
			}
		})

		t.Run("a hanging target does not hold up others", func(t *testing.T) {
			o.t = t
			tg.setHang("/hang")
			t.Cleanup(tg.releaseHung)
			o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/hang", "events": []string{"DEPLOYMENT_CANCELLED"}, "project_names_filter": []string{"hang"}})
			o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/fast", "events": []string{"DEPLOYMENT_CANCELLED"}, "project_names_filter": []string{"hang"}})
			start := time.Now()
			for range 40 {
				o.emit(deploymentEvent("DEPLOYMENT_CANCELLED", "hang", "STAGING"))
			}
			tg.waitCount(t, "/fast", 40, 10*time.Second)
			t.Logf("40 deliveries to the healthy target in %v while the other hangs (timeout 30s)", time.Since(start))
			if n := len(tg.got("/hang")); n > 8 {
				t.Errorf("%d requests in flight to the hanging target, want at most 8", n)
			}
		})

		t.Run("idempotency key", func(t *testing.T) {
			o.t = t
			o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/idem", "events": all, "project_names_filter": []string{"idem"}})
			key := call{t: t, base: o.api.base, auth: o.api.auth, extra: http.Header{"Idempotency-Key": {"k-" + uuid.NewString()}}}
			var a1, a2 accepted
			ev := deploymentEvent("DEPLOYMENT_STARTED", "idem", "STAGING")
			key.do("POST", o.path("/deployment-event"), ev, &a1)
			if st, _, body := key.do("POST", o.path("/deployment-event"), ev, &a2); st != 202 || a2.ID != a1.ID || a2.Deliveries != a1.Deliveries {
				t.Fatalf("replay: %d %s, want the first id %s", st, body, a1.ID)
			}
			tg.waitCount(t, "/idem", 1, 20*time.Second)
			o.emit(deploymentEvent("DEPLOYMENT_STARTED", "idem", "STAGING")) // without key: new
			tg.waitCount(t, "/idem", 2, 20*time.Second)
			if n := len(tg.got("/idem")); n != 2 {
				t.Errorf("got %d deliveries, want 2", n)
			}
		})

		t.Run("bad events", func(t *testing.T) {
			o.t = t
			mutate := func(f func(m map[string]any)) map[string]any {
				m := deploymentEvent("DEPLOYMENT_STARTED", "x", "STAGING")
				f(m)
				return m
			}
			cases := []struct {
				name  string
				body  any
				field string
			}{
				{"unknown event type", mutate(func(m map[string]any) { m["event_type"] = "DEPLOYMENT_EXPLODED" }), "event_type"},
				{"no event type", mutate(func(m map[string]any) { delete(m, "event_type") }), "event_type"},
				{"no project name", mutate(func(m map[string]any) { m["project"] = map[string]any{"id": "x"} }), "project.name"},
				{"no environment name", mutate(func(m map[string]any) { m["environment"] = map[string]any{"mode": "STAGING"} }), "environment.name"},
				{"unknown mode", mutate(func(m map[string]any) { m["environment"] = map[string]any{"name": "e", "mode": "QA"} }), "environment.mode"},
				{"malformed JSON", `{"event_type":`, "JSON"},
			}
			for _, c := range cases {
				var e errorJSON
				if st, _, body := o.api.do("POST", o.path("/deployment-event"), c.body, &e); st != 400 || !strings.Contains(e.Detail, c.field) {
					t.Errorf("%s: %d %s, want 400 naming %s", c.name, st, body, c.field)
				}
			}
			if st, _, _ := o.api.do("POST", o.path("/deployment-event"), `{"logs":"`+strings.Repeat("x", 1<<20)+`"}`, nil); st != 413 {
				t.Errorf("body over 1 MiB: %d, want 413", st)
			}
		})

		t.Run("metrics", func(t *testing.T) {
			_, _, body := call{t: t, base: srv.URL}.do("GET", "/metrics", nil, nil)
			for _, m := range []string{"hookd_events_accepted_total", `hookd_delivery_attempts_total{outcome="succeeded"}`, "hookd_delivery_attempt_duration_seconds_bucket", "hookd_deliveries_due", "hookd_deliveries_oldest_due_age_seconds", "hookd_webhooks_disabled_total 1", "hookd_delivery_leases_renewed_total"} {
				if !strings.Contains(string(body), m) {
					t.Errorf("/metrics lacks %s", m)
				}
			}
		})
	})
}

// TestSSRF checks that, with the default configuration, no spelling of a
// non-public address is ever dialled, and the refusal is in the log.
func TestSSRF(t *testing.T) {
	dbURL := backends()[0].url(t)
	tg := newTarget(t)
	// The network's own NAT64 prefix: 2600:1f00:64::a9fe:a9fe is the
	// metadata address 169.254.169.254 through it (anywhere else, a
	// public IPv6 address).
	srv := startServer(t, map[string]string{"HOOKD_DATABASE_URL": dbURL, "HOOKD_RETRY_SCHEDULE": "0s", "HOOKD_NAT64_PREFIXES": "2600:1f00:64::/96"})
	o := newOrg(t, srv, dbURL)
	u, _ := url.Parse(tg.URL)
	port := u.Port()
	spellings := []string{
		"127.0.0.1", "localhost", "2130706433", "0177.0.0.1", "127.1", "[::1]", "[::ffff:127.0.0.1]", "[0:0:0:0:0:ffff:7f00:1]", "0.0.0.0",
	}
	ids := map[string]string{}
	for _, host := range spellings {
		ids[host] = o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": "http://" + host + ":" + port + "/ssrf", "events": []string{"DEPLOYMENT_STARTED"}})
	}
	// Addresses that must never be dialled at all: refused before connect.
	for _, host := range []string{"169.254.169.254", "10.0.0.1", "192.168.1.1", "100.64.0.1", "[fd00::1]", "[fe80::1]", "[64:ff9b::a9fe:a9fe]", "[2600:1f00:64::a9fe:a9fe]"} {
		ids[host] = o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": "http://" + host + "/latest/meta-data/", "events": []string{"DEPLOYMENT_STARTED"}})
	}
	if a := o.emit(deploymentEvent("DEPLOYMENT_STARTED", "x", "STAGING")); a.Deliveries != len(ids) {
		t.Fatalf("matched %d, want %d", a.Deliveries, len(ids))
	}
	for host, id := range ids {
		var log struct {
			Results []struct {
				Status int    `json:"target_response_status_code"`
				Error  string `json:"error"`
			}
		}
		waitFor(t, 20*time.Second, "an attempt for "+host, func() bool {
			o.api.do("GET", o.path("/webhook/"+id+"/event"), nil, &log)
			return len(log.Results) > 0
		})
		r := log.Results[0]
		if r.Status != 0 || r.Error == "" {
			t.Errorf("%s: attempt %+v, want a refusal", host, r)
		}
		if strings.HasPrefix(host, "[") && strings.Contains(host, ":a9fe:a9fe") && r.Error != delivery.RefusedMessage {
			t.Errorf("%s: error %q, want %q", host, r.Error, delivery.RefusedMessage)
		}
		if !strings.Contains(r.Error, "refused") && !strings.Contains(r.Error, "not allowed") && !strings.Contains(r.Error, "invalid") && !strings.Contains(r.Error, "no such host") {
			t.Errorf("%s: error %q does not say why", host, r.Error)
		}
		// A name is never recorded with the address it resolved to.
		if host == "localhost" && strings.Contains(r.Error, "127.0.0.1") {
			t.Errorf("%s: error %q reveals the address it resolved to", host, r.Error)
		}
		t.Logf("%-28s %s", host, r.Error)
	}
	if n := len(tg.got("")); n != 0 {
		t.Fatalf("the target received %d requests; every one should have been refused", n)
	}
}
