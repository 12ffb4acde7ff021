package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// ingest posts body with header to an ingest URL, with no API token, and
// checks the answer against the OpenAPI document.
func (h *apiHarness) ingest(path, body string, header map[string]string, out any) int {
	h.t.Helper()
	status, _ := h.ingestHeader(path, body, header, out)
	return status
}

// ingestHeader is ingest, returning the answer's header too.
func (h *apiHarness) ingestHeader(path, body string, header map[string]string, out any) (int, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return h.send("", req, out)
}

// sourceSecret is a secret of the shortest length a source may be given.
const sourceSecret = "gh-source-s3cret"

func githubHeaders(secret, event, delivery, body string) map[string]string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return map[string]string{
		"X-GitHub-Event":      event,
		"X-GitHub-Delivery":   delivery,
		"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(m.Sum(nil)),
	}
}

const githubStatus = `{"deployment_status":{"state":"in_progress","environment":"prod-eu"},
	"deployment":{"id":42,"sha":"abc","ref":"main","environment":"prod-eu"},
	"repository":{"id":7,"name":"billing","full_name":"acme/billing","html_url":"https://github.com/acme/billing"}}`

type sourceJSON struct {
	ID               string `json:"id"`
	Kind             string `json:"kind"`
	Name             string `json:"name"`
	SecretSet        bool   `json:"secret_set"`
	IngestURL        string `json:"ingest_url"`
	EnvironmentTypes []struct {
		Pattern string `json:"pattern"`
		Type    string `json:"type"`
	} `json:"environment_types"`
}

