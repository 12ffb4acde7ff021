package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeStore is a TokenStore over a map, behaving like webhook.Store:
// revoked and unknown tokens are ENotFound.
type fakeStore struct {
	mu       sync.Mutex
	tokens   map[string]*webhook.Token
	touches  []time.Time
	getErr   error
	touchErr error
}

func newFakeStore() *fakeStore { return &fakeStore{tokens: map[string]*webhook.Token{}} }

func (s *fakeStore) add(t *testing.T, org uuid.UUID) (string, *webhook.Token) {
	t.Helper()
	plain, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tok := &webhook.Token{ID: uuid.New(), OrganizationID: org, Name: "ci", Hash: hash, CreatedAt: t0}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[string(hash)] = tok
	return plain, tok
}

func (s *fakeStore) TokenGetByHash(_ context.Context, hash []byte) (*webhook.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, s.getErr
	}
	tok, ok := s.tokens[string(hash)]
	if !ok || !tok.RevokedAt.IsZero() {
		return nil, webhook.Errorf(webhook.ENotFound, "token not found")
	}
	cp := *tok
	return &cp, nil
}

func (s *fakeStore) TokenTouch(_ context.Context, id uuid.UUID, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.touchErr != nil {
		return s.touchErr
	}
	for _, tok := range s.tokens {
		if tok.ID == id {
			tok.LastUsedAt = at
		}
	}
	s.touches = append(s.touches, at)
	return nil
}

func (s *fakeStore) touchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.touches)
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	auth  *Authenticator
	store *fakeStore
	clock *clock
	logs  *syncBuffer
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{store: newFakeStore(), clock: &clock{t: t0}, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(t.Context(), cfg, e.store, e.clock.Now, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.auth = a
	return e
}

// checkJWT asserts that jwt authenticates (want empty) or is refused
// with want in the message and none of the secrets, nor jwt itself.
func checkJWT(t *testing.T, e *env, jwt, want string, secrets ...string) {
	t.Helper()
	_, err := e.auth.Authenticate(t.Context(), "Bearer "+jwt)
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	checkRefused(t, err, want, append(secrets, jwt)...)
}

// checkRefused asserts err is a 401 whose message contains want and none
// of the secrets.
func checkRefused(t *testing.T, err error, want string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("authenticated; want a 401")
	}
	var e *webhook.Error
	if !errors.As(err, &e) || e.Code != webhook.EUnauthorized {
		t.Fatalf("error %v (code %q); want code %q", err, webhook.ErrorCode(err), webhook.EUnauthorized)
	}
	if !strings.Contains(e.Message, want) {
		t.Errorf("message %q does not contain %q", e.Message, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(e.Message, s) {
			t.Errorf("message %q leaks a credential", e.Message)
		}
	}
}

func TestNewToken(t *testing.T) {
	plain, hash, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "hkd_") {
		t.Errorf("token %q does not start with hkd_", plain)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(plain, "hkd_"))
	if err != nil || len(raw) != 32 {
		t.Errorf("token body is not base64url of 32 bytes (%d bytes, %v)", len(raw), err)
	}
	sum := sha256.Sum256([]byte(plain))
	if !bytes.Equal(hash, sum[:]) || !bytes.Equal(HashToken(plain), hash) {
		t.Error("hash is not the SHA-256 of the plain token")
	}
	other, _, _ := NewToken()
	if other == plain {
		t.Error("two tokens are equal")
	}
}

