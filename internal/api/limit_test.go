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

// gatedStore holds every token lookup until gate is closed, counting
// those held, so that a test can have many authentications in flight at
// once.
type gatedStore struct {
	webhook.Store
	held atomic.Int64
	mu   sync.Mutex
	gate chan struct{}
}

// open lets the lookups held go on, and holds the next ones again if
// hold.
func (s *gatedStore) open(hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.gate:
	default:
		close(s.gate)
	}
	if hold {
		s.gate = make(chan struct{})
		s.held.Store(0)
	}
}

func (s *gatedStore) TokenGetByHash(ctx context.Context, hash []byte) (*webhook.Token, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	s.held.Add(1)
	select {
	case <-gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.TokenGetByHash(ctx, hash)
}

// TestAuthFailuresLimitedInFlight: wrong credentials sent all at once
// cannot each find the one failure an address has left and be looked up
// together: while an address has failed lately its attempts in flight
// count against what it has left. An address that has not failed is
// held to no number in flight, so a busy client with a valid token is
// never slowed.
func TestAuthFailuresLimitedInFlight(t *testing.T) {
	c := newClock()
	gated := &gatedStore{gate: make(chan struct{})}
	h := newAPIHarness(t, withLimits(Limits{AuthFailureRate: 0.5, AuthFailureBurst: 3}, c), func(d *Deps) {
		gated.Store = d.Store
		authn, err := auth.New(context.Background(), auth.Config{}, gated, c.Now, d.Log)
		if err != nil {
			t.Fatal(err)
		}
		d.Auth = authn
	})
	// A failing test lets the lookups it holds go on, or closing the
	// server would wait for them.
	t.Cleanup(func() { gated.open(false) })
	org := uuid.New()
	good, _ := h.token(org)
	list := h.srv.URL + "/organization/" + org.String() + "/webhook"
	get := func(token string, answers chan<- int) {
		req, _ := http.NewRequest("GET", list, nil)
		req.Header.Set("Authorization", "Token "+token)
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			answers <- 0
			return
		}
		resp.Body.Close()
		answers <- resp.StatusCode
	}
	// collect waits for n answers, bounded in time.
	collect := func(answers <-chan int, n int, what string) map[int]int {
		t.Helper()
		got := map[int]int{}
		deadline := time.After(10 * time.Second)
		for range n {
			select {
			case st := <-answers:
				got[st]++
			case <-deadline:
				t.Fatalf("%s: %d of %d answered within 10s (%v), %d token lookups held", what, len(got), n, got, gated.held.Load())
			}
		}
		return got
	}
	// waitHeld waits until n lookups are held, bounded in time.
	waitHeld := func(n int64, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); gated.held.Load() < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d token lookups in flight after 10s, want %d", what, gated.held.Load(), n)
			}
		}
	}

	// A valid token, 12 requests at once, on an address that has not
	// failed: all are looked up together, and all succeed.
	answers := make(chan int, 12)
	for range 12 {
		go get(good, answers)
	}
	waitHeld(12, "12 valid requests at once")
	gated.open(true)
	if got := collect(answers, 12, "12 valid requests at once"); got[200] != 12 {
		t.Fatalf("12 valid requests at once from an address that has not failed: %v, want 12 × 200", got)
	}

	// Two malformed tokens (no lookup) leave the address one failure.
	for i := range 2 {
		if st := h.do("not-a-token", "GET", "/organization/"+org.String()+"/webhook", "", nil); st != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, st)
		}
	}
	// Eight wrong tokens at once: one is looked up, the others are
	// answered 429 without a lookup while it is in flight.
	bad := "hkd_" + strings.Repeat("x", 43)
	for range 8 {
		go get(bad, answers)
	}
	if got := collect(answers, 7, "8 wrong tokens at once, one failure left"); got[429] != 7 {
		t.Fatalf("8 wrong tokens at once with one failure left: %v before any lookup ended, want 7 × 429", got)
	}
	if n := gated.held.Load(); n != 1 {
		t.Fatalf("8 wrong tokens at once with one failure left: %d token lookups, want 1", n)
	}
	gated.open(false)
	if got := collect(answers, 1, "the wrong token looked up"); got[401] != 1 {
		t.Fatalf("the wrong token looked up: %v, want 401", got)
	}
	// Its failure spent the last one: even a valid token waits now (it
	// cannot be told apart before its lookup), until the bucket refills.
	if st := h.do(good, "GET", "/organization/"+org.String()+"/webhook", "", nil); st != 429 {
		t.Fatalf("a valid token after the last failure: %d, want 429", st)
	}
	c.Advance(2 * time.Second)
	if st := h.do(good, "GET", "/organization/"+org.String()+"/webhook", "", nil); st != 200 {
		t.Fatalf("a valid token once a failure is left again: %d, want 200", st)
	}
}