// exerciseSources runs every source operation, its success and its
// errors, through the harness (so each answer is checked against
// openapi.yaml), for TestAPIMatchesOpenAPI.
func exerciseSources(t *testing.T, h *apiHarness, tok, base string) {
	var src sourceJSON
	create := `{"kind":"GITHUB","name":"acme on GitHub","secret":"gh-source-s3cret","environment_types":[{"pattern":"prod-*","type":"PRODUCTION"}]}`
	if st := h.do(tok, "POST", base+"/source", create, &src); st != 201 {
		t.Fatalf("create source: %d", st)
	}
	if !src.SecretSet || src.Kind != "GITHUB" || len(src.EnvironmentTypes) != 1 || src.EnvironmentTypes[0].Type != "PRODUCTION" {
		t.Errorf("created source = %+v", src)
	}
	path := base + "/source/" + src.ID
	if want := h.srv.URL + path + "/ingest"; src.IngestURL != want {
		t.Errorf("ingest_url = %q, want %q", src.IngestURL, want)
	}
	steps := []struct {
		method, path, body string
		status             int
	}{
		{"GET", base + "/source", "", 200},
		{"GET", path, "", 200},
		{"PUT", path, `{"kind":"GITHUB","name":"renamed","environment_types":[]}`, 200},
		{"POST", base + "/source", `{"kind":"JENKINS","name":"x","secret":"gh-source-s3cret"}`, 400},
		{"POST", base + "/source", `{"kind":"GITHUB","name":"x"}`, 400},
		{"POST", base + "/source", `{"kind":"GITHUB","name":"x","secret":"gh-source-s3cret","environment_types":[{"pattern":"p","type":"PROD"}]}`, 400},
		{"POST", base + "/source", `{"name":"` + strings.Repeat("x", maxBody) + `"}`, 413},
		{"PUT", path, `{"kind":"GITHUB","name":"x","secret":""}`, 400},
		{"GET", base + "/source/" + uuid.NewString(), "", 404},
		{"DELETE", base + "/source/" + uuid.NewString(), "", 404},
	}
	for _, s := range steps {
		if st := h.do(tok, s.method, s.path, s.body, nil); st != s.status {
			t.Errorf("%s %s %.80s: %d, want %d", s.method, s.path, s.body, st, s.status)
		}
	}
	// The edit kept the secret it did not send.
	h.do(tok, "GET", path, "", &src)
	if !src.SecretSet || src.Name != "renamed" {
		t.Errorf("after edit = %+v", src)
	}

	ingest := path + "/ingest"
	var answer struct {
		ID         string `json:"id"`
		Deliveries *int   `json:"deliveries"`
		Ignored    bool   `json:"ignored"`
		Reason     string `json:"reason"`
	}
	signed := githubHeaders("gh-source-s3cret", "deployment_status", "d-1", githubStatus)
	if st := h.ingest(ingest, githubStatus, signed, &answer); st != 202 || answer.ID == "" || answer.Ignored {
		t.Errorf("signed deployment_status: %d %+v", st, answer)
	}
	first := answer.ID
	answer.ID = ""
	if st := h.ingest(ingest, githubStatus, signed, &answer); st != 202 || answer.ID != first {
		t.Errorf("the same delivery again: %d %+v, want the first event %s", st, answer, first)
	}
	ingests := []struct {
		name   string
		body   string
		header map[string]string
		status int
	}{
		{"unsigned", githubStatus, map[string]string{"X-GitHub-Event": "deployment_status"}, 401},
		{"wrong secret", githubStatus, githubHeaders("wrong", "deployment_status", "d-2", githubStatus), 401},
		{"ping", `{"zen":"Keep it logically awesome."}`, githubHeaders("gh-source-s3cret", "ping", "d-3", `{"zen":"Keep it logically awesome."}`), 200},
		{"push", `{}`, githubHeaders("gh-source-s3cret", "push", "d-4", `{}`), 202},
		{"malformed", `{"deployment`, githubHeaders("gh-source-s3cret", "deployment_status", "d-5", `{"deployment`), 400},
		{"no repository", `{"deployment_status":{"state":"success"},"deployment":{"environment":"e"}}`,
			githubHeaders("gh-source-s3cret", "deployment_status", "d-6", `{"deployment_status":{"state":"success"},"deployment":{"environment":"e"}}`), 400},
		{"oversized", strings.Repeat(" ", maxBody+1), githubHeaders("gh-source-s3cret", "deployment_status", "d-7", ""), 413},
	}
	for _, in := range ingests {
		if st := h.ingest(ingest, in.body, in.header, nil); st != in.status {
			t.Errorf("ingest %s: %d, want %d", in.name, st, in.status)
		}
	}
	if st := h.ingest(base+"/source/"+uuid.NewString()+"/ingest", githubStatus, signed, nil); st != 404 {
		t.Errorf("ingest to a missing source: %d, want 404", st)
	}
	if st := h.ingest("/organization/"+uuid.NewString()+"/source/"+src.ID+"/ingest", githubStatus, signed, nil); st != 404 {
		t.Errorf("ingest under another organization: %d, want 404", st)
	}

	// Refusals are counted, by kind.
	wantMetrics(t, h,
		`hookd_source_requests_total{kind="GITHUB",outcome="unauthorized"} 2`,
		`hookd_source_requests_total{kind="GITHUB",outcome="accepted"} 1`,
		`hookd_source_requests_total{kind="GITHUB",outcome="replayed"} 1`,
		`hookd_source_requests_total{kind="GITHUB",outcome="too_large"} 1`,
	)

	if st := h.do(tok, "DELETE", path, "", nil); st != 204 {
		t.Errorf("delete source: %d", st)
	}
	if st := h.ingest(ingest, githubStatus, signed, nil); st != 404 {
		t.Errorf("ingest after delete: %d, want 404", st)
	}
}

// TestIngestIntakeRate: events from a source count against the
// organization's intake rate, like those reported to /deployment-event.
func TestIngestIntakeRate(t *testing.T) {
	h := newAPIHarness(t, func(d *Deps) { d.Limits = Limits{IntakeRate: 0.001, IntakeBurst: 1} })
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	_, ingest := newGitHubSource(t, h, tok, base)
	if st := h.ingest(ingest, githubStatus, githubHeaders(sourceSecret, "deployment_status", "d-1", githubStatus), nil); st != 202 {
		t.Fatalf("first event: %d", st)
	}
	if st := h.ingest(ingest, githubStatus, githubHeaders(sourceSecret, "deployment_status", "d-2", githubStatus), nil); st != 429 {
		t.Errorf("second event past the burst: %d, want 429", st)
	}
	// Not signed: refused before the rate is touched.
	if st := h.ingest(ingest, githubStatus, map[string]string{"X-GitHub-Event": "deployment_status"}, nil); st != 401 {
		t.Errorf("unsigned: %d, want 401", st)
	}
}