func TestAuthenticateToken(t *testing.T) {
	e := newEnv(t, Config{})
	org := uuid.New()
	plain, tok := e.store.add(t, org)
	revoked, rtok := e.store.add(t, org)
	rtok.RevokedAt = t0
	unknown, _, _ := NewToken()

	t.Run("valid", func(t *testing.T) {
		for _, header := range []string{"Token " + plain, "token " + plain, "TOKEN  " + plain + " "} {
			id, err := e.auth.Authenticate(t.Context(), header)
			if err != nil {
				t.Fatalf("%v", err)
			}
			want := Identity{TokenID: tok.ID, Subject: "token:" + tok.ID.String(), Organizations: []uuid.UUID{org}}
			if id.TokenID != want.TokenID || id.Subject != want.Subject || !slices.Equal(id.Organizations, want.Organizations) {
				t.Errorf("identity %+v, want %+v", id, want)
			}
			if !id.CanAccess(org) || id.CanAccess(uuid.New()) {
				t.Error("CanAccess is wrong")
			}
		}
	})

	for _, tc := range []struct {
		name, header, want string
	}{
		{"empty", "", "missing Authorization header"},
		{"blank", "   ", "missing Authorization header"},
		{"unknown", "Token " + unknown, "unknown or revoked"},
		{"revoked", "Token " + revoked, "unknown or revoked"},
		{"truncated", "Token " + plain[:len(plain)-1], "unknown or revoked"},
		{"no prefix", "Token " + strings.TrimPrefix(plain, "hkd_"), "start with \"hkd_\""},
		{"jwt as token", "Token eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "Bearer"},
		{"no scheme", plain, "no scheme"},
		{"scheme only", "Token", "no credentials"},
		{"unknown scheme", "Basic " + plain, "unsupported Authorization scheme"},
		{"extra words", "Token " + plain + " extra", "malformed"},
		{"api token as bearer", "Bearer " + plain, "JWT authentication is not configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.auth.Authenticate(t.Context(), tc.header)
			secrets := []string{plain, revoked, unknown}
			if f := strings.Fields(tc.header); len(f) > 1 {
				secrets = append(secrets, tc.header, f[1])
			}
			checkRefused(t, err, tc.want, secrets...)
		})
	}

	t.Run("store failure is internal", func(t *testing.T) {
		s := newFakeStore()
		s.getErr = errors.New("database is locked")
		a, err := New(t.Context(), Config{}, s, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Authenticate(t.Context(), "Token "+plain)
		if err == nil || webhook.ErrorCode(err) != webhook.EInternal {
			t.Fatalf("error %v (code %q), want an internal error", err, webhook.ErrorCode(err))
		}
	})
	if strings.Contains(e.logs.String(), plain) {
		t.Error("logs contain a token")
	}
}

// A token read from the store is trusted for tokenCacheTTL: intake does
// not pay a database read per request, and a revocation (made by another
// process, in the store) takes effect within that time.
func TestTokenRevocationWithinCacheTTL(t *testing.T) {
	e := newEnv(t, Config{})
	plain, tok := e.store.add(t, uuid.New())
	header := "Token " + plain
	if _, err := e.auth.Authenticate(t.Context(), header); err != nil {
		t.Fatal(err)
	}
	e.store.mu.Lock()
	tok.RevokedAt = t0
	e.store.mu.Unlock()

	e.clock.Advance(tokenCacheTTL / 2)
	if _, err := e.auth.Authenticate(t.Context(), header); err != nil {
		t.Fatalf("within the cache TTL: %v", err)
	}
	e.clock.Advance(tokenCacheTTL / 2)
	_, err := e.auth.Authenticate(t.Context(), header)
	checkRefused(t, err, "unknown or revoked", plain)

	// Unknown tokens are never cached: a token created after a refused
	// attempt works at once.
	e.store.mu.Lock()
	tok.RevokedAt = time.Time{}
	e.store.mu.Unlock()
	if _, err := e.auth.Authenticate(t.Context(), header); err != nil {
		t.Fatalf("after un-revoking: %v", err)
	}
}

func TestTokenTouchThrottled(t *testing.T) {
	e := newEnv(t, Config{})
	plain, _ := e.store.add(t, uuid.New())
	header := "Token " + plain

	for i, step := range []struct {
		advance     time.Duration
		wantTouches int
	}{
		{0, 1},                // first use is recorded
		{0, 1},                // same instant: not again
		{30 * time.Second, 1}, // within the minute
		{29 * time.Second, 1}, // 59s after the touch
		{time.Second, 2},      // a minute after: recorded
		{10 * time.Second, 2}, // within the minute again
		{time.Hour, 3},        // long after
		{time.Millisecond, 3}, // a hot token...
		{59 * time.Second, 3}, // ...59.001s after its touch
		{time.Second, 4},      // 60.001s after: recorded
		{0, 4},                // stays throttled
		{59 * time.Second, 4}, // stays throttled
		{100 * time.Second, 5},
	} {
		e.clock.Advance(step.advance)
		if _, err := e.auth.Authenticate(t.Context(), header); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := e.store.touchCount(); got != step.wantTouches {
			t.Fatalf("step %d: %d touches, want %d", i, got, step.wantTouches)
		}
	}

	t.Run("recent LastUsedAt from another node", func(t *testing.T) {
		e := newEnv(t, Config{})
		plain, tok := e.store.add(t, uuid.New())
		tok.LastUsedAt = t0.Add(-10 * time.Second)
		if _, err := e.auth.Authenticate(t.Context(), "Token "+plain); err != nil {
			t.Fatal(err)
		}
		if n := e.store.touchCount(); n != 0 {
			t.Errorf("%d touches, want 0", n)
		}
		e.clock.Advance(50 * time.Second)
		if _, err := e.auth.Authenticate(t.Context(), "Token "+plain); err != nil {
			t.Fatal(err)
		}
		if n := e.store.touchCount(); n != 1 {
			t.Errorf("%d touches, want 1", n)
		}
	})

	t.Run("concurrent requests touch once", func(t *testing.T) {
		e := newEnv(t, Config{})
		plain, _ := e.store.add(t, uuid.New())
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				if _, err := e.auth.Authenticate(context.Background(), "Token "+plain); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := e.store.touchCount(); n != 1 {
			t.Errorf("%d touches, want 1", n)
		}
	})

	t.Run("failed touch is logged at debug, not returned", func(t *testing.T) {
		e := newEnv(t, Config{})
		plain, _ := e.store.add(t, uuid.New())
		e.store.touchErr = errors.New("disk full")
		if _, err := e.auth.Authenticate(t.Context(), "Token "+plain); err != nil {
			t.Fatalf("a failed touch failed the request: %v", err)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "level=DEBUG") || !strings.Contains(logs, "disk full") {
			t.Errorf("touch failure not logged at debug: %s", logs)
		}
		if strings.Contains(logs, plain) || strings.Contains(logs, strings.TrimPrefix(plain, "hkd_")) {
			t.Error("logs contain the token")
		}
	})
}

// keys for JWT tests, generated once.
var testKeys = sync.OnceValue(func() (k struct {
	rsa, rsaOther *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
},
) {
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	return k
})

var hsSecret = []byte("0123456789abcdef0123456789abcdef-hs256-test-secret")

// claims returns valid claims for the default test config, changed by mod.
func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":           "user-42",
		"iss":           "https://id.example.com",
		"aud":           "hookd",
		"exp":           t0.Add(time.Hour).Unix(),
		"iat":           t0.Unix(),
		"organizations": []string{orgA.String()},
	}
	if mod != nil {
		mod(c)
	}
	return c
}

var (
	orgA = uuid.MustParse("0195a4c8-7c4e-7a41-9a0b-8c7d2e1f0a11")
	orgB = uuid.MustParse("0195a4c8-7c4e-7a41-9a0b-8c7d2e1f0a22")
)

