// Package auth decides who is calling: it turns the value of an
// Authorization header into an Identity, from either a hookd API token
// ("Token hkd_…", stored only as a SHA-256 hash) or a JWT ("Bearer …",
// verified with an HS256 secret or the keys of a JWKS URL). It also mints
// API tokens and carries the Identity in a request's context.
//
// It must never log, echo or store a credential: no token, JWT, secret or
// Authorization header value appears in a log line or in an error message.
// Every refusal is a *webhook.Error with code EUnauthorized whose message
// tells the caller what to fix without repeating what they sent. Deciding
// which organizations an Identity may act on is the caller's job
// (Identity.CanAccess); this package never reads the store for anything
// but tokens.
package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/hookd/hookd/internal/webhook"
)

// Identity is an authenticated caller.
type Identity struct {
	// TokenID is the API token used, or uuid.Nil for a JWT.
	TokenID uuid.UUID
	// Subject is the JWT's sub claim, or "token:<id>" for an API token.
	Subject string
	// Issuer is the JWT's iss claim ("" for an API token).
	Issuer string
	// Organizations are the organizations the caller may act on.
	Organizations []uuid.UUID
}

// Key names the credential for per-credential limits: the API token's id,
// or the JWT's issuer and subject, so every JWT a user is issued shares
// one key while two identity providers' subjects never collide. It holds
// nothing secret.
func (id *Identity) Key() string {
	if id.TokenID != uuid.Nil {
		return "token:" + id.TokenID.String()
	}
	return "jwt:" + strconv.Quote(id.Issuer) + ":" + strconv.Quote(id.Subject)
}

// CanAccess reports whether the caller may act on the organization.
func (id *Identity) CanAccess(org uuid.UUID) bool {
	return id != nil && org != uuid.Nil && slices.Contains(id.Organizations, org)
}

// Actor is the caller as the audit trail records it: the API token's id,
// or the JWT's subject (never the credential itself).
func (id *Identity) Actor() webhook.Actor {
	if id.TokenID != uuid.Nil {
		return webhook.Actor{Kind: webhook.ActorToken, ID: id.TokenID.String()}
	}
	return webhook.Actor{Kind: webhook.ActorJWT, ID: id.Subject}
}

type identityKey struct{}

// NewContext returns a copy of ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the Identity NewContext stored in ctx.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok && id != nil
}

// Config selects how JWTs are verified. With neither HS256Secret nor
// JWKSURL set, only API tokens are accepted.
type Config struct {
	// HS256Secret, when set, accepts JWTs signed with HS256 and this
	// secret. At least 32 bytes (RFC 7518 §3.2).
	HS256Secret []byte
	// JWKSURL, when set, accepts JWTs signed with RSA or ECDSA keys
	// published at this URL.
	JWKSURL string
	// Issuer and Audience, when set, must match the iss and aud claims.
	Issuer   string
	Audience string
	// OrganizationsClaim names the claim listing the caller's organization
	// ids (default "organizations").
	OrganizationsClaim string
	// Leeway tolerates clock skew on exp and nbf (default 30s).
	Leeway time.Duration
	// JWKSRefresh is how often the JWKS is fetched again (default 5m): a
	// key removed from it stops working within that time.
	JWKSRefresh time.Duration
}

// TokenStore is the part of webhook.Store that authentication needs.
type TokenStore interface {
	TokenGetByHash(ctx context.Context, hash []byte) (*webhook.Token, error)
	TokenTouch(ctx context.Context, id uuid.UUID, at time.Time) error
}

// Defaults and JWKS tuning. A JWT naming a key id not loaded fetches the
// JWKS again, at most once every jwksUnknownKIDEvery, whoever sends it: a
// stream of JWTs with made-up key ids costs the identity provider one
// fetch every 5 s, and cannot starve a real rotation, because every fetch
// loads the newest keys, so a rotated key is loaded within 5 s of its first
// use. A request waits at most jwksRefreshWait for its fetch, a little
// longer than that interval, so a request naming a new key is served by
// the next fetch even right after another; a failed fetch is retried by
// the next such request, 5 s later, not a minute.
const (
	DefaultOrganizationsClaim = "organizations"
	DefaultLeeway             = 30 * time.Second
	DefaultJWKSRefresh        = 5 * time.Minute
	// MinJWKSRefresh is the shortest periodic refresh allowed: as often
	// as a JWT naming an unknown key may fetch the JWKS.
	MinJWKSRefresh = jwksUnknownKIDEvery

	minHS256SecretLength = 32
	jwksUnknownKIDEvery  = 5 * time.Second
	jwksRefreshWait      = 6 * time.Second
	jwksHTTPTimeout      = 10 * time.Second
	// maxJWKSBody bounds a JWKS document read into memory; identity
	// providers publish a few KiB. A larger one fails its fetch, and the
	// keys loaded stay.
	maxJWKSBody = 1 << 20
)