// TestSourceSecretMinLength: a source's secret, its ingest URL's only
// credential, must be at least 16 characters when it is set (create, or
// an edit that gives one); a shorter secret stored before the limit keeps
// working.
func TestSourceSecretMinLength(t *testing.T) {
	h := newAPIHarness(t)
	org := uuid.New()
	tok, tokID := h.token(org)
	base := "/organization/" + org.String()
	short := sourceSecret[:len(sourceSecret)-1]
	var refused errorDetail
	if st := h.do(tok, "POST", base+"/source", `{"kind":"GITHUB","name":"gh","secret":"`+short+`"}`, &refused); st != 400 || !strings.HasPrefix(refused.Detail, "secret:") {
		t.Errorf("create with a %d-character secret: %d %q, want 400 naming secret", len(short), st, refused.Detail)
	}
	var src sourceJSON
	if st := h.do(tok, "POST", base+"/source", `{"kind":"GITHUB","name":"gh","secret":"`+sourceSecret+`"}`, &src); st != 201 {
		t.Fatalf("create with a %d-character secret: %d, want 201", len(sourceSecret), st)
	}
	path := base + "/source/" + src.ID
	refused.Detail = ""
	if st := h.do(tok, "PUT", path, `{"kind":"GITHUB","name":"gh","secret":"`+short+`"}`, &refused); st != 400 || !strings.HasPrefix(refused.Detail, "secret:") {
		t.Errorf("edit to a %d-character secret: %d %q, want 400 naming secret", len(short), st, refused.Detail)
	}
	if st := h.ingest(path+"/ingest", githubStatus, githubHeaders(sourceSecret, "deployment_status", "d-1", githubStatus), nil); st != 202 {
		t.Errorf("ingest after the refused edit, with the kept secret: %d, want 202", st)
	}

	// A source stored with a short secret before the limit: ingest still
	// verifies it, and an edit that leaves the secret out is accepted.
	now := time.Now().UTC().Truncate(time.Microsecond)
	old := &webhook.Source{ID: uuid.New(), OrganizationID: org, CreatedAt: now, UpdatedAt: now, Kind: webhook.SourceGitHub, Name: "old", Secret: "s"}
	by := webhook.Actor{Kind: webhook.ActorToken, ID: tokID.String()}
	if err := h.db.SourceCreate(context.Background(), old, 0, webhook.SourceAudit(by, now, nil, old)); err != nil {
		t.Fatal(err)
	}
	oldPath := base + "/source/" + old.ID.String()
	if st := h.do(tok, "PUT", oldPath, `{"kind":"GITHUB","name":"renamed"}`, nil); st != 200 {
		t.Errorf("edit keeping a short stored secret: %d, want 200", st)
	}
	if st := h.ingest(oldPath+"/ingest", githubStatus, githubHeaders("s", "deployment_status", "d-2", githubStatus), nil); st != 202 {
		t.Errorf("ingest signed with a short stored secret: %d, want 202", st)
	}
}