func sign(t *testing.T, method jwt.SigningMethod, kid string, c jwt.MapClaims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func TestAuthenticateJWTHS256(t *testing.T) {
	e := newEnv(t, Config{HS256Secret: hsSecret, Issuer: "https://id.example.com", Audience: "hookd"})
	hs := func(mod func(jwt.MapClaims)) string {
		return sign(t, jwt.SigningMethodHS256, "", claims(mod), hsSecret)
	}
	none := sign(t, jwt.SigningMethodNone, "", claims(nil), jwt.UnsafeAllowNoneSignatureType)

	for _, tc := range []struct {
		name    string
		header  string
		want    string // substring of the error; empty when it must succeed
		wantSub string
	}{
		{name: "good", header: "Bearer " + hs(nil), wantSub: "user-42"},
		{name: "lowercase scheme", header: "bearer " + hs(nil), wantSub: "user-42"},
		{name: "expired within leeway", header: "Bearer " + hs(func(c jwt.MapClaims) { c["exp"] = t0.Add(-20 * time.Second).Unix() }), wantSub: "user-42"},
		{name: "expired beyond leeway", header: "Bearer " + hs(func(c jwt.MapClaims) { c["exp"] = t0.Add(-31 * time.Second).Unix() }), want: "the JWT has expired"},
		{name: "exp missing", header: "Bearer " + hs(func(c jwt.MapClaims) { delete(c, "exp") }), want: "no exp claim"},
		{name: "exp a string", header: "Bearer " + hs(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }), want: "wrong type"},
		{name: "not valid yet", header: "Bearer " + hs(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Hour).Unix() }), want: "not valid yet"},
		{name: "wrong iss", header: "Bearer " + hs(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" }), want: `iss claim must be "https://id.example.com"`},
		{name: "iss missing", header: "Bearer " + hs(func(c jwt.MapClaims) { delete(c, "iss") }), want: "iss claim must be"},
		{name: "wrong aud", header: "Bearer " + hs(func(c jwt.MapClaims) { c["aud"] = []string{"other", "another"} }), want: `aud claim must include "hookd"`},
		{name: "aud missing", header: "Bearer " + hs(func(c jwt.MapClaims) { delete(c, "aud") }), want: "aud claim must include"},
		{name: "aud in a list", header: "Bearer " + hs(func(c jwt.MapClaims) { c["aud"] = []string{"other", "hookd"} }), wantSub: "user-42"},
		{name: "alg none", header: "Bearer " + none, want: "algorithm (alg) is not accepted: this server accepts HS256"},
		{name: "wrong secret", header: "Bearer " + sign(t, jwt.SigningMethodHS256, "", claims(nil), []byte("another-secret-another-secret-xx")), want: "signature is invalid"},
		{name: "HS512", header: "Bearer " + sign(t, jwt.SigningMethodHS512, "", claims(nil), hsSecret), want: "not accepted"},
		{name: "RS256 without JWKS", header: "Bearer " + sign(t, jwt.SigningMethodRS256, "k1", claims(nil), testKeys().rsa), want: "not accepted"},
		{name: "tampered payload", header: "Bearer " + tamper(t, hs(nil)), want: "signature is invalid"},
		{name: "malformed", header: "Bearer not-a-jwt", want: "malformed"},
		{name: "two segments", header: "Bearer eyJhbGciOiJIUzI1NiJ9.e30", want: "malformed"},
		{name: "api token as bearer", header: "Bearer hkd_abc", want: "Authorization: Token"},
		{name: "sub missing", header: "Bearer " + hs(func(c jwt.MapClaims) { delete(c, "sub") }), want: "must have a sub claim"},
		{name: "sub empty", header: "Bearer " + hs(func(c jwt.MapClaims) { c["sub"] = "" }), want: "must have a sub claim"},
		{name: "sub a number", header: "Bearer " + hs(func(c jwt.MapClaims) { c["sub"] = 42 }), want: "must have a sub claim"},
		{name: "sub an object", header: "Bearer " + hs(func(c jwt.MapClaims) { c["sub"] = map[string]any{"id": "x"} }), want: "must have a sub claim"},
		{name: "sub with NUL", header: "Bearer " + hs(func(c jwt.MapClaims) { c["sub"] = "user\x00admin" }), want: "NUL"},
		{name: "unknown crit", header: "Bearer " + withHeader(t, map[string]any{"crit": []string{"urn:example:must-understand"}, "urn:example:must-understand": true}), want: "crit header"},
		{name: "empty crit", header: "Bearer " + withHeader(t, map[string]any{"crit": []string{}}), want: "crit header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := e.auth.Authenticate(t.Context(), tc.header)
			if tc.want != "" {
				checkRefused(t, err, tc.want, tc.header, strings.TrimPrefix(tc.header, "Bearer "), string(hsSecret))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Subject != tc.wantSub || id.TokenID != uuid.Nil || !slices.Equal(id.Organizations, []uuid.UUID{orgA}) {
				t.Errorf("identity %+v", id)
			}
		})
	}
	if logs := e.logs.String(); strings.Contains(logs, hs(nil)) || strings.Contains(logs, string(hsSecret)) {
		t.Error("logs contain a JWT or the secret")
	}
}