// jwksMethods are the algorithms accepted from a JWKS: asymmetric only,
// so a public key can never be used as an HMAC secret.
var jwksMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// jwksUses are the values of a JWK's use that a signature may be checked
// with: "sig", or none (RFC 7517 §4.2 makes it optional).
var jwksUses = []jwkset.USE{jwkset.UseSig, ""}

// Authenticator checks credentials. It is safe for concurrent use.
type Authenticator struct {
	tokens TokenStore
	now    func() time.Time
	log    *slog.Logger

	// JWT verification; parser is nil when JWTs are not configured.
	parser    *jwt.Parser
	methods   []string
	secret    []byte
	jwks      keyfunc.Keyfunc
	issuer    string
	audience  string
	orgsClaim string

	mu         sync.Mutex
	touched    map[uuid.UUID]time.Time // last TokenTouch per token, to throttle writes
	tokenCache map[string]cachedToken  // by hash; see lookupToken
}

// New returns an Authenticator. When cfg.JWKSURL is set, the JWKS is
// fetched once now and refreshed in the background until ctx is done; a
// failed first fetch is logged, not returned, because the identity
// provider being down at start must not keep hookd (and its API tokens)
// down: keys load on the next refresh, or at once when a JWT names a key
// id not yet loaded.
func New(ctx context.Context, cfg Config, tokens TokenStore, now func() time.Time, log *slog.Logger) (*Authenticator, error) {
	if tokens == nil {
		return nil, errors.New("auth: no token store")
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("auth: the JWT leeway must not be negative")
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.OrganizationsClaim == "" {
		cfg.OrganizationsClaim = DefaultOrganizationsClaim
	}
	if cfg.JWKSRefresh <= 0 {
		cfg.JWKSRefresh = DefaultJWKSRefresh
	}
	a := &Authenticator{
		tokens:     tokens,
		now:        now,
		log:        log,
		issuer:     cfg.Issuer,
		audience:   cfg.Audience,
		orgsClaim:  cfg.OrganizationsClaim,
		touched:    make(map[uuid.UUID]time.Time),
		tokenCache: make(map[string]cachedToken),
	}

	if len(cfg.HS256Secret) > 0 {
		if len(cfg.HS256Secret) < minHS256SecretLength {
			return nil, fmt.Errorf("auth: the HS256 secret must be at least %d bytes (RFC 7518 §3.2), not %d", minHS256SecretLength, len(cfg.HS256Secret))
		}
		a.secret = bytes.Clone(cfg.HS256Secret)
		a.methods = append(a.methods, "HS256")
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, errors.New("auth: the JWKS URL must be an absolute http(s) URL")
		}
		redacted := webhook.RedactedURL(cfg.JWKSURL)
		fetches := &jwksFetches{log: a.log, url: redacted, now: now}
		// Built from jwkset's parts rather than with keyfunc's
		// NewDefaultOverrideCtx, for the one thing it has no hook for:
		// telling a fetch that succeeded, which replaces the keys.
		fetched, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
			Client:                    &http.Client{Transport: &skipUnusableKeys{next: http.DefaultTransport, log: a.log, url: redacted}},
			Ctx:                       ctx,
			HTTPTimeout:               jwksHTTPTimeout,
			NoErrorReturnFirstHTTPReq: true,
			RefreshInterval:           cfg.JWKSRefresh,
			RefreshErrorHandler:       fetches.failed,
			Storage:                   replacedKeys{Storage: jwkset.NewMemoryStorage(), fetches: fetches},
		})
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS: %w", err)
		}
		storage, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
			HTTPURLs:         map[string]jwkset.Storage{cfg.JWKSURL: fetched},
			RateLimitWaitMax: jwksRefreshWait,
			// Burst 1: the first unknown key id refreshes at once, which is
			// also how keys load after a failed first fetch.
			RefreshUnknownKID: rate.NewLimiter(rate.Every(jwksUnknownKIDEvery), 1),
		})
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS: %w", err)
		}
		// The keys a kid names are used only if meant for signatures: a
		// JWKS may publish encryption keys too (use "enc"), and the
		// library's default checks no use at all.
		a.jwks, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: storage, UseWhitelist: jwksUses})
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS: %w", err)
		}
		a.methods = append(a.methods, jwksMethods...)
	}
	if a.methods == nil {
		if cfg.Issuer != "" || cfg.Audience != "" {
			return nil, errors.New("auth: a JWT issuer or audience is set but neither an HS256 secret nor a JWKS URL is")
		}
		return a, nil
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(a.methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	log.InfoContext(ctx, "auth: JWT authentication enabled",
		"algorithms", strings.Join(a.methods, ","), "jwks_url", webhook.RedactedURL(cfg.JWKSURL),
		"issuer", cfg.Issuer, "audience", cfg.Audience, "organizations_claim", cfg.OrganizationsClaim)
	return a, nil
}

const schemesHint = "send 'Authorization: Token <api-token>' or 'Authorization: Bearer <jwt>'"

// Authenticate returns the caller named by an Authorization header value.
// Bad credentials are a *webhook.Error with code EUnauthorized; a store
// failure is returned as is (an internal error, not a 401).
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (*Identity, error) {
	fields := strings.Fields(authorization)
	switch {
	case len(fields) == 0:
		return nil, unauthorized("missing Authorization header: " + schemesHint)
	case len(fields) == 1:
		if looksLikeAPIToken(fields[0]) || looksLikeJWT(fields[0]) {
			return nil, unauthorized("the Authorization header has no scheme: " + schemesHint)
		}
		return nil, unauthorized("the Authorization header has no credentials after its scheme: " + schemesHint)
	case len(fields) > 2:
		return nil, unauthorized("the Authorization header is malformed: " + schemesHint)
	}
	scheme, credentials := fields[0], fields[1]
	switch {
	case strings.EqualFold(scheme, "Token"):
		return a.authenticateToken(ctx, credentials)
	case strings.EqualFold(scheme, "Bearer"):
		return a.authenticateJWT(ctx, credentials)
	}
	return nil, unauthorized("unsupported Authorization scheme: " + schemesHint)
}

func unauthorized(msg string) *webhook.Error {
	return &webhook.Error{Code: webhook.EUnauthorized, Message: msg}
}

// jwksFetches logs the outcome of the JWKS fetches: a warning when they
// start failing and when their error changes, not at every fetch (every
// refresh, and up to every 5 s while JWTs name kids not loaded, the same
// line would say nothing new and bury the ones that do), and a line at
// Info when one succeeds again.
//
// A failure that lasts is warned about again every jwksFailureWarnEvery.
// Logged once, a failure that began days ago would be out of the window
// an operator reads, or past the logs kept, while every JWT signed with
// a key rotated in since is refused: the hourly line keeps it in view,
// with when it began, at one line in 12 refreshes at the default pace
// and one in 720 at the fastest.
type jwksFetches struct {
	log *slog.Logger
	url string // masked
	now func() time.Time

	// mu guards what follows: the periodic refresh and a JWT naming a
	// kid not loaded may fetch at once.
	mu sync.Mutex
	// failing is the error of the fetches failing since, "" while they
	// succeed; warned is when it was last warned about.
	failing       string
	since, warned time.Time
	failures      int
}

// jwksFailureWarnEvery is how often a failure that lasts is warned about
// again; see jwksFetches.
const jwksFailureWarnEvery = time.Hour

func (f *jwksFetches) failed(ctx context.Context, err error) {
	if errors.Is(err, context.Canceled) {
		// Cut off, not failed: hookd is stopping. (A fetch for a key a
		// JWT names outlives its client's leaving, jwt.go; it keeps the
		// request's deadline, and one that runs out is a failure.)
		return
	}
	msg := err.Error()
	if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
		// The HTTP client's error quotes the URL with only its password
		// masked, so a credential in its query would reach the log: its
		// cause alone is kept, beside the URL masked.
		msg = uerr.Op + ": " + uerr.Err.Error()
	}
	if oerr := (*net.OpError)(nil); errors.As(err, &oerr) && oerr.Source != nil && oerr.Addr != nil {
		// Each connection has a local port of its own: left in, one
		// connection reset would read as a new error at every fetch.
		msg = strings.Replace(msg, oerr.Source.String()+"->", "", 1)
	}
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing == "" {
		f.since, f.failures = now, 0
	}
	f.failures++
	if msg == f.failing && now.Sub(f.warned) < jwksFailureWarnEvery {
		return
	}
	f.failing, f.warned = msg, now
	f.log.WarnContext(ctx, "auth: fetching the JWKS failed; JWTs signed with keys not loaded yet are refused until a fetch succeeds (logged again when the error changes, or after an hour)",
		"url", f.url, "error", msg, "failing_since", f.since, "failed_fetches", f.failures)
}