// TestIngestBadSignaturesLimitedPerAddress: refused signatures count
// against the client address's failed authentications, like wrong API
// tokens; past the burst the address gets 429 with Retry-After even with
// a good signature, counted by kind, while another address is still
// accepted.
func TestIngestBadSignaturesLimitedPerAddress(t *testing.T) {
	c := newClock()
	h := newAPIHarness(t, withLimits(Limits{AuthFailureRate: 0.5, AuthFailureBurst: 3}, c))
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	_, ingest := newGitHubSource(t, h, tok, base)
	for i := range 3 {
		if st := h.ingest(ingest, githubStatus, githubHeaders("guess-"+strconv.Itoa(i), "deployment_status", "d-bad", githubStatus), nil); st != 401 {
			t.Fatalf("bad signature %d of the burst: %d, want 401", i+1, st)
		}
	}
	good := githubHeaders(sourceSecret, "deployment_status", "d-good", githubStatus)
	var body errorDetail
	st, hdr := h.ingestHeader(ingest, githubStatus, good, &body)
	if st != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(body.Detail, "failed authentications") {
		t.Fatalf("a good signature past the burst: %d, Retry-After %q, %q; want 429", st, hdr.Get("Retry-After"), body.Detail)
	}
	// The API's tokens share the address's count.
	if st := h.do("hkd_"+strings.Repeat("x", 43), "GET", base+"/webhook", "", nil); st != 429 {
		t.Errorf("a wrong API token from the same address: %d, want 429", st)
	}

	// Another address is not held back by this one's failures.
	req := httptest.NewRequest("POST", ingest, strings.NewReader(githubStatus))
	req.RemoteAddr = "192.0.2.9:40000"
	for k, v := range good {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.srv.Config.Handler.ServeHTTP(rec, req)
	if rec.Code != 202 {
		t.Errorf("a good signature from another address: %d %s, want 202", rec.Code, rec.Body)
	}

	wantMetrics(t, h,
		`hookd_source_requests_total{kind="GITHUB",outcome="unauthorized"} 3`,
		`hookd_source_requests_total{kind="unknown",outcome="auth_throttled"} 1`,
		`hookd_source_requests_total{kind="GITHUB",outcome="accepted"} 1`,
		`hookd_requests_throttled_total{reason="auth_failures"} 2`,
	)

	// Once the address's bucket refills, its good signature is accepted.
	c.Advance(2 * time.Second)
	if st := h.ingest(ingest, githubStatus, good, nil); st != 202 {
		t.Errorf("a good signature after the refill: %d, want 202", st)
	}
}

// newGitHubSource creates a GITHUB source mapping prod* to PRODUCTION and
// returns its ingest path.
func newGitHubSource(t *testing.T, h *apiHarness, tok, base string) (path, ingest string) {
	t.Helper()
	var src sourceJSON
	if st := h.do(tok, "POST", base+"/source", `{"kind":"GITHUB","name":"s","secret":"`+sourceSecret+
		`","environment_types":[{"pattern":"prod*","type":"PRODUCTION"}]}`, &src); st != 201 {
		t.Fatalf("create source: %d", st)
	}
	return base + "/source/" + src.ID, base + "/source/" + src.ID + "/ingest"
}

type ingestReceipt struct {
	ID         string `json:"id"`
	Deliveries int    `json:"deliveries"`
	Detail     string `json:"detail"`
}

// A tool's redelivery is a replay even when the source was edited since
// and the delivery now translates to another environment type: the tool
// cannot choose a new key, and a 422 would leave it failing for a day.
func TestSourceRedeliveryAfterEdit(t *testing.T) {
	h := newAPIHarness(t)
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	path, ingest := newGitHubSource(t, h, tok, base)
	signed := githubHeaders(sourceSecret, "deployment_status", "d-1", githubStatus)
	var first, again ingestReceipt
	if st := h.ingest(ingest, githubStatus, signed, &first); st != 202 {
		t.Fatalf("first delivery: %d %s", st, first.Detail)
	}
	if st := h.do(tok, "PUT", path, `{"kind":"GITHUB","name":"s","environment_types":[{"pattern":"prod*","type":"STAGING"}]}`, nil); st != 200 {
		t.Fatalf("edit: %d", st)
	}
	if st := h.ingest(ingest, githubStatus, signed, &again); st != 202 || again.ID != first.ID {
		t.Errorf("redelivery after an edit: %d %q %s, want 202 with the first event %s", st, again.Detail, again.ID, first.ID)
	}
}

// An intake caller cannot take a key of the sources' own: it could
// otherwise answer a tool's delivery for it, before it comes.
func TestIntakeRefusesSourceKeys(t *testing.T) {
	h := newAPIHarness(t)
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	path, ingest := newGitHubSource(t, h, tok, base)
	id := strings.TrimPrefix(path, base+"/source/")
	var e ingestReceipt
	st, _ := h.doWith(tok, "POST", base+"/deployment-event", `{"event_type":"DEPLOYMENT_STARTED","project":{"name":"p"},"environment":{"name":"e","mode":"STAGING"}}`,
		http.Header{"Idempotency-Key": {"source:" + id + ":d-1"}}, &e)
	if st != 400 || !strings.HasPrefix(e.Detail, "Idempotency-Key: ") {
		t.Fatalf("intake with a source's key: %d %q, want 400 naming Idempotency-Key", st, e.Detail)
	}
	var first, again ingestReceipt
	one, two := githubStatusWithID(1), githubStatusWithID(2)
	h.ingest(ingest, one, githubHeaders(sourceSecret, "deployment_status", "d-1", one), &first)
	if st := h.ingest(ingest, two, githubHeaders(sourceSecret, "deployment_status", "d-2", two), &again); st != 202 || first.ID == "" || again.ID == first.ID {
		t.Errorf("the tool's deliveries d-1 and d-2: %s and %s (%d), want two events", first.ID, again.ID, st)
	}
}

// githubStatusWithID is githubStatus with deployment_status.id, as GitHub
// sends it: one id per status.
func githubStatusWithID(id int) string {
	return strings.Replace(githubStatus, `{"deployment_status":{`, `{"deployment_status":{"id":`+strconv.Itoa(id)+`,`, 1)
}

// GitHub signs the body, not X-GitHub-Delivery: a captured delivery sent
// again with a fresh X-GitHub-Delivery is a replay of the first event,
// not a second deployment notification to every webhook.
func TestSourceGitHubFreshDeliveryHeaderIsReplay(t *testing.T) {
	h := newAPIHarness(t)
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	_, ingest := newGitHubSource(t, h, tok, base)
	body := githubStatusWithID(344177809)
	var first ingestReceipt
	if st := h.ingest(ingest, body, githubHeaders(sourceSecret, "deployment_status", "d-1", body), &first); st != 202 || first.ID == "" {
		t.Fatalf("the delivery: %d %+v", st, first)
	}
	for _, guid := range []string{"d-1", "d-forged", ""} {
		var again ingestReceipt
		if st := h.ingest(ingest, body, githubHeaders(sourceSecret, "deployment_status", guid, body), &again); st != 202 || again.ID != first.ID {
			t.Errorf("the same signed body with X-GitHub-Delivery %q: %d %s, want 202 with the first event %s", guid, st, again.ID, first.ID)
		}
	}
	wantMetrics(t, h,
		`hookd_source_requests_total{kind="GITHUB",outcome="accepted"} 1`,
		`hookd_source_requests_total{kind="GITHUB",outcome="replayed"} 3`,
	)
}

// A delivery id that holds what a key may not (here a NUL, from the
// sync's start time in Argo CD's body) is hashed into the key: the
// delivery is taken on either backend, and its repeat is a replay.
func TestSourceKeyWithNUL(t *testing.T) {
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		org := uuid.New()
		tok, _ := h.token(org)
		base := "/organization/" + org.String()
		var src sourceJSON
		if st := h.do(tok, "POST", base+"/source", `{"kind":"ARGOCD","name":"s","secret":"`+sourceSecret+`"}`, &src); st != 201 {
			t.Fatalf("create source: %d", st)
		}
		body := `{"event":"sync-succeeded","app":"billing","namespace":"prod","revision":"abc","startedAt":"x\u0000y"}`
		token := map[string]string{"X-Hookd-Token": sourceSecret}
		var first, again ingestReceipt
		if st := h.ingest(base+"/source/"+src.ID+"/ingest", body, token, &first); st != 202 {
			t.Fatalf("a delivery id with a NUL: %d %q, want 202", st, first.Detail)
		}
		if st := h.ingest(base+"/source/"+src.ID+"/ingest", body, token, &again); st != 202 || again.ID != first.ID {
			t.Errorf("its repeat: %d %s, want 202 with %s", st, again.ID, first.ID)
		}
	})
}