// withHeader returns a valid HS256 JWT whose header has extra fields.
func withHeader(t *testing.T, extra map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil))
	for k, v := range extra {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(hsSecret)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

// tamper changes the JWT's payload and keeps its signature.
func tamper(t *testing.T, s string) string {
	t.Helper()
	parts := strings.Split(s, ".")
	payload, _ := json.Marshal(claims(func(c jwt.MapClaims) { c["organizations"] = []string{orgB.String()} }))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func TestOrganizationsClaim(t *testing.T) {
	for _, tc := range []struct {
		name  string
		claim string // Config.OrganizationsClaim
		set   func(jwt.MapClaims)
		want  []uuid.UUID
		err   string
	}{
		{name: "missing", set: func(c jwt.MapClaims) { delete(c, "organizations") }, want: nil},
		{name: "null", set: func(c jwt.MapClaims) { c["organizations"] = nil }, want: nil},
		{name: "empty", set: func(c jwt.MapClaims) { c["organizations"] = []string{} }, want: nil},
		{name: "two", set: func(c jwt.MapClaims) { c["organizations"] = []string{orgA.String(), orgB.String()} }, want: []uuid.UUID{orgA, orgB}},
		{
			name: "invalid entries ignored",
			set: func(c jwt.MapClaims) {
				c["organizations"] = []any{"admins", orgB.String(), 42, nil, uuid.Nil.String(), strings.ToUpper(orgA.String()), orgB.String()}
			},
			want: []uuid.UUID{orgB, orgA},
		},
		{name: "not an array", set: func(c jwt.MapClaims) { c["organizations"] = orgA.String() }, err: `"organizations" claim must be an array`},
		{name: "object", set: func(c jwt.MapClaims) { c["organizations"] = map[string]any{"id": orgA.String()} }, err: "must be an array"},
		{
			name:  "custom claim name",
			claim: "https://hookd.dev/orgs",
			set:   func(c jwt.MapClaims) { c["https://hookd.dev/orgs"] = []string{orgB.String()} },
			want:  []uuid.UUID{orgB},
		},
		{
			name:  "custom claim name ignores the default",
			claim: "groups",
			set:   func(c jwt.MapClaims) {},
			want:  nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Config{HS256Secret: hsSecret, OrganizationsClaim: tc.claim})
			jwtString := sign(t, jwt.SigningMethodHS256, "", claims(tc.set), hsSecret)
			id, err := e.auth.Authenticate(t.Context(), "Bearer "+jwtString)
			if tc.err != "" {
				checkRefused(t, err, tc.err, jwtString)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(id.Organizations, tc.want) {
				t.Errorf("organizations %v, want %v", id.Organizations, tc.want)
			}
			if id.CanAccess(uuid.Nil) {
				t.Error("CanAccess(uuid.Nil) is true")
			}
		})
	}
}

// jwksServer serves a JWKS and counts the fetches.
type jwksServer struct {
	*httptest.Server
	fetches  atomic.Int32
	failNext atomic.Int32 // answer this many fetches with 503
	reset    atomic.Bool  // while set, reset each connection unanswered
	mu       sync.Mutex
	body     []byte
	// hold, when set, is called before each fetch is answered.
	hold func()
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	k := testKeys()
	var set jwkset.JWKSMarshal
	for _, key := range []struct {
		pub any
		kid string
		alg jwkset.ALG
	}{
		{&k.rsa.PublicKey, "rsa-1", jwkset.AlgRS256},
		{&k.ec.PublicKey, "ec-1", jwkset.AlgES256},
	} {
		jwk, err := jwkset.NewJWKFromKey(key.pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: key.kid, ALG: key.alg, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	s := &jwksServer{}
	var err error
	if s.body, err = json.Marshal(set); err != nil {
		t.Fatal(err)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.reset.Load() {
			// A linger of 0 makes Close send a TCP RST, as a load
			// balancer dropping the connection does.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
			return
		}
		if s.failNext.Add(-1) >= 0 {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		body, hold := s.body, s.hold
		s.mu.Unlock()
		if hold != nil {
			hold()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// rotate serves a JWKS holding only the given RS256 key from now on.
func (s *jwksServer) rotate(t *testing.T, kid string, pub any) {
	t.Helper()
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		t.Fatal(err)
	}
	s.publish(body)
}

// publish makes body what the next fetches are answered with.
func (s *jwksServer) publish(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func TestAuthenticateJWKS(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t)
	e := newEnv(t, Config{JWKSURL: srv.URL, Issuer: "https://id.example.com", Audience: "hookd", OrganizationsClaim: "orgs"})
	orgs := func(c jwt.MapClaims) { c["orgs"] = []string{orgB.String()} }

	pubDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	jwksBody := srv.body

	for _, tc := range []struct {
		name string
		jwt  string
		want string // substring of the error; empty when it must succeed
	}{
		{name: "RS256", jwt: sign(t, jwt.SigningMethodRS256, "rsa-1", claims(orgs), k.rsa)},
		{name: "ES256", jwt: sign(t, jwt.SigningMethodES256, "ec-1", claims(orgs), k.ec)},
		{name: "no kid tries every key", jwt: sign(t, jwt.SigningMethodES256, "", claims(orgs), k.ec)},
		{name: "RS256 by another key", jwt: sign(t, jwt.SigningMethodRS256, "rsa-1", claims(orgs), k.rsaOther), want: "signature is invalid"},
		{name: "alg does not match the key's", jwt: sign(t, jwt.SigningMethodRS384, "rsa-1", claims(orgs), k.rsa), want: "could not be verified"},
		{name: "ES256 under the RSA kid", jwt: sign(t, jwt.SigningMethodES256, "rsa-1", claims(orgs), k.ec), want: "could not be verified"},
		{name: "expired", jwt: sign(t, jwt.SigningMethodRS256, "rsa-1", claims(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Hour).Unix() }), k.rsa), want: "expired"},
		{name: "wrong aud", jwt: sign(t, jwt.SigningMethodES256, "ec-1", claims(func(c jwt.MapClaims) { c["aud"] = "other" }), k.ec), want: "aud claim"},
		{name: "alg none", jwt: sign(t, jwt.SigningMethodNone, "rsa-1", claims(orgs), jwt.UnsafeAllowNoneSignatureType), want: "not accepted"},
		// Algorithm confusion: HS256 "signed" with the public key, which
		// a verifier that trusts the token's alg would use as the secret.
		{name: "HS256 with RSA public key PEM", jwt: sign(t, jwt.SigningMethodHS256, "rsa-1", claims(orgs), pubPEM), want: "not accepted: this server accepts RS256"},
		{name: "HS256 with RSA public key PKCS1", jwt: sign(t, jwt.SigningMethodHS256, "rsa-1", claims(orgs), pkcs1PEM), want: "not accepted"},
		{name: "HS256 with RSA public key DER", jwt: sign(t, jwt.SigningMethodHS256, "rsa-1", claims(orgs), pubDER), want: "not accepted"},
		{name: "HS256 with the JWKS document", jwt: sign(t, jwt.SigningMethodHS256, "", claims(orgs), jwksBody), want: "not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := e.auth.Authenticate(t.Context(), "Bearer "+tc.jwt)
			if tc.want != "" {
				checkRefused(t, err, tc.want, tc.jwt)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Subject != "user-42" || !slices.Equal(id.Organizations, []uuid.UUID{orgB}) {
				t.Errorf("identity %+v", id)
			}
		})
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches for known keys, want 1 (cached)", n)
	}

	t.Run("unknown kids refresh at most once every 5s", func(t *testing.T) {
		before := srv.fetches.Load()
		for i := range 3 {
			token := sign(t, jwt.SigningMethodRS256, "rotated-key", claims(orgs), k.rsaOther)
			// Requests that cannot wait for the next allowed fetch do not
			// get one.
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			_, err := e.auth.Authenticate(ctx, "Bearer "+token)
			cancel()
			checkRefused(t, err, "kid", token)
			if got, want := srv.fetches.Load()-before, int32(1); got != want {
				t.Fatalf("after unknown kid %d: %d refreshes, want %d", i+1, got, want)
			}
		}
	})
	if logs := e.logs.String(); strings.Contains(logs, "eyJ") {
		t.Errorf("logs contain a JWT: %s", logs)
	}
}

func TestJWKSFirstFetchFails(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t)
	srv.failNext.Store(1)
	e := newEnv(t, Config{JWKSURL: srv.URL})
	if logs := e.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "JWKS") {
		t.Errorf("failed first fetch not logged as a warning: %s", logs)
	}
	// The first JWT naming a key not loaded yet fetches the JWKS again.
	token := sign(t, jwt.SigningMethodRS256, "rsa-1", claims(nil), k.rsa)
	id, err := e.auth.Authenticate(t.Context(), "Bearer "+token)
	if err != nil {
		t.Fatalf("keys did not load on retry: %v", err)
	}
	if !slices.Equal(id.Organizations, []uuid.UUID{orgA}) {
		t.Errorf("organizations %v", id.Organizations)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}

// A JWKS URL may carry a credential (a password, a query parameter such
// as an API gateway's key). The warning a failed fetch logs masks it, in
// the URL and in the error alike: Go's HTTP client masks only the
// password in the URL its error quotes, not the query.
func TestJWKSFetchErrorMasksURLCredentials(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: the fetch fails to connect
	e := newEnv(t, Config{JWKSURL: "http://jwks-user:jwks-password@" + addr + "/jwks?access_token=jwks-query-secret"})
	logs := e.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "connection refused") {
		t.Fatalf("failed fetch not logged with its cause: %s", logs)
	}
	for _, secret := range []string{"jwks-password", "jwks-query-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the JWKS URL's credential %q: %s", secret, logs)
		}
	}
}

