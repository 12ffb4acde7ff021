package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// seen is what the fake server got.
type seen struct {
	method, path, query, auth, idempotencyKey, contentType string
	body                                                   []byte
}

// fakeAPI answers every request with status and body and records it.
func fakeAPI(t *testing.T, status int, body string) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*s = seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key"), r.Header.Get("Content-Type"), b}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

func TestAuthorization(t *testing.T) {
	for _, tc := range []struct{ token, want string }{
		{"hkd_abc", "Token hkd_abc"},
		{"eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"},
		{"", ""},
	} {
		srv, s := fakeAPI(t, 200, `{"results":[]}`)
		if _, err := New(srv.URL+"/", tc.token, nil).ListWebhooks(context.Background(), "o"); err != nil {
			t.Fatal(err)
		}
		if s.auth != tc.want || s.path != "/organization/o/webhook" {
			t.Errorf("token %q: sent %q to %s, want %q", tc.token, s.auth, s.path, tc.want)
		}
	}
}

func TestRequests(t *testing.T) {
	ctx := context.Background()
	webhook := `{"id":"w1","kind":"STANDARD","events":["DEPLOYMENT_STARTED"],"created_at":"2024-01-02T03:04:05Z","extra":1}`
	secret := "s"
	for _, tc := range []struct {
		name                 string
		answer               string
		call                 func(c *Client) error
		method, path, query  string
		body, idempotencyKey string
	}{
		{"get", webhook, func(c *Client) error { _, err := c.GetWebhook(ctx, "o", "w/1"); return err }, "GET", "/organization/o/webhook/w%2F1", "", "", ""},
		{"create", webhook, func(c *Client) error {
			_, err := c.CreateWebhook(ctx, "o", WebhookRequest{Kind: "STANDARD", TargetURL: "https://x", TargetSecret: &secret, Events: []string{"DEPLOYMENT_STARTED"}})
			return err
		}, "POST", "/organization/o/webhook", "",
			`{"kind":"STANDARD","target_url":"https://x","target_secret":"s","description":"","events":["DEPLOYMENT_STARTED"],"project_names_filter":null,"environment_types_filter":null}`, ""},
		{"edit", webhook, func(c *Client) error {
			_, err := c.EditWebhook(ctx, "o", "w1", WebhookRequest{Kind: "SLACK"})
			return err
		}, "PUT", "/organization/o/webhook/w1", "",
			`{"kind":"SLACK","target_url":"","description":"","events":null,"project_names_filter":null,"environment_types_filter":null}`, ""},
		{"delete", "", func(c *Client) error { return c.DeleteWebhook(ctx, "o", "w1") }, "DELETE", "/organization/o/webhook/w1", "", "", ""},
		{"events", `{"results":[]}`, func(c *Client) error { _, err := c.ListWebhookEvents(ctx, "o", "w1"); return err }, "GET", "/organization/o/webhook/w1/event", "", "", ""},
		{"deliveries", `{"results":[],"next_cursor":null}`, func(c *Client) error {
			_, err := c.ListDeliveries(ctx, "o", "w1", DeliveryListParams{Status: "failed", Cursor: "c1", Limit: 10})
			return err
		}, "GET", "/organization/o/webhook/w1/delivery", "cursor=c1&limit=10&status=failed", "", ""},
		{"retry", `{"id":"d1"}`, func(c *Client) error { _, err := c.RetryDelivery(ctx, "o", "w1", "d1"); return err }, "POST", "/organization/o/webhook/w1/delivery/d1/retry", "", "", ""},
		{"test", `{"event_id":"e","delivery_id":"d"}`, func(c *Client) error { _, err := c.TestWebhook(ctx, "o", "w1"); return err }, "POST", "/organization/o/webhook/w1/test", "", "", ""},
		{"emit raw", `{"id":"e1","deliveries":2}`, func(c *Client) error {
			_, err := c.EmitDeploymentEvent(ctx, "o", json.RawMessage(`{ "event_type" : "X" }`), "k1")
			return err
		}, "POST", "/organization/o/deployment-event", "", `{ "event_type" : "X" }`, "k1"},
		{"emit typed", `{"id":"e1","deliveries":2}`, func(c *Client) error {
			_, err := c.EmitDeploymentEvent(ctx, "o", DeploymentEvent{EventType: "X", Project: DeploymentProject{Name: "p"}, Environment: DeploymentEnvironment{Name: "e", Mode: "PRODUCTION"}}, "")
			return err
		}, "POST", "/organization/o/deployment-event", "", `{"event_type":"X","project":{"name":"p"},"environment":{"name":"e","mode":"PRODUCTION"}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, s := fakeAPI(t, 200, tc.answer)
			if err := tc.call(New(srv.URL, "hkd_x", nil)); err != nil {
				t.Fatal(err)
			}
			if s.method != tc.method || s.path != tc.path || s.query != tc.query || string(s.body) != tc.body || s.idempotencyKey != tc.idempotencyKey {
				t.Fatalf("sent %s %s?%s key %q body %s\nwant %s %s?%s key %q body %s", s.method, s.path, s.query, s.idempotencyKey, s.body,
					tc.method, tc.path, tc.query, tc.idempotencyKey, tc.body)
			}
			if (tc.body != "") != (s.contentType == "application/json") {
				t.Fatalf("Content-Type %q with body %q", s.contentType, tc.body)
			}
		})
	}
}

// The raw answer is kept byte for byte, unknown fields included, on the
// whole answer and on each listed object.
func TestRawKept(t *testing.T) {
	obj := `{"id":"w1","kind":"STANDARD","unknown":{"a":[1,2]},"created_at":"2024-01-02T03:04:05Z"}`
	list := `{"results":[` + obj + `]}`
	srv, _ := fakeAPI(t, 200, list)
	l, err := New(srv.URL, "t", nil).ListWebhooks(context.Background(), "o")
	if err != nil {
		t.Fatal(err)
	}
	if string(l.Raw) != list || len(l.Results) != 1 || string(l.Results[0].Raw) != obj || l.Results[0].ID != "w1" || l.Results[0].CreatedAt.Year() != 2024 {
		t.Fatalf("got %+v", l)
	}
	// Request starts an edit from the webhook as it is, keeping the secret
	// and the state as they are when the edit commits.
	req := l.Results[0].Request()
	if req.TargetSecret != nil || req.Enabled != nil || req.Events == nil || req.Kind != "STANDARD" {
		t.Fatalf("Request() = %+v", req)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		want       APIError
	}{
		{"api", `{"status":404,"error":"Not Found","detail":"webhook w1 not found"}`, 404, APIError{Status: 404, Title: "Not Found", Detail: "webhook w1 not found"}},
		{"proxy", "<html>bad gateway</html>", 502, APIError{Status: 502, Title: "Bad Gateway", Detail: "the server answered 502 Bad Gateway: <html>bad gateway</html>"}},
		{"empty", "", 503, APIError{Status: 503, Title: "Service Unavailable", Detail: "the server answered 503 Service Unavailable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := fakeAPI(t, tc.status, tc.body)
			_, err := New(srv.URL, "t", nil).GetWebhook(context.Background(), "o", "w1")
			var e *APIError
			if !errors.As(err, &e) || *e != tc.want || err.Error() != tc.want.Detail {
				t.Fatalf("got %#v (%v), want %#v", err, err, tc.want)
			}
		})
	}
	// A 2xx answer that is not the expected JSON is an error, not a zero value.
	srv, _ := fakeAPI(t, 200, "not json")
	if _, err := New(srv.URL, "t", nil).GetWebhook(context.Background(), "o", "w1"); err == nil {
		t.Fatal("no error for a body that is not JSON")
	}
}

// A 429 or 503 with Retry-After is sent again after that wait, body and
// headers unchanged, a few times at most; a longer wait is not waited.
func TestRetryAfter(t *testing.T) {
	var (
		mu    sync.Mutex
		times []time.Time
		keys  []string
		fails = 1
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		keys = append(keys, r.Header.Get("Idempotency-Key")+" "+string(b))
		if len(times) <= fails {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"status":429,"error":"Too Many Requests","detail":"slow down"}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"id":"e1","created_at":"2026-01-02T03:04:05Z","deliveries":1}`)
	}))
	t.Cleanup(srv.Close)

	c := New(srv.URL, "t", nil)
	got, err := c.EmitDeploymentEvent(context.Background(), "o", map[string]string{"event_type": "DEPLOYMENT_STARTED"}, "k1")
	if err != nil || got.ID != "e1" {
		t.Fatalf("after one 429: %+v, %v", got, err)
	}
	if len(times) != 2 || times[1].Sub(times[0]) < 900*time.Millisecond || keys[0] != keys[1] {
		t.Fatalf("%d requests, %v apart, %q: want the same request again a second later", len(times), times[len(times)-1].Sub(times[0]), keys)
	}

	// Always refused: the first try and Retries more, then the error.
	times, keys, fails = nil, nil, 100
	c.Retries = 1
	_, err = c.EmitDeploymentEvent(context.Background(), "o", map[string]string{}, "k2")
	var e *APIError
	if !errors.As(err, &e) || e.Status != 429 || len(times) != 2 {
		t.Fatalf("%d requests, %v; want 2 and the 429", len(times), err)
	}

	// A wait longer than MaxRetryAfter is the caller's to decide.
	times, keys = nil, nil
	c.MaxRetryAfter = 500 * time.Millisecond
	if _, err = c.EmitDeploymentEvent(context.Background(), "o", map[string]string{}, "k3"); !errors.As(err, &e) || len(times) != 1 {
		t.Fatalf("%d requests, %v; want 1 and the 429", len(times), err)
	}
	// The detail says to wait for the Retry-After header, which the person
	// reading the error never sees: the error says how long it asked for.
	if e.RetryAfter != time.Second || err.Error() != "slow down (Retry-After: 1s)" {
		t.Fatalf("error %q, RetryAfter %v; want the detail and the wait asked for", err, e.RetryAfter)
	}
}