// A tool's delivery id is its key as long as the key fits the bound every
// idempotency key is held to; one a byte longer is hashed, so that it
// still fits, and two ids alike up to the bound are two keys.
func TestSourceKeyLength(t *testing.T) {
	src := uuid.New()
	prefix := sourceKeyPrefix + src.String() + ":"
	fits := strings.Repeat("d", maxIdempotencyKey-len(prefix))
	if k := sourceKey(src, fits); k != prefix+fits {
		t.Errorf("a delivery id that fits: key %q, want it as it is", k)
	}
	sum := sha256.Sum256([]byte(fits + "e"))
	want := prefix + "sha256:" + hex.EncodeToString(sum[:])
	if k := sourceKey(src, fits+"e"); k != want || len(k) > maxIdempotencyKey {
		t.Errorf("a delivery id a byte too long: key %q (%d bytes), want %q", k, len(k), want)
	}
	if a, b := sourceKey(src, fits+"e"), sourceKey(src, fits+"f"); a == b {
		t.Errorf("two long ids alike up to the bound share the key %q", a)
	}
	if k := sourceKey(src, ""); k != "" {
		t.Errorf("no delivery id: key %q, want none", k)
	}
}

// TestIngestUnknownSourceThrottled: an unknown source id counts against
// the address's failed authentications, so ids cannot be probed without
// limit, and an address past them is answered 429 before the source is
// looked up: no database work for a throttled caller, and the same answer
// whether the source exists or not.
func TestIngestUnknownSourceThrottled(t *testing.T) {
	c := newClock()
	var counted *countingStore
	h := newAPIHarness(t, withLimits(Limits{AuthFailureRate: 0.5, AuthFailureBurst: 3}, c), func(d *Deps) {
		counted = &countingStore{Store: d.Store}
		d.Store = counted
	})
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	_, ingest := newGitHubSource(t, h, tok, base)
	good := githubHeaders(sourceSecret, "deployment_status", "d-good", githubStatus)

	for i := range 3 {
		if st := h.ingest(base+"/source/"+uuid.NewString()+"/ingest", githubStatus, good, nil); st != 404 {
			t.Fatalf("unknown source %d of the burst: %d, want 404", i+1, st)
		}
	}
	gets := counted.sourceGets.Load()
	for _, path := range []string{base + "/source/" + uuid.NewString() + "/ingest", ingest} {
		var body errorDetail
		st, hdr := h.ingestHeader(path, githubStatus, good, &body)
		if st != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(body.Detail, "failed authentications") {
			t.Errorf("%s past the burst: %d, Retry-After %q, %q; want 429", path, st, hdr.Get("Retry-After"), body.Detail)
		}
	}
	if n := counted.sourceGets.Load() - gets; n != 0 {
		t.Errorf("a throttled address's requests looked a source up %d times, want 0", n)
	}

	wantMetrics(t, h,
		`hookd_source_requests_total{kind="unknown",outcome="not_found"} 3`,
		`hookd_source_requests_total{kind="unknown",outcome="auth_throttled"} 2`,
	)

	c.Advance(2 * time.Second)
	if st := h.ingest(ingest, githubStatus, good, nil); st != 202 {
		t.Errorf("a good signature after the refill: %d, want 202", st)
	}
}

