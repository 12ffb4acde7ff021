package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hookd/hookd/internal/auth"
	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// apiHarness is the real handler on a real store (SQLite unless
// newAPIHarnessOn says otherwise), behind a real HTTP server; every
// answer is checked against openapi.yaml.
type apiHarness struct {
	t       *testing.T
	srv     *httptest.Server
	db      webhook.Store
	checker *openAPIChecker
	mu      sync.Mutex
	covered map[string]bool // "METHOD /path" of documented operations exercised
}

// newAPIHarness starts the server; opts change its Deps (limits, clock).
func newAPIHarness(t *testing.T, opts ...func(*Deps)) *apiHarness {
	t.Helper()
	return newAPIHarnessOn(t, openSQLite(t, filepath.Join(t.TempDir(), "api.db")), opts...)
}

// openSQLite opens the SQLite database at path, migrated, with an
// encryption key of its own: a second store opened on the same path
// cannot read the secrets the first sealed.
func openSQLite(t *testing.T, path string) webhook.Store {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path, storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// newAPIHarnessOn starts the server on db, a migrated store.
func newAPIHarnessOn(t *testing.T, db webhook.Store, opts ...func(*Deps)) *apiHarness {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	authn, err := auth.New(ctx, auth.Config{}, db, time.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	d := Deps{Store: db, Auth: authn, Log: log, Registry: reg, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	for _, o := range opts {
		o(&d)
	}
	s := NewServer(d)
	h := &apiHarness{t: t, srv: httptest.NewServer(s), db: db, checker: newOpenAPIChecker(t), covered: map[string]bool{}}
	t.Cleanup(h.srv.Close)
	return h
}

// token makes an API token for org directly in the store, and returns
// it with its id.
func (h *apiHarness) token(org uuid.UUID) (string, uuid.UUID) {
	plain, hash, err := auth.NewToken()
	if err != nil {
		h.t.Fatal(err)
	}
	id := uuid.New()
	if err := h.db.TokenCreate(context.Background(), &webhook.Token{ID: id, OrganizationID: org, Hash: hash, CreatedAt: time.Now().UTC()}, nil); err != nil {
		h.t.Fatal(err)
	}
	return plain, id
}

// do sends a request, checks the answer against the OpenAPI document, and
// decodes it into out.
func (h *apiHarness) do(token, method, path, body string, out any) int {
	h.t.Helper()
	status, _ := h.doHeader(token, method, path, body, out)
	return status
}

// doHeader is do that also returns the response's header.
func (h *apiHarness) doHeader(token, method, path, body string, out any) (int, http.Header) {
	h.t.Helper()
	return h.doWith(token, method, path, body, nil, out)
}

// doWith is doHeader that sends header too.
func (h *apiHarness) doWith(token, method, path, body string, header http.Header, out any) (int, http.Header) {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return h.send(token, req, out)
}

// send is doHeader for a request the caller made (to set headers).
func (h *apiHarness) send(token string, req *http.Request, out any) (int, http.Header) {
	h.t.Helper()
	method, path := req.Method, req.URL.Path
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	h.checker.Check(h.t, req, resp.StatusCode, resp.Header, data)
	if route, _, err := h.checker.router.FindRoute(req); err == nil && route.Operation != nil {
		h.mu.Lock()
		h.covered[method+" "+route.Path] = true
		h.mu.Unlock()
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, resp.Header
}

// TestAPIMatchesOpenAPI exercises every documented operation, its success
// and its errors, and checks each answer against openapi.yaml.
func TestAPIMatchesOpenAPI(t *testing.T) {
	h := newAPIHarness(t)
	org := uuid.New()
	tok, tokID := h.token(org)
	base := "/organization/" + org.String()

	var created struct{ ID string }
	if st := h.do(tok, "POST", base+"/webhook", `{"kind":"STANDARD","target_url":"https://example.com/h","events":["DEPLOYMENT_STARTED"],"target_secret":"x"}`, &created); st != 201 {
		t.Fatalf("create: %d", st)
	}
	hook := base + "/webhook/" + created.ID
	var accepted struct{ ID string }
	steps := []struct {
		method, path, body string
		status             int
		out                any
	}{
		{"GET", base + "/webhook", "", 200, nil},
		{"GET", hook, "", 200, nil},
		{"PUT", hook, `{"kind":"SLACK","target_url":"https://example.com/s","events":["DEPLOYMENT_STARTED"],"description":"d"}`, 200, nil},
		{"POST", base + "/deployment-event", `{"event_type":"DEPLOYMENT_STARTED","project":{"name":"p"},"environment":{"name":"e","mode":"STAGING"}}`, 202, &accepted},
		{"GET", hook + "/delivery", "", 200, nil},
		{"GET", hook + "/delivery?status=pending&limit=1", "", 200, nil},
		{"GET", hook + "/delivery?status=bogus", "", 400, nil},
		{"GET", hook + "/delivery?limit=0", "", 400, nil},
		{"GET", hook + "/event", "", 200, nil},
		{"POST", hook + "/test", "", 202, nil},
		{"POST", hook + "/delivery/" + uuid.NewString() + "/retry", "", 404, nil},
		{"POST", hook + "/recover", `{"since":"2020-01-01T00:00:00Z"}`, 400, nil},
		{"POST", hook + "/recover", `{"since":"yesterday"}`, 400, nil},
		{"POST", hook + "/recover", `{"since":"2020-01-01T00:00:00Z","status":"5xx"}`, 400, nil},
		{"POST", hook + "/recover", `{"since":"` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `","until":""}`, 202, nil}, // until now
		{"POST", hook + "/recover", `{"since":"` + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + `","pending":"yes"}`, 400, nil},
		{"POST", base + "/webhook/" + uuid.NewString() + "/recover", `{"since":"2020-01-01T00:00:00Z"}`, 404, nil},
		{"GET", hook + "/stats", "", 200, nil},
		{"GET", base + "/webhook/" + uuid.NewString() + "/stats", "", 404, nil},
		{"POST", base + "/webhook", `{"kind":"EMAIL"}`, 400, nil},
		{"POST", base + "/webhook", `{"kind":`, 400, nil},
		{"POST", base + "/webhook", `{"description":"` + strings.Repeat("x", maxBody) + `"}`, 413, nil},
		{"POST", base + "/deployment-event", `{"event_type":"NOPE"}`, 400, nil},
		{"GET", base + "/webhook/" + uuid.NewString(), "", 404, nil},
		{"GET", "/organization/" + uuid.NewString() + "/webhook", "", 403, nil},
		{"GET", "/organization/nope/webhook", "", 400, nil},
		{"PATCH", hook, "", 405, nil},
		{"GET", base + "/audit", "", 200, nil},
		{"GET", base + "/audit?limit=1", "", 200, nil},
		{"GET", base + "/audit?limit=101", "", 400, nil},
		{"GET", base + "/audit?cursor=bogus", "", 400, nil},
		{"GET", "/organization/" + uuid.NewString() + "/audit", "", 403, nil},
		{"GET", "/healthz", "", 200, nil},
		{"GET", "/readyz", "", 200, nil},
		{"GET", "/openapi.yaml", "", 200, nil},
		{"GET", "/metrics", "", 200, nil},
	}
	for _, s := range steps {
		if st := h.do(tok, s.method, s.path, s.body, s.out); st != s.status {
			t.Errorf("%s %s: %d, want %d", s.method, s.path, st, s.status)
		}
	}
	// A 401 names the schemes that would do (RFC 9110 requires it), with
	// or without a token sent.
	for _, token := range []string{"", "not-a-token"} {
		st, header := h.doHeader(token, "GET", base+"/webhook", "", nil)
		if st != 401 || header.Get("WWW-Authenticate") != "Token, Bearer" {
			t.Errorf("token %q: %d with WWW-Authenticate %q, want 401 with %q", token, st, header.Get("WWW-Authenticate"), "Token, Bearer")
		}
	}

	// A delivery to retry: claim it as a dispatcher would, finish it.
	ctx := context.Background()
	now := time.Now()
	tasks, err := h.db.DeliveryClaim(ctx, webhook.ClaimParams{Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) == 0 {
		t.Fatalf("claim: %v %d", err, len(tasks))
	}
	var outcomes []webhook.Outcome
	for _, tk := range tasks {
		outcomes = append(outcomes, webhook.Outcome{Status: webhook.DeliveryFailed, Lease: tk.Delivery.Lease, Attempt: webhook.Attempt{
			ID: uuid.New(), OrganizationID: org, WebhookID: tk.Webhook.ID, DeliveryID: tk.Delivery.ID, EventID: tk.Event.ID,
			CreatedAt: now.UTC(), Number: 1, Kind: tk.Webhook.Kind, TargetURL: tk.Webhook.TargetURL, StatusCode: 500, ResponseBody: "boom",
		}})
	}
	if _, err := h.db.DeliveryComplete(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	var events struct {
		Results []struct {
			Request json.RawMessage `json:"request"`
			Status  int             `json:"target_response_status_code"`
		}
	}
	h.do(tok, "GET", hook+"/event", "", &events)
	if len(events.Results) == 0 || events.Results[0].Status != 500 || !bytes.Contains(events.Results[0].Request, []byte(`"blocks"`)) {
		t.Errorf("event log after a failed attempt (a SLACK webhook): %+v", events.Results)
	}
	if st := h.do(tok, "POST", hook+"/delivery/"+tasks[0].Delivery.ID.String()+"/retry", "", nil); st != 202 {
		t.Errorf("retry: %d", st)
	}
	// Only a delivery still in the queue has a next attempt.
	var deliveries struct {
		Results []struct {
			ID            uuid.UUID
			Status        webhook.DeliveryStatus
			NextAttemptAt *time.Time `json:"next_attempt_at"`
		}
	}
	h.do(tok, "GET", hook+"/delivery", "", &deliveries)
	if len(deliveries.Results) != len(tasks) {
		t.Errorf("%d deliveries listed, want %d", len(deliveries.Results), len(tasks))
	}
	for _, d := range deliveries.Results {
		if retried := d.ID == tasks[0].Delivery.ID; retried != (d.Status == webhook.DeliveryPending) || retried != (d.NextAttemptAt != nil) {
			t.Errorf("delivery %v (retried: %v): status %s, next attempt %v", d.ID, retried, d.Status, d.NextAttemptAt)
		}
	}
	// Paged one by one, the same deliveries, newest first: a full page
	// has a cursor to the next, the last (empty) one has none.
	var paged []uuid.UUID
	for next, pages := hook+"/delivery?limit=1", 0; next != ""; pages++ {
		if pages > len(tasks) {
			t.Fatalf("more than %d pages of one delivery for %d deliveries", pages, len(tasks))
		}
		var page struct {
			Results    []struct{ ID uuid.UUID }
			NextCursor *string `json:"next_cursor"`
		}
		if st := h.do(tok, "GET", next, "", &page); st != 200 {
			t.Fatalf("GET %s: %d", next, st)
		}
		for _, d := range page.Results {
			paged = append(paged, d.ID)
		}
		next = ""
		if page.NextCursor != nil {
			next = hook + "/delivery?limit=1&cursor=" + *page.NextCursor
		}
	}
	var listed []uuid.UUID
	for _, d := range deliveries.Results {
		listed = append(listed, d.ID)
	}
	if !slices.Equal(paged, listed) {
		t.Errorf("paged one by one: %v, want %v", paged, listed)
	}
	var recovered struct{ Deliveries int }
	if st := h.do(tok, "POST", hook+"/recover", `{"since":"`+now.Add(-time.Hour).UTC().Format(time.RFC3339)+`","status":"5xx"}`, &recovered); st != 202 || recovered.Deliveries != len(tasks)-1 {
		t.Errorf("recover: %d, %d deliveries; want 202 and the %d failed deliveries not retried", st, recovered.Deliveries, len(tasks)-1)
	}
	// With pending: the deliveries just recovered, and the one retried,
	// are due already, so nothing more is counted.
	var again struct{ Deliveries, Failed, Pending int }
	if st := h.do(tok, "POST", hook+"/recover", `{"since":"`+now.Add(-time.Hour).UTC().Format(time.RFC3339)+`","pending":true}`, &again); st != 202 || again != (struct{ Deliveries, Failed, Pending int }{}) {
		t.Errorf("recover with pending: %d, %+v; want 202 and nothing more due", st, again)
	}
	if st := h.do(tok, "PUT", hook, `{"kind":"SLACK","target_url":"https://example.com/s","events":["DEPLOYMENT_STARTED"],"enabled":false}`, nil); st != 200 {
		t.Errorf("disable: %d", st)
	}
	if st := h.do(tok, "POST", hook+"/recover", `{"since":"`+now.Add(-time.Hour).UTC().Format(time.RFC3339)+`"}`, nil); st != 409 {
		t.Errorf("recovering a disabled webhook: %d, want 409", st)
	}
	// Nor is one delivery retried: it would fail at once, unsent.
	if st := h.do(tok, "POST", hook+"/delivery/"+tasks[0].Delivery.ID.String()+"/retry", "", nil); st != 409 {
		t.Errorf("retrying a delivery of a disabled webhook: %d, want 409", st)
	}
	// Nor is a test event accepted: the dispatcher sends nothing to a
	// disabled webhook, so it would fail unsent.
	if st := h.do(tok, "POST", hook+"/test", "", nil); st != 409 {
		t.Errorf("testing a disabled webhook: %d, want 409", st)
	}
	var stats struct {
		Last24Hours struct {
			Attempts, Failures int
			SuccessRate        *float64 `json:"success_rate"`
			Buckets            []struct{ Attempts, Failures int }
		} `json:"last_24_hours"`
		Last7Days struct{ Buckets []struct{} } `json:"last_7_days"`
	}
	if st := h.do(tok, "GET", hook+"/stats", "", &stats); st != 200 || stats.Last24Hours.Attempts != len(tasks) || stats.Last24Hours.Failures != len(tasks) ||
		*stats.Last24Hours.SuccessRate != 0 || len(stats.Last24Hours.Buckets) != 24 || stats.Last24Hours.Buckets[23].Failures != len(tasks) || len(stats.Last7Days.Buckets) != 7 {
		t.Errorf("stats: %d %+v", st, stats)
	}
	if st := h.do(tok, "DELETE", hook, "", nil); st != 204 {
		t.Errorf("delete: %d", st)
	}

	// The audit trail: the create, the edit and the delete, newest first,
	// each by the token, a page at a time.
	type entry struct {
		ID     string `json:"id"`
		Action string `json:"action"`
		Actor  struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
		} `json:"actor"`
		ResourceID string `json:"resource_id"`
	}
	var page struct {
		Results    []entry `json:"results"`
		NextCursor *string `json:"next_cursor"`
	}
	var trail []entry
	for path := base + "/audit?limit=2"; ; {
		if st := h.do(tok, "GET", path, "", &page); st != 200 {
			t.Fatalf("audit: %d", st)
		}
		trail = append(trail, page.Results...)
		if page.NextCursor == nil {
			break
		}
		path = base + "/audit?limit=2&cursor=" + *page.NextCursor
		page.Results, page.NextCursor = nil, nil
	}
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action)
		if e.Actor.Kind != "token" || e.Actor.ID != tokID.String() || e.ResourceID != created.ID {
			t.Errorf("audit entry %+v, want the token %s acting on %s", e, tokID, created.ID)
		}
	}
	if got := strings.Join(actions, ","); got != "webhook.deleted,webhook.disabled,webhook.recovered,webhook.recovered,webhook.recovered,webhook.updated,webhook.created" {
		t.Errorf("audit actions = %s", got)
	}

	exerciseSources(t, h, tok, base)

	var missing []string
	for _, op := range h.checker.Documented() {
		if !h.covered[op] {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("documented operations no test exercised: %v", missing)
	}
}

// An Idempotency-Key replays its event for the same body, and is refused
// with 422 and Qovery's error body for another one.
func TestIdempotencyKeyReused(t *testing.T) {
	h := newAPIHarness(t)
	org := uuid.New()
	tok, _ := h.token(org)
	path := "/organization/" + org.String() + "/deployment-event"
	postKey := func(key, body string, out any) int {
		t.Helper()
		req, err := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Idempotency-Key", key)
		status, _ := h.send(tok, req, out)
		return status
	}
	post := func(body string, out any) int { t.Helper(); return postKey("deploy-42", body, out) }
	// No deployment_id: hookd makes one up, which must not count as a
	// different body on a retry.
	body := `{"event_type":"DEPLOYMENT_STARTED","project":{"name":"p"},"environment":{"name":"e","mode":"STAGING"}}`
	var first, again eventAccepted
	if s := post(body, &first); s != http.StatusAccepted {
		t.Fatalf("first: %d", s)
	}
	if s := post(body, &again); s != http.StatusAccepted || again.ID != first.ID {
		t.Fatalf("same body again: %d %+v, want 202 with event %v", s, again, first.ID)
	}
	var e errorBody
	other := strings.Replace(body, `"p"`, `"q"`, 1)
	if s := post(other, &e); s != http.StatusUnprocessableEntity {
		t.Fatalf("other body: %d %+v, want 422", s, e)
	}
	if e.Status != 422 || e.Error != "Unprocessable Entity" || !strings.Contains(e.Detail, "deploy-42") ||
		!strings.Contains(e.Detail, first.ID.String()) || !strings.Contains(e.Detail, "different body") {
		t.Fatalf("error body %+v, want one naming the key, the event and the problem", e)
	}

	// Keys are up to 255 characters.
	if s := postKey(strings.Repeat("k", maxIdempotencyKey), body, nil); s != http.StatusAccepted {
		t.Errorf("a key of %d characters: %d, want 202", maxIdempotencyKey, s)
	}
	e = errorBody{}
	if s := postKey(strings.Repeat("k", maxIdempotencyKey+1), body, &e); s != http.StatusBadRequest || !strings.Contains(e.Detail, "Idempotency-Key") {
		t.Errorf("a key of %d characters: %d %+v, want 400 naming the header", maxIdempotencyKey+1, s, e)
	}
}

// TestHealthzFailsWhileWedged: liveness answers 503, saying why, while
// hookd reports itself wedged, and 200 again once it is not; readiness
// is the database's alone.
func TestHealthzFailsWhileWedged(t *testing.T) {
	var wedged atomic.Bool
	h := newAPIHarness(t, func(d *Deps) {
		d.Alive = func() error {
			if wedged.Load() {
				return errors.New("the SQLite writer has been on one transaction for 1m30s")
			}
			return nil
		}
	})
	if st := h.do("", "GET", "/healthz", "", nil); st != 200 {
		t.Fatalf("/healthz: %d, want 200", st)
	}
	wedged.Store(true)
	var body struct{ Detail string }
	if st := h.do("", "GET", "/healthz", "", &body); st != 503 || !strings.Contains(body.Detail, "SQLite writer") {
		t.Errorf("/healthz while wedged: %d %q, want 503 saying why", st, body.Detail)
	}
	if st := h.do("", "GET", "/readyz", "", nil); st != 200 {
		t.Errorf("/readyz while wedged: %d, want 200 (the database answers)", st)
	}
	wedged.Store(false)
	if st := h.do("", "GET", "/healthz", "", nil); st != 200 {
		t.Errorf("/healthz once no longer wedged: %d, want 200", st)
	}
}