// TestEditFromReadIsConditional: an edit started from GetWebhook sends
// the ETag read as If-Match, and neither the secret nor enabled, so it
// can undo nothing changed since; a 412 comes back as an *APIError.
func TestEditFromReadIsConditional(t *testing.T) {
	var ifMatch string
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			w.Header().Set("ETag", `"v1"`)
			io.WriteString(w, `{"id":"w1","kind":"STANDARD","target_url":"https://example.com","enabled":false,"events":["DEPLOYMENT_STARTED"]}`)
			return
		}
		ifMatch = r.Header.Get("If-Match")
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.WriteHeader(http.StatusPreconditionFailed)
		io.WriteString(w, `{"status":412,"error":"Precondition Failed","detail":"the webhook changed since you read it"}`)
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, "t", nil)
	w, err := c.GetWebhook(context.Background(), "o", "w1")
	if err != nil || w.ETag != `"v1"` {
		t.Fatalf("GetWebhook = %+v, %v; want the ETag kept", w, err)
	}
	req := w.Request()
	req.Description = "renamed"
	_, err = c.EditWebhook(context.Background(), "o", "w1", req)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 412 {
		t.Fatalf("EditWebhook = %v, want the 412", err)
	}
	if ifMatch != `"v1"` {
		t.Errorf("sent If-Match %q, want the ETag read", ifMatch)
	}
	if _, ok := body["enabled"]; ok {
		t.Errorf("sent enabled: %v", body)
	}
	if _, ok := body["target_secret"]; ok {
		t.Errorf("sent target_secret: %v", body)
	}
}