// TestMaxSourcesPerOrganization: past MaxSourcesPerOrg a create is 409
// naming the limit, as for webhooks (so GET …/source, unpaginated, stays
// bounded); another organization has its own count, and a deletion makes
// room again.
func TestMaxSourcesPerOrganization(t *testing.T) {
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		org, other := uuid.New(), uuid.New()
		tok, _ := h.token(org)
		otherTok, _ := h.token(other)
		base := "/organization/" + org.String()
		body := `{"kind":"GITLAB","name":"g","secret":"` + sourceSecret + `"}`
		var created []sourceJSON
		for i := range 2 {
			var src sourceJSON
			if st := h.do(tok, "POST", base+"/source", body, &src); st != 201 {
				t.Fatalf("source %d: %d", i+1, st)
			}
			created = append(created, src)
		}
		var e errorDetail
		if st := h.do(tok, "POST", base+"/source", body, &e); st != 409 || !strings.Contains(e.Detail, "2 sources") {
			t.Fatalf("third source: %d %q, want 409 naming the limit", st, e.Detail)
		}
		var list struct{ Results []sourceJSON }
		if h.do(tok, "GET", base+"/source", "", &list); len(list.Results) != 2 {
			t.Errorf("%d sources listed, want 2", len(list.Results))
		}
		if st := h.do(otherTok, "POST", "/organization/"+other.String()+"/source", body, nil); st != 201 {
			t.Errorf("another organization's first source: %d, want 201", st)
		}
		if st := h.do(tok, "DELETE", base+"/source/"+created[0].ID, "", nil); st != 204 {
			t.Fatalf("delete: %d", st)
		}
		if st := h.do(tok, "POST", base+"/source", body, nil); st != 201 {
			t.Errorf("create after a delete: %d, want 201", st)
		}
	}, withLimits(Limits{MaxSourcesPerOrg: 2}, newClock()))
}