// A rotation: the identity provider adds a key and drops the old one.
// The first JWT with the new key id fetches the JWKS at once, even right
// after unauthenticated JWTs with made-up key ids used up a fetch, and
// even if the fetch just before failed; the dropped key stops working.
func TestJWKSRotation(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t)
	e := newEnv(t, Config{JWKSURL: srv.URL})
	auth := func(kid string, key any) error {
		t.Helper()
		_, err := e.auth.Authenticate(t.Context(), "Bearer "+sign(t, jwt.SigningMethodRS256, kid, claims(nil), key))
		return err
	}
	if err := auth("rsa-1", k.rsa); err != nil {
		t.Fatal(err)
	}
	if err := auth("made-up", k.rsaOther); err == nil {
		t.Fatal("a made-up kid was accepted")
	}
	srv.rotate(t, "rsa-2", &k.rsaOther.PublicKey)
	srv.failNext.Store(1)
	start := time.Now()
	if err := auth("rsa-2", k.rsaOther); err == nil {
		t.Fatal("accepted a key whose fetch failed")
	}
	if err := auth("rsa-2", k.rsaOther); err != nil {
		t.Fatalf("the rotated key was refused after the failed fetch: %v", err)
	}
	t.Logf("the rotated key was loaded %s after its first use, past a made-up kid's fetch and a failed one", time.Since(start).Round(time.Millisecond))
	// Without waiting for one more fetch: the last one dropped it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := e.auth.Authenticate(ctx, "Bearer "+sign(t, jwt.SigningMethodRS256, "rsa-1", claims(nil), k.rsa))
	if err == nil || !strings.Contains(err.Error(), "kid") {
		t.Fatalf("the key dropped from the JWKS still works: %v", err)
	}
}

// A client that sends a JWT with a new key id and hangs up while the JWKS
// is being fetched for it must not waste that fetch: the next JWT with
// the key is served by it, not refused until the next allowed fetch. If
// the client's leaving cancelled the fetch, one request with a made-up
// key id every 5 s, each abandoned at once, would keep every new key out
// until the periodic refresh.
func TestJWKSFetchOutlivesAbandonedRequest(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t)
	e := newEnv(t, Config{JWKSURL: srv.URL})
	srv.rotate(t, "rsa-2", &k.rsaOther.PublicKey)
	token := "Bearer " + sign(t, jwt.SigningMethodRS256, "rsa-2", claims(nil), k.rsaOther)

	ctx, hangUp := context.WithCancel(t.Context())
	fetching, answer := make(chan struct{}), make(chan struct{})
	srv.mu.Lock()
	srv.hold = func() {
		close(fetching)
		<-answer
	}
	srv.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = e.auth.Authenticate(ctx, token)
	}()
	<-fetching
	hangUp()
	time.Sleep(50 * time.Millisecond) // let a cancelled fetch give up before the answer
	srv.mu.Lock()
	srv.hold = nil
	srv.mu.Unlock()
	close(answer)
	<-done

	// Shorter than the wait for another fetch: only the first can serve it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := e.auth.Authenticate(ctx, token); err != nil {
		t.Fatalf("the key fetched for an abandoned request was not kept: %v", err)
	}
}

