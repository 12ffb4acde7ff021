package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/auth"
	"github.com/hookd/hookd/internal/webhook"
)

// clock is a settable Deps.Now, so token buckets refill only when a test
// says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withLimits(l Limits, c *clock) func(*Deps) {
	return func(d *Deps) {
		d.Limits = l
		d.Now = c.Now
	}
}

const eventBody = `{"event_type":"DEPLOYMENT_STARTED","project":{"name":"p"},"environment":{"name":"e","mode":"STAGING"}}`

// errorDetail is the detail of Qovery's error body.
type errorDetail struct {
	Detail string `json:"detail"`
}

func TestAPIRateLimitPerCredential(t *testing.T) {
	c := newClock()
	h := newAPIHarness(t, withLimits(Limits{APIRate: 0.5, APIBurst: 3}, c))
	org := uuid.New()
	tokA, _ := h.token(org)
	tokB, _ := h.token(org)
	list := "/organization/" + org.String() + "/webhook"

	for i := range 3 {
		if st := h.do(tokA, "GET", list, "", nil); st != 200 {
			t.Fatalf("request %d of the burst: %d", i+1, st)
		}
	}
	var e errorDetail
	st, header := h.doHeader(tokA, "GET", list, "", &e)
	if st != 429 {
		t.Fatalf("past the burst: %d, want 429", st)
	}
	// 0.5 a second: the next token is 2s away.
	if got := header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q, want 2", got)
	}
	if !strings.Contains(e.Detail, "0.5 a second") || !strings.Contains(e.Detail, "bursts of 3") {
		t.Errorf("detail %q does not state the limit", e.Detail)
	}
	// Other routes and other organizations count against the same
	// credential, and the rate comes before the 403.
	if st := h.do(tokA, "GET", "/organization/"+uuid.NewString()+"/webhook", "", nil); st != 429 {
		t.Errorf("another organization: %d, want 429 (the credential's rate comes first)", st)
	}
	// Another token of the same organization has its own bucket.
	if st := h.do(tokB, "GET", list, "", nil); st != 200 {
		t.Errorf("another token: %d, want 200", st)
	}
	// Intake is not counted against the API rate.
	if st := h.do(tokA, "POST", "/organization/"+org.String()+"/deployment-event", eventBody, nil); st != 202 {
		t.Errorf("intake with an exhausted API rate: %d, want 202", st)
	}
	// Refused requests did not use up the future: 2s later, exactly one.
	c.Advance(2 * time.Second)
	if st := h.do(tokA, "GET", list, "", nil); st != 200 {
		t.Errorf("after Retry-After: %d, want 200", st)
	}
	if st := h.do(tokA, "GET", list, "", nil); st != 429 {
		t.Errorf("second request after Retry-After: %d, want 429", st)
	}
	// Unauthenticated requests are refused as before, not rate limited.
	if st := h.do("", "GET", list, "", nil); st != 401 {
		t.Errorf("no credentials: %d, want 401", st)
	}
}

func TestIntakeRateLimitPerOrganization(t *testing.T) {
	c := newClock()
	h := newAPIHarness(t, withLimits(Limits{IntakeRate: 0.4, IntakeBurst: 2}, c))
	orgA, orgB := uuid.New(), uuid.New()
	tokA1, _ := h.token(orgA)
	tokA2, _ := h.token(orgA)
	tokB, _ := h.token(orgB)
	intake := func(org uuid.UUID) string { return "/organization/" + org.String() + "/deployment-event" }

	// Another organization's credential is refused without using up A's events.
	for range 5 {
		if st := h.do(tokB, "POST", intake(orgA), eventBody, nil); st != 403 {
			t.Fatalf("B's token at A's intake: %d, want 403", st)
		}
	}
	for i, tok := range []string{tokA1, tokA2} {
		if st := h.do(tok, "POST", intake(orgA), eventBody, nil); st != 202 {
			t.Fatalf("event %d of the burst: %d", i+1, st)
		}
	}
	// The bucket is the organization's, whichever token sends.
	for _, tok := range []string{tokA1, tokA2} {
		var e errorDetail
		st, header := h.doHeader(tok, "POST", intake(orgA), eventBody, &e)
		if st != 429 {
			t.Fatalf("past the burst: %d, want 429", st)
		}
		// 0.4 a second: 2.5s, rounded up.
		if got := header.Get("Retry-After"); got != "3" {
			t.Errorf("Retry-After %q, want 3", got)
		}
		if !strings.Contains(e.Detail, orgA.String()) || !strings.Contains(e.Detail, "0.4 a second") {
			t.Errorf("detail %q does not name the organization and the limit", e.Detail)
		}
	}
	if st := h.do(tokB, "POST", intake(orgB), eventBody, nil); st != 202 {
		t.Errorf("another organization: %d, want 202", st)
	}
	// The management API is not counted against intake.
	if st := h.do(tokA1, "GET", "/organization/"+orgA.String()+"/webhook", "", nil); st != 200 {
		t.Errorf("management API with an exhausted intake rate: %d, want 200", st)
	}
	c.Advance(2500 * time.Millisecond)
	if st := h.do(tokA1, "POST", intake(orgA), eventBody, nil); st != 202 {
		t.Errorf("after Retry-After: %d, want 202", st)
	}
}