// TestSourceHeaderSecretPrintable: a secret the tool sends as it is in a
// header (GitLab's X-Gitlab-Token, Argo CD's X-Hookd-Token, Qovery's
// Qovery-Signature) can never match if it holds a control character or
// a space at either end (HTTP drops those), so it is refused with a 400
// naming secret, on create and on edit, and so is a change of kind that
// would keep such a secret; the kinds that sign with it take it.
func TestSourceHeaderSecretPrintable(t *testing.T) {
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		org := uuid.New()
		tok, _ := h.token(org)
		base := "/organization/" + org.String()
		bad := map[string]string{
			"a tab":            `"\tsecret-of-16-characters"`,
			"a newline":        `"secret-of-16-characters\n"`,
			"a DEL":            `"secret-of-16\u007fcharacters"`,
			"a trailing space": `"secret-of-16-characters "`,
			"non-ASCII":        `"secret-of-16-charactères"`,
		}
		for _, kind := range []string{"GITLAB", "ARGOCD", "QOVERY"} {
			var src sourceJSON
			if st := h.do(tok, "POST", base+"/source", `{"kind":"`+kind+`","name":"s","secret":"`+sourceSecret+`"}`, &src); st != 201 {
				t.Fatalf("%s: create: %d", kind, st)
			}
			for what, secret := range bad {
				var e errorDetail
				if st := h.do(tok, "POST", base+"/source", `{"kind":"`+kind+`","name":"s","secret":`+secret+`}`, &e); st != 400 || !strings.HasPrefix(e.Detail, "secret:") {
					t.Errorf("%s: create with %s in the secret: %d %q, want 400 naming secret", kind, what, st, e.Detail)
				}
				e.Detail = ""
				if st := h.do(tok, "PUT", base+"/source/"+src.ID, `{"kind":"`+kind+`","name":"s","secret":`+secret+`}`, &e); st != 400 || !strings.HasPrefix(e.Detail, "secret:") {
					t.Errorf("%s: edit to %s in the secret: %d %q, want 400 naming secret", kind, what, st, e.Detail)
				}
			}
		}
		// GitHub signs with its secret: it may hold what a header cannot.
		var gh sourceJSON
		if st := h.do(tok, "POST", base+"/source", `{"kind":"GITHUB","name":"gh","secret":"secret-of-16-charactères"}`, &gh); st != 201 {
			t.Fatalf("GITHUB with a non-ASCII secret: %d, want 201", st)
		}
		var e errorDetail
		if st := h.do(tok, "PUT", base+"/source/"+gh.ID, `{"kind":"GITLAB","name":"gh"}`, &e); st != 400 || !strings.HasPrefix(e.Detail, "secret:") {
			t.Errorf("GITHUB to GITLAB keeping a non-ASCII secret: %d %q, want 400 naming secret", st, e.Detail)
		}
		if st := h.do(tok, "PUT", base+"/source/"+gh.ID, `{"kind":"GITLAB","name":"gh","secret":"`+sourceSecret+`"}`, nil); st != 200 {
			t.Errorf("GITHUB to GITLAB with a new secret: %d, want 200", st)
		}
		if st := h.do(tok, "PUT", base+"/source/"+gh.ID, `{"kind":"ARGOCD","name":"renamed"}`, nil); st != 200 {
			t.Errorf("GITLAB to ARGOCD keeping a printable secret: %d, want 200", st)
		}
	})
}