func (f *jwksFetches) succeeded(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing == "" {
		return
	}
	f.log.InfoContext(ctx, "auth: fetching the JWKS works again; its keys are loaded",
		"url", f.url, "failing_since", f.since, "failed_fetches", f.failures)
	f.failing = ""
}

// replacedKeys is where a JWKS fetch loads its keys: jwkset replaces
// them all after a fetch that succeeded, and only then.
type replacedKeys struct {
	jwkset.Storage
	fetches *jwksFetches
}

func (r replacedKeys) KeyReplaceAll(ctx context.Context, keys []jwkset.JWK) error {
	err := r.Storage.KeyReplaceAll(ctx, keys)
	if err == nil {
		r.fetches.succeeded(ctx)
	}
	return err
}

// skipUnusableKeys is the JWKS fetch's transport. jwkset refuses a whole
// JWK Set when one of its keys cannot be parsed (a modulus that is not
// base64url, a point off its curve, a field of the wrong JSON type), and
// a refused fetch keeps the keys loaded before: one broken key published
// by the identity provider would keep trusting a key it rotated out, and
// keep out the one it rotated in, until a restart. jwkset has no option
// to skip such keys (only keys of a kty it does not know, which it skips
// already), so the set is parsed here first, as jwkset parses it, and
// the keys it would refuse are dropped. A document that is not a JWK Set
// at all, or whose keys are all refused, passes as it came: jwkset
// refuses it and the keys loaded stay, as for any failed fetch, rather
// than none being trusted because a proxy answered an error page or the
// provider published a broken set.
//
// The keys dropped are warned about when they change, not at every
// fetch: a provider that keeps publishing one broken key would otherwise
// log the same line every refresh, and every 5 s while JWTs name kids
// not loaded, burying the line that says something new.
type skipUnusableKeys struct {
	next http.RoundTripper
	log  *slog.Logger
	url  string // masked

	// mu guards skipped: the periodic refresh and a JWT naming a kid
	// not loaded may fetch at once.
	mu sync.Mutex
	// skipped holds the keys the last fetch that jwkset loaded dropped,
	// as published and sorted; empty when it dropped none.
	skipped []string
}