func TestHS256AndJWKS(t *testing.T) {
	k := testKeys()
	srv := newJWKSServer(t)
	e := newEnv(t, Config{HS256Secret: hsSecret, JWKSURL: srv.URL})
	pubDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, jwt, want string
	}{
		{name: "HS256", jwt: sign(t, jwt.SigningMethodHS256, "", claims(nil), hsSecret)},
		{name: "RS256", jwt: sign(t, jwt.SigningMethodRS256, "rsa-1", claims(nil), k.rsa)},
		{name: "HS256 with RSA public key", jwt: sign(t, jwt.SigningMethodHS256, "rsa-1", claims(nil), pubDER), want: "signature is invalid"},
		{name: "RS256 with a kid that matches nothing", jwt: sign(t, jwt.SigningMethodRS256, "nope", claims(nil), k.rsa), want: "kid"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkJWT(t, e, tc.jwt, tc.want, string(hsSecret)) })
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"short secret", Config{HS256Secret: []byte("too-short")}, "at least 32 bytes"},
		{"negative leeway", Config{HS256Secret: hsSecret, Leeway: -time.Second}, "leeway"},
		{"relative JWKS URL", Config{JWKSURL: "/jwks.json"}, "absolute"},
		{"issuer without a key", Config{Issuer: "https://id.example.com"}, "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(t.Context(), tc.cfg, newFakeStore(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "too-short") {
				t.Error("error contains the secret")
			}
		})
	}
}

func TestIdentityContext(t *testing.T) {
	if _, ok := FromContext(t.Context()); ok {
		t.Error("identity in an empty context")
	}
	id := &Identity{Subject: "token:x", Organizations: []uuid.UUID{orgA}}
	got, ok := FromContext(NewContext(t.Context(), id))
	if !ok || got != id {
		t.Errorf("FromContext = %v, %v", got, ok)
	}
	var none *Identity
	if none.CanAccess(orgA) {
		t.Error("nil identity can access")
	}
}

func TestIdentityKey(t *testing.T) {
	tok := uuid.New()
	keys := map[string]*Identity{
		"token":                {TokenID: tok, Subject: "token:" + tok.String()},
		"jwt a/u1":             {Issuer: "https://a.example", Subject: "u1"},
		"jwt b/u1":             {Issuer: "https://b.example", Subject: "u1"},
		"jwt a/u2":             {Issuer: "https://a.example", Subject: "u2"},
		"colon in the issuer":  {Issuer: "x:", Subject: "y"},
		"colon in the subject": {Issuer: "x", Subject: ":y"},
		"subject like a token": {Subject: "token:" + tok.String()},
	}
	seen := map[string]string{}
	for name, id := range keys {
		k := id.Key()
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s share the key %q", name, other, k)
		}
		seen[k] = name
	}
	same := &Identity{Issuer: "https://a.example", Subject: "u1", Organizations: []uuid.UUID{orgA}}
	if same.Key() != keys["jwt a/u1"].Key() {
		t.Error("two JWTs of one issuer and subject have different keys")
	}
}