// wantMetrics checks that /metrics has each of the lines want.
func wantMetrics(t *testing.T, h *apiHarness, want ...string) {
	t.Helper()
	resp, err := http.Get(h.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range want {
		if !strings.Contains(string(metrics), w) {
			t.Errorf("/metrics has no %s", w)
		}
	}
}

// A source's edit moves its version (updated_at, and so the ETag)
// forward even when the clock stamping it is not ahead of the one that
// stamped the version it replaces: the same microsecond, or a clock
// stepped back (another node's). Otherwise an edit of the secret alone,
// which the ETag sees only through updated_at, would leave the ETag as it
// was, and an If-Match naming the version before it would still match.
func TestSourceEditMovesTheVersionForward(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	h := newAPIHarness(t, func(d *Deps) { d.Now = func() time.Time { return now } })
	org := uuid.New()
	tok, _ := h.token(org)
	var src struct {
		ID        string    `json:"id"`
		UpdatedAt time.Time `json:"updated_at"`
	}
	st, hdr := h.doWith(tok, "POST", "/organization/"+org.String()+"/source", `{"kind":"FLUX","name":"flux","secret":"0123456789abcdef0123"}`, nil, &src)
	if st != 201 {
		t.Fatalf("create: %d", st)
	}
	path := "/organization/" + org.String() + "/source/" + src.ID
	version, etag := src.UpdatedAt, hdr.Get("ETag")
	for i, step := range []time.Duration{0, -time.Minute} {
		now = now.Add(step)
		st, hdr := h.doWith(tok, "PUT", path, `{"kind":"FLUX","name":"flux","secret":"another-secret-0123456789-`+strconv.Itoa(i)+`"}`, nil, &src)
		if st != 200 {
			t.Fatalf("edit %d: %d", i+1, st)
		}
		if !src.UpdatedAt.After(version) || hdr.Get("ETag") == etag {
			t.Fatalf("edit %d on a clock %v from the last: updated_at %v, ETag %s; want after %v, not %s", i+1, step, src.UpdatedAt, hdr.Get("ETag"), version, etag)
		}
		if st, _ := h.doWith(tok, "PUT", path, `{"kind":"FLUX","name":"lost"}`, http.Header{"If-Match": {etag}}, nil); st != 412 {
			t.Fatalf("edit %d: a PUT naming the version before it: %d, want 412", i+1, st)
		}
		version, etag = src.UpdatedAt, hdr.Get("ETag")
	}
}

// A tool's copy of a delivery is answered with the first event for as
// long as the tool can send it: GitHub redelivers any delivery of the
// past 3 days, so its redelivery 2 days later (past the 24 hours of an
// API caller's Idempotency-Key) is the first event, delivered to no
// webhook again. A Flux event said again a day later is a new event:
// Flux sends no delivery id, and its key is made from what it says.
func TestSourceRedeliveryDaysLater(t *testing.T) {
	start := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	now := start
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		now = start
		org := uuid.New()
		tok, _ := h.token(org)
		base := "/organization/" + org.String()
		_, ingest := newGitHubSource(t, h, tok, base)
		body := githubStatusWithID(344177809)
		signed := githubHeaders(sourceSecret, "deployment_status", "d-1", body)
		var first, again ingestReceipt
		if st := h.ingest(ingest, body, signed, &first); st != 202 || first.ID == "" {
			t.Fatalf("the delivery: %d %+v", st, first)
		}
		now = start.Add(48 * time.Hour)
		if st := h.ingest(ingest, body, signed, &again); st != 202 || again.ID != first.ID {
			t.Errorf("GitHub's redelivery 2 days later: %d %s, want 202 with the first event %s", st, again.ID, first.ID)
		}

		now = start
		var flux sourceJSON
		if st := h.do(tok, "POST", base+"/source", `{"kind":"FLUX","name":"flux","secret":"`+sourceSecret+`"}`, &flux); st != 201 {
			t.Fatalf("create the Flux source: %d", st)
		}
		fluxIngest := base + "/source/" + flux.ID + "/ingest"
		event := `{"involvedObject":{"kind":"Kustomization","name":"webapp","namespace":"apps","uid":"u-1"},
			"metadata":{"revision":"main@sha1:731f7eaddfb6af01cb2173e18f0f75b0ba780ef1"},
			"severity":"error","reason":"ValidationFailed","timestamp":"2026-12-04T09:00:00Z"}`
		m := hmac.New(sha256.New, []byte(sourceSecret))
		m.Write([]byte(event))
		fluxSigned := map[string]string{"X-Signature": "sha256=" + hex.EncodeToString(m.Sum(nil))}
		var failed, repeated ingestReceipt
		if st := h.ingest(fluxIngest, event, fluxSigned, &failed); st != 202 || failed.ID == "" {
			t.Fatalf("the Flux event: %d %+v", st, failed)
		}
		now = start.Add(webhook.IdempotencyWindow)
		if st := h.ingest(fluxIngest, event, fluxSigned, &repeated); st != 202 || repeated.ID == "" || repeated.ID == failed.ID {
			t.Errorf("the Flux event said again a day later: %d %q, want 202 with a new event (not %s)", st, repeated.ID, failed.ID)
		}
	}, func(d *Deps) { d.Now = func() time.Time { return now } })
}