func (s *skipUnusableKeys) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBody {
		return nil, fmt.Errorf("the JWKS is larger than %d bytes", maxJWKSBody)
	}
	body, skipped, loads := dropUnusableKeys(body)
	if loads {
		s.report(req.Context(), skipped)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// report warns about the keys a fetch skipped when they are not the ones
// the last fetch skipped, and says at Info when none are skipped any
// more. Keys are told apart by what was published, in any order; the
// log names them by position, kid and reason, never their material.
func (s *skipUnusableKeys) report(ctx context.Context, skipped []skippedKey) {
	published := make([]string, len(skipped))
	reasons := make([]string, len(skipped))
	for i, k := range skipped {
		published[i], reasons[i] = k.published, k.reason
	}
	slices.Sort(published)
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(published, s.skipped) {
		return
	}
	before := len(s.skipped)
	s.skipped = published
	if len(skipped) > 0 {
		s.log.WarnContext(ctx, "auth: the JWKS holds keys that cannot be parsed; they are skipped and the others loaded (logged again only when the keys skipped change)",
			"url", s.url, "skipped", reasons)
		return
	}
	s.log.InfoContext(ctx, "auth: the JWKS keys that could not be parsed are gone; every key is loaded",
		"url", s.url, "skipped_before", before)
}

// skippedKey is a key dropUnusableKeys dropped: the JSON published,
// which must not be logged (a JWKS published by mistake may hold a
// private key), and why it was dropped, which may.
type skippedKey struct {
	published string
	reason    string
}

// dropUnusableKeys returns the JWK Set body without the keys jwkset would
// refuse, and those keys. It decodes and parses each key with the same
// calls and options jwkset.NewStorageFromHTTP uses, so what it keeps
// jwkset loads. loads is false when the body is passed as it came for
// jwkset to refuse: not a JWK Set, or no key usable.
func dropUnusableKeys(body []byte) (_ []byte, skipped []skippedKey, loads bool) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.NewDecoder(bytes.NewReader(body)).Decode(&set) != nil {
		return body, nil, false
	}
	kept := make([]json.RawMessage, 0, len(set.Keys))
	for i, raw := range set.Keys {
		var m jwkset.JWKMarshal
		err := json.Unmarshal(raw, &m)
		if err == nil {
			_, err = jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{Private: true}, jwkset.JWKValidateOptions{})
		}
		// jwkset skips a kty it does not know by itself, and always did
		// without a word: an identity provider may publish kinds of keys
		// hookd has no use for.
		if err != nil && !errors.Is(err, jwkset.ErrUnsupportedKey) {
			skipped = append(skipped, skippedKey{
				published: string(raw),
				reason:    fmt.Sprintf("key %d (kid %q): %v", i, m.KID, err),
			})
			continue
		}
		kept = append(kept, raw)
	}
	if len(skipped) == 0 {
		return body, nil, true
	}
	if len(kept) == 0 {
		// Nothing usable: the fetch fails as jwkset refuses the set, and
		// the keys loaded stay, as for a document that is not a JWK Set,
		// rather than none being trusted.
		return body, nil, false
	}
	filtered, err := json.Marshal(struct {
		Keys []json.RawMessage `json:"keys"`
	}{kept})
	if err != nil { // cannot happen: every key was decoded from JSON
		return body, nil, false
	}
	return filtered, skipped, true
}