// A JWKS may publish keys for encryption beside its signing keys (use
// "enc": Keycloak's realms do). A signature is only checked with a key
// meant for signatures (use "sig", or none given), and one pinned to an
// algorithm only for it, with a kid or without one.
func TestJWKSKeyUseAndAlg(t *testing.T) {
	k := testKeys()
	var set jwkset.JWKSMarshal
	for _, key := range []struct {
		pub any
		kid string
		alg jwkset.ALG
		use jwkset.USE
	}{
		{&k.rsa.PublicKey, "sig-1", jwkset.AlgRS256, jwkset.UseSig},
		{&k.rsaOther.PublicKey, "enc-1", "", jwkset.UseEnc},
		{&k.ec.PublicKey, "bare-1", "", ""}, // use and alg are optional (RFC 7517 §4.2, §4.4)
	} {
		jwk, err := jwkset.NewJWKFromKey(key.pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: key.kid, ALG: key.alg, USE: key.use}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, Config{JWKSURL: srv.URL})

	for _, tc := range []struct {
		name, jwt, want string
	}{
		{name: "signing key", jwt: sign(t, jwt.SigningMethodRS256, "sig-1", claims(nil), k.rsa)},
		{name: "signing key, no kid", jwt: sign(t, jwt.SigningMethodRS256, "", claims(nil), k.rsa)},
		{name: "key with no use nor alg", jwt: sign(t, jwt.SigningMethodES256, "bare-1", claims(nil), k.ec)},
		{name: "key with no use nor alg, no kid", jwt: sign(t, jwt.SigningMethodES256, "", claims(nil), k.ec)},
		{name: "encryption key", jwt: sign(t, jwt.SigningMethodRS256, "enc-1", claims(nil), k.rsaOther), want: "could not be verified"},
		// Checked with the signing key alone, which did not sign it.
		{name: "encryption key, no kid", jwt: sign(t, jwt.SigningMethodRS256, "", claims(nil), k.rsaOther), want: "signature is invalid"},
		{name: "another alg than the key's", jwt: sign(t, jwt.SigningMethodPS256, "sig-1", claims(nil), k.rsa), want: "could not be verified"},
		// Checked with the key of no alg alone, an EC key.
		{name: "another alg than the key's, no kid", jwt: sign(t, jwt.SigningMethodPS256, "", claims(nil), k.rsa), want: "signature is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkJWT(t, e, tc.jwt, tc.want) })
	}
}

// An identity provider may publish, beside its good keys, one that
// jwkset cannot parse: a modulus that is not base64url, a point off its
// curve, a field of the wrong JSON type. jwkset refused the whole set for
// it, and a refused fetch keeps the keys loaded before, so a key rotated
// out kept verifying and a new one never loaded until a restart. The
// broken key is skipped and logged, without the URL's query, and the
// rest replace the keys loaded. A kty jwkset does not know was already
// skipped in silence, and still is.
func TestJWKSRefreshSkipsMalformedKeys(t *testing.T) {
	k := testKeys()
	rotated, err := jwkset.NewJWKFromKey(&k.rsaOther.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "rsa-2", ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
	if err != nil {
		t.Fatal(err)
	}
	rotatedJSON, err := json.Marshal(rotated.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key string
		logged    bool
	}{
		{name: "RSA modulus not base64url", key: `{"kty":"RSA","kid":"bad-1","use":"sig","n":"not*base64url","e":"AQAB"}`, logged: true},
		{name: "RSA without an exponent", key: `{"kty":"RSA","kid":"bad-1","use":"sig","n":"AQAB"}`, logged: true},
		{name: "EC point off its curve", key: `{"kty":"EC","kid":"bad-1","use":"sig","crv":"P-256","x":"AQ","y":"AQ"}`, logged: true},
		{name: "kid not a string", key: `{"kty":"RSA","kid":7,"n":"AQAB","e":"AQAB"}`, logged: true},
		{name: "not an object", key: `"bad-1"`, logged: true},
		{name: "unknown kty", key: `{"kty":"XYZ","kid":"bad-1"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t)
			e := newEnv(t, Config{JWKSURL: srv.URL + "/jwks?access_token=jwks-query-secret"})
			auth := func(ctx context.Context, kid string, key any) error {
				t.Helper()
				_, err := e.auth.Authenticate(ctx, "Bearer "+sign(t, jwt.SigningMethodRS256, kid, claims(nil), key))
				return err
			}
			if err := auth(t.Context(), "rsa-1", k.rsa); err != nil {
				t.Fatal(err)
			}
			srv.publish([]byte(`{"keys":[` + tc.key + `,` + string(rotatedJSON) + `]}`))

			if err := auth(t.Context(), "rsa-2", k.rsaOther); err != nil {
				t.Errorf("the new key was refused beside a malformed one: %v", err)
			}
			// Without waiting for one more fetch: the last one dropped it.
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if err := auth(ctx, "rsa-1", k.rsa); err == nil || !strings.Contains(err.Error(), "kid") {
				t.Errorf("the key dropped from the JWKS still works beside a malformed one: %v", err)
			}
			logs := e.logs.String()
			if got := strings.Count(logs, "keys that cannot be parsed"); tc.logged && got != 1 || !tc.logged && got != 0 {
				t.Errorf("%d lines about skipped keys, want logged=%v: %s", got, tc.logged, logs)
			}
			if strings.Contains(logs, "jwks-query-secret") {
				t.Errorf("logs contain the JWKS URL's query: %s", logs)
			}
		})
	}
}

// A fetch that finds no usable JWK Set is a failed fetch, as a 503 is:
// the keys loaded before stay, rather than being replaced by none. So
// for a document that is not a JWK Set at all (a proxy's error page
// answered 200), one whose every key is malformed, and one past
// maxJWKSBody, which is not read whole.
func TestJWKSFailedFetchKeepsKeys(t *testing.T) {
	tooLarge := append([]byte(`{"keys":[],"padding":"`), bytes.Repeat([]byte("x"), maxJWKSBody)...)
	for _, tc := range []struct {
		name, logged string
		body         []byte
	}{
		{"unreadable document", "fetching the JWKS failed", []byte("<html>Service temporarily unavailable</html>")},
		{"every key malformed", "fetching the JWKS failed",
			[]byte(`{"keys":[{"kty":"RSA","kid":"rsa-2","use":"sig","n":"not*base64url","e":"AQAB"}]}`)},
		{"too large", "larger than 1048576 bytes", append(tooLarge, `"}`...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := testKeys()
			srv := newJWKSServer(t)
			e := newEnv(t, Config{JWKSURL: srv.URL})
			srv.publish(tc.body)
			// A kid not loaded fetches the JWKS at once.
			checkJWT(t, e, sign(t, jwt.SigningMethodRS256, "rsa-2", claims(nil), k.rsaOther), "kid")
			if n := srv.fetches.Load(); n != 2 {
				t.Fatalf("%d fetches, want 2", n)
			}
			checkJWT(t, e, sign(t, jwt.SigningMethodRS256, "rsa-1", claims(nil), k.rsa), "")
			if logs := e.logs.String(); !strings.Contains(logs, tc.logged) {
				t.Errorf("the fetch was not logged as failed (%q): %s", tc.logged, logs)
			}
		})
	}
}

// An identity provider that keeps publishing a broken key is warned about
// once, not at every refresh: every 5 minutes, and up to every 5 s while
// JWTs name kids not loaded, the same line said nothing new. A different
// set of broken keys is warned about again, and their going is said
// once, at Info.
func TestJWKSSkippedKeysWarnedWhenTheyChange(t *testing.T) {
	const (
		brokenA = `{"kty":"RSA","kid":"bad-a","use":"sig","n":"not*base64url","e":"AQAB"}`
		brokenB = `{"kty":"EC","kid":"bad-b","use":"sig","crv":"P-256","x":"AQ","y":"AQ"}`
	)
	srv := newJWKSServer(t)
	var good struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(srv.body, &good); err != nil {
		t.Fatal(err)
	}
	// serve publishes the good keys after the broken ones given, and
	// returns once a fetch has been answered with them: the refresh
	// goroutine fetches one at a time, so a fetch that starts after the
	// next one to start has been read, warned about and loaded.
	serve := func(broken ...string) {
		t.Helper()
		keys := slices.Clone(good.Keys)
		for _, b := range broken {
			keys = append(keys, json.RawMessage(b))
		}
		body, err := json.Marshal(struct {
			Keys []json.RawMessage `json:"keys"`
		}{keys})
		if err != nil {
			t.Fatal(err)
		}
		srv.publish(body)
		after := srv.fetches.Load() + 2
		for deadline := time.Now().Add(5 * time.Second); srv.fetches.Load() < after; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no JWKS fetch in 5 s (%d fetches)", srv.fetches.Load())
			}
		}
	}
	const (
		warned = `level=WARN msg="auth: the JWKS holds keys that cannot be parsed`
		gone   = `level=INFO msg="auth: the JWKS keys that could not be parsed are gone`
	)
	e := newEnv(t, Config{JWKSURL: srv.URL + "/jwks?access_token=jwks-query-secret", JWKSRefresh: 10 * time.Millisecond})
	for _, step := range []struct {
		name         string
		broken       []string
		warned, gone int
	}{
		{"one broken key", []string{brokenA}, 1, 0},
		{"the same broken key again", []string{brokenA}, 1, 0},
		{"another broken key", []string{brokenB}, 2, 0},
		{"one more broken key", []string{brokenA, brokenB}, 3, 0},
		{"the same broken keys in another order", []string{brokenB, brokenA}, 3, 0},
		{"no broken key", nil, 3, 1},
		{"still no broken key", nil, 3, 1},
		{"the first broken key back", []string{brokenA}, 4, 1},
	} {
		serve(step.broken...)
		logs := e.logs.String()
		if got := strings.Count(logs, warned); got != step.warned {
			t.Errorf("%s: %d warnings about skipped keys, want %d: %s", step.name, got, step.warned, logs)
		}
		if got := strings.Count(logs, gone); got != step.gone {
			t.Errorf("%s: %d lines saying the skipped keys are gone, want %d: %s", step.name, got, step.gone, logs)
		}
	}
	logs := e.logs.String()
	for _, secret := range []string{"jwks-query-secret", "not*base64url"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q: %s", secret, logs)
		}
	}
}

// A JWKS that cannot be fetched is warned about when fetching starts
// failing and when its error changes, not at every refresh: every 5
// minutes, and up to every 5 s while JWTs name kids not loaded, the same
// line said nothing new and buried the ones that did. That fetching
// works again is said once, at Info. A failure that lasts is warned
// about again every hour, so that it is in the logs an operator reads
// however far back they look. A connection reset is one error, though
// each names another local port.
func TestJWKSFetchFailureWarnedWhenItChanges(t *testing.T) {
	srv := newJWKSServer(t)
	// A GET reset on a connection kept alive is sent again on a new one,
	// a second request for one fetch, and counting requests would no
	// longer count fetches.
	srv.Config.SetKeepAlivesEnabled(false)
	good := srv.body
	e := newEnv(t, Config{JWKSURL: srv.URL + "/jwks?access_token=jwks-query-secret", JWKSRefresh: 10 * time.Millisecond})
	const (
		warned = `level=WARN msg="auth: fetching the JWKS failed`
		works  = `level=INFO msg="auth: fetching the JWKS works again`
	)
	for _, step := range []struct {
		name          string
		change        func()
		warned, works int
	}{
		{"served", func() {}, 0, 0},
		{"503", func() { srv.failNext.Store(1 << 30) }, 1, 0},
		{"503 again", func() {}, 1, 0},
		// Published before the 503s stop, so that no fetch between
		// finds the good keys.
		{"not a JWK Set", func() { srv.publish([]byte("<html>Bad gateway</html>")); srv.failNext.Store(0) }, 2, 0},
		{"not a JWK Set again", func() {}, 2, 0},
		{"59 minutes on", func() { e.clock.Advance(59 * time.Minute) }, 2, 0},
		{"an hour on", func() { e.clock.Advance(time.Minute) }, 3, 0},
		{"an hour and a minute on", func() { e.clock.Advance(time.Minute) }, 3, 0},
		{"served again", func() { srv.publish(good) }, 3, 1},
		{"still served", func() {}, 3, 1},
		{"connection reset", func() { srv.reset.Store(true) }, 4, 1},
		{"connection reset again", func() {}, 4, 1},
		{"served after the resets", func() { srv.reset.Store(false) }, 4, 2},
	} {
		step.change()
		// Two fetches more: the refresh goroutine fetches one at a time,
		// so the first of them started after the change and has been
		// answered and logged.
		after := srv.fetches.Load() + 2
		for deadline := time.Now().Add(5 * time.Second); srv.fetches.Load() < after; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no JWKS fetch in 5 s (%d fetches)", step.name, srv.fetches.Load())
			}
		}
		logs := e.logs.String()
		if got := strings.Count(logs, warned); got != step.warned {
			t.Errorf("%s: %d warnings that fetching the JWKS failed, want %d: %s", step.name, got, step.warned, logs)
		}
		if got := strings.Count(logs, works); got != step.works {
			t.Errorf("%s: %d lines saying fetching the JWKS works again, want %d: %s", step.name, got, step.works, logs)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "jwks-query-secret") {
		t.Errorf("logs contain the JWKS URL's credential: %s", logs)
	}
}

// A fetch cut off because hookd is stopping did not fail: nothing is
// warned, and the next failure is the first.
func TestJWKSFetchCutOffIsNoFailure(t *testing.T) {
	var logs bytes.Buffer
	f := &jwksFetches{log: slog.New(slog.NewTextHandler(&logs, nil)), url: "https://idp.example/jwks", now: time.Now}
	ctx := context.Background()
	f.failed(ctx, fmt.Errorf("failed to perform HTTP request for JWK Set refresh: %w",
		&url.Error{Op: "Get", URL: "https://idp.example/jwks", Err: context.Canceled}))
	if logs.Len() != 0 {
		t.Errorf("a fetch cut off by the stop logged:\n%s", logs.String())
	}
	f.failed(ctx, errors.New("503 Service Unavailable"))
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "failed_fetches=1") {
		t.Errorf("the first failure after a cut-off fetch: %d warnings, want 1 counting 1 failed fetch:\n%s", n, logs.String())
	}
}