// TestAdmitCountsAttemptsInFlight: the failure limiter's arithmetic.
// Attempts in flight count against a bucket below full, and give their
// place back when they succeed; a full or unknown bucket admits any
// number in flight.
func TestAdmitCountsAttemptsInFlight(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newRateLimiter(1, 3)
	var open []attempt
	for i := range 10 {
		a, wait := l.admit("fresh", now)
		if wait != 0 {
			t.Fatalf("attempt %d in flight from an address that never failed waits %v", i+1, wait)
		}
		open = append(open, a)
	}
	for _, a := range open {
		l.settle(a, false, now)
	}
	if n := l.size(); n != 0 {
		t.Fatalf("%d buckets after successes only, want none", n)
	}

	// One failure: 2 left, so 2 may be in flight and a third waits a
	// second (one token's refill).
	a, _ := l.admit("ip", now)
	l.settle(a, true, now)
	first, w1 := l.admit("ip", now)
	second, w2 := l.admit("ip", now)
	_, w3 := l.admit("ip", now)
	if w1 != 0 || w2 != 0 || w3 != time.Second {
		t.Fatalf("with 2 failures left, 3 attempts in flight wait %v, %v, %v; want 0, 0, 1s", w1, w2, w3)
	}
	// A success gives its place back; a failure spends a token.
	l.settle(first, false, now)
	third, w := l.admit("ip", now)
	if w != 0 {
		t.Fatalf("after a success, an attempt waits %v, want 0", w)
	}
	l.settle(second, true, now)
	l.settle(third, true, now)
	if _, w := l.admit("ip", now); w != time.Second {
		t.Fatalf("after 3 failures of a burst of 3: wait %v, want 1s", w)
	}
	// Half a second later, half a token: the wait is what is missing.
	if _, w := l.admit("ip", now.Add(500*time.Millisecond)); w != 500*time.Millisecond {
		t.Fatalf("half a token refilled: wait %v, want 500ms", w)
	}
	// At the limiter's rate: 4 failures a second refill a token in 250ms.
	fast := newRateLimiter(4, 1)
	a, _ = fast.admit("ip", now)
	fast.settle(a, true, now)
	if _, w := fast.admit("ip", now); w != 250*time.Millisecond {
		t.Fatalf("at 4 failures a second, one missing: wait %v, want 250ms", w)
	}
	// A bucket with attempts in flight is not forgotten by a sweep,
	// even once full.
	held, _ := l.admit("ip", now.Add(2*time.Second))
	l.settle(attempt{key: "other"}, true, now.Add(time.Hour)) // sweeps
	if n := l.size(); n != 2 {
		t.Fatalf("%d buckets after a sweep with an attempt in flight, want 2", n)
	}
	l.settle(held, false, now.Add(time.Hour))
	l.settle(attempt{key: "other"}, true, now.Add(2*time.Hour))
	if n := l.size(); n != 1 {
		t.Fatalf("%d buckets after a sweep with nothing in flight, want 1", n)
	}

	// Once refilled, a bucket not yet swept holds its key to no number
	// in flight, as if it were forgotten.
	later := now.Add(3 * time.Hour)
	l.settle(attempt{key: "refilled"}, true, later)
	for i := range 5 {
		if _, w := l.admit("refilled", later.Add(5*time.Second)); w != 0 {
			t.Fatalf("attempt %d in flight on a refilled bucket waits %v", i+1, w)
		}
	}

	var off *rateLimiter
	if a, w := off.admit("x", now); w != 0 {
		t.Error("no limit must admit everything")
	} else {
		off.settle(a, true, now)
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

// panickyStore's token lookups panic.
type panickyStore struct{ webhook.Store }

func (panickyStore) TokenGetByHash(context.Context, []byte) (*webhook.Token, error) {
	panic("lookup failed in an unforeseen way")
}

// TestAuthAttemptSettledOnPanic: an attempt admitted against a bucket
// below full is settled even when its lookup panics (net/http recovers
// the handler's panic): otherwise its place in flight is never given
// back, and the address has a failure fewer for as long as hookd runs.
func TestAuthAttemptSettledOnPanic(t *testing.T) {
	c := newClock()
	h := newAPIHarness(t, withLimits(Limits{AuthFailureRate: 1, AuthFailureBurst: 2}, c), func(d *Deps) {
		authn, err := auth.New(context.Background(), auth.Config{}, panickyStore{d.Store}, c.Now, d.Log)
		if err != nil {
			t.Fatal(err)
		}
		d.Auth = authn
	})
	list := "/organization/" + uuid.New().String() + "/webhook"
	// One failure leaves one: the next attempt is counted in flight.
	if st := h.do("not-a-token", "GET", list, "", nil); st != 401 {
		t.Fatalf("a malformed token: %d, want 401", st)
	}
	req, _ := http.NewRequest("GET", h.srv.URL+list, nil)
	req.Header.Set("Authorization", "Token hkd_"+strings.Repeat("x", 43))
	if resp, err := h.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a lookup that panics answered %d, want the connection closed", resp.StatusCode)
	}
	// Long after, the address has its whole burst of failures again.
	c.Advance(time.Hour)
	for i := range 2 {
		if st := h.do("not-a-token", "GET", list, "", nil); st != 401 {
			t.Fatalf("failure %d of a burst of 2 an hour later: %d, want 401", i+1, st)
		}
	}
}