func TestMaxWebhooksPerOrganization(t *testing.T) {
	h := newAPIHarness(t, withLimits(Limits{MaxWebhooksPerOrg: 2}, newClock()))
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	body := `{"kind":"STANDARD","target_url":"https://example.com/h","events":["DEPLOYMENT_STARTED"]}`
	var created []struct{ ID string }
	for i := range 2 {
		var w struct{ ID string }
		if st := h.do(tok, "POST", base+"/webhook", body, &w); st != 201 {
			t.Fatalf("webhook %d: %d", i+1, st)
		}
		created = append(created, w)
	}
	var e errorDetail
	if st := h.do(tok, "POST", base+"/webhook", body, &e); st != 409 {
		t.Fatalf("third webhook: %d, want 409", st)
	}
	if !strings.Contains(e.Detail, "2 webhooks") {
		t.Errorf("detail %q does not name the limit", e.Detail)
	}
	if st := h.do(tok, "DELETE", base+"/webhook/"+created[0].ID, "", nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st := h.do(tok, "POST", base+"/webhook", body, nil); st != 201 {
		t.Errorf("create after a delete: %d, want 201", st)
	}
}

func TestRateLimiterForgetsRefilledBuckets(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newRateLimiter(10, 5) // refills from empty in 0.5s
	for i := range 3 * minSweepLen {
		if wait := l.reserve(fmt.Sprint("key", i), now); wait != 0 {
			t.Fatalf("first request of key %d waits %v", i, wait)
		}
		// Bounded while keys keep coming: never twice what the last sweep kept.
		if n := l.size(); n > minSweepLen {
			t.Fatalf("%d buckets remembered within one refill, want at most %d", n, minSweepLen)
		}
		now = now.Add(time.Millisecond)
	}
	// A drained bucket is remembered until it has refilled.
	for range 5 {
		l.reserve("busy", now)
	}
	if wait := l.reserve("busy", now); wait != 100*time.Millisecond {
		t.Fatalf("drained bucket: wait %v, want 100ms", wait)
	}
	now = now.Add(sweepEvery)
	l.reserve("other", now)
	if n := l.size(); n != 1 {
		t.Errorf("%d buckets after a sweep a minute later, want only the new one", n)
	}

	var off *rateLimiter = newRateLimiter(0, 10)
	if off != nil || off.reserve("x", now) != 0 {
		t.Error("a zero rate must allow everything")
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                       "1",
		time.Nanosecond:         "1",
		time.Second:             "1",
		time.Second + 1:         "2",
		2500 * time.Millisecond: "3",
		time.Minute:             "60",
	} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%v) = %q, want %q", d, got, want)
		}
	}
}

// countingStore counts token lookups, what each failed authentication
// costs, and source lookups, what each request to an ingest URL costs.
type countingStore struct {
	webhook.Store
	lookups    atomic.Int64
	sourceGets atomic.Int64
}

func (s *countingStore) SourceGet(ctx context.Context, ref webhook.SourceRef) (*webhook.Source, error) {
	s.sourceGets.Add(1)
	return s.Store.SourceGet(ctx, ref)
}

func (s *countingStore) TokenGetByHash(ctx context.Context, hash []byte) (*webhook.Token, error) {
	s.lookups.Add(1)
	return s.Store.TokenGetByHash(ctx, hash)
}

// TestAuthFailuresLimitedPerAddress: failed authentications from one
// address are answered 429 with Retry-After past their rate, before any
// token lookup, on the management API and intake alike; valid
// credentials are not counted, and the bucket refills.
func TestAuthFailuresLimitedPerAddress(t *testing.T) {
	c := newClock()
	var counting *countingStore
	h := newAPIHarness(t, withLimits(Limits{AuthFailureRate: 0.5, AuthFailureBurst: 3}, c), func(d *Deps) {
		counting = &countingStore{Store: d.Store}
		authn, err := auth.New(context.Background(), auth.Config{}, counting, c.Now, d.Log)
		if err != nil {
			t.Fatal(err)
		}
		d.Auth = authn
	})
	org := uuid.New()
	good, _ := h.token(org)
	list := "/organization/" + org.String() + "/webhook"
	bad := "hkd_" + strings.Repeat("x", 43)

	for i := range 3 {
		if st := h.do(bad, "GET", list, "", nil); st != 401 {
			t.Fatalf("failure %d of the burst: %d, want 401", i+1, st)
		}
	}
	before := counting.lookups.Load()
	var body errorDetail
	st, hdr := h.doHeader(bad, "GET", list, "", &body)
	if st != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(body.Detail, "failed authentications") {
		t.Fatalf("past the rate: %d, Retry-After %q, %q; want 429", st, hdr.Get("Retry-After"), body.Detail)
	}
	if st := h.do(bad, "POST", "/organization/"+org.String()+"/deployment-event", eventBody, nil); st != 429 {
		t.Fatalf("intake past the rate: %d, want 429", st)
	}
	if n := counting.lookups.Load() - before; n != 0 {
		t.Fatalf("refused requests cost %d token lookups, want 0", n)
	}
	// Valid credentials from the same address are refused too while the
	// address is over its rate (they cannot be told apart before the
	// lookup), and once it refills they work and do not count.
	c.Advance(2 * time.Second)
	for i := range 5 {
		if st := h.do(good, "GET", list, "", nil); st != 200 {
			t.Fatalf("valid request %d after the refill: %d", i+1, st)
		}
	}
	if st := h.do(bad, "GET", list, "", nil); st != 401 {
		t.Fatalf("a failure after the refill: %d, want 401", st)
	}
}

// TestClientKey: failures are counted per IPv4 address and per IPv6 /64
// (one host usually holds a whole /64, so counting per address would let
// it rotate through them).
func TestClientKey(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.7:40000", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:40000", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:40000", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:1", "2001:db8:1:2::/64"},
		{"not-an-address", "not-an-address"},
	} {
		r := &http.Request{RemoteAddr: tt.remote}
		if got := clientKey(r); got != tt.want {
			t.Errorf("clientKey(%q) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}
