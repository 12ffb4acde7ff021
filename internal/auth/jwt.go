package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// looksLikeJWT reports whether s starts like a JWS: base64url of '{"'.
func looksLikeJWT(s string) bool { return strings.HasPrefix(s, "eyJ") }

func (a *Authenticator) authenticateJWT(ctx context.Context, raw string) (*Identity, error) {
	if a.parser == nil {
		return nil, unauthorized("JWT authentication is not configured on this server: send 'Authorization: Token <api-token>'")
	}
	if looksLikeAPIToken(raw) {
		return nil, unauthorized("this looks like a hookd API token: send it as 'Authorization: Token <api-token>'")
	}
	claims := jwt.MapClaims{}
	token, err := a.parser.ParseWithClaims(raw, claims, a.keyfunc(ctx))
	if err != nil {
		return nil, a.jwtError(ctx, token, claims, err)
	}
	// RFC 7515 §4.1.11: a recipient that does not understand an
	// extension crit names must refuse the token. hookd understands none.
	if _, ok := token.Header["crit"]; ok {
		return nil, unauthorized("the JWT's crit header names extensions this server does not understand")
	}
	// The subject is who acts: the audit trail records it and the rate
	// limit counts per subject, so it must name someone.
	sub, err := claims.GetSubject()
	if err != nil || sub == "" {
		return nil, unauthorized("the JWT must have a sub claim: a non-empty string naming who acts")
	}
	if webhook.ValidText("sub", sub) != nil {
		return nil, unauthorized("the JWT's sub claim must not contain a NUL character")
	}
	orgs, err := a.organizations(claims)
	if err != nil {
		return nil, err
	}
	iss, _ := claims.GetIssuer()
	return &Identity{Subject: sub, Issuer: iss, Organizations: orgs}, nil
}

var (
	errUnknownKID = errors.New("the JWT's kid is not in the JWKS")
	errNoKey      = errors.New("no key is configured for the JWT's algorithm")
)

// keyfunc picks the key by the token's algorithm family, never by what
// the token claims to be otherwise: HMAC tokens are checked with the
// secret only, and asymmetric tokens with JWKS keys only, so a public key
// can never serve as an HMAC secret.
func (a *Authenticator) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Method.(*jwt.SigningMethodHMAC); ok {
			if a.secret == nil {
				return nil, errNoKey
			}
			return a.secret, nil
		}
		if a.jwks == nil {
			return nil, errNoKey
		}
		if _, ok := t.Header[jwkset.HeaderKID]; !ok {
			return a.unnamedKeys(ctx, t.Method.Alg())
		}
		// A fetch for a key id not loaded serves every request after it,
		// so the client that started it hanging up must not cancel it:
		// one made-up key id every 5 s, each abandoned at once, would use
		// up every allowed fetch and keep a rotated key out until the
		// periodic refresh. A deadline is kept, and jwksRefreshWait
		// bounds the wait and the fetch in any case.
		fetchCtx := context.WithoutCancel(ctx)
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			fetchCtx, cancel = context.WithDeadline(fetchCtx, deadline)
			defer cancel()
		}
		key, err := a.jwks.KeyfuncCtx(fetchCtx)(t)
		if err != nil && !a.jwksHasKID(ctx, t) {
			// Covers both "not found after a refresh" and "not found, and
			// refreshing again is rate limited".
			return nil, fmt.Errorf("%w: %w", errUnknownKID, err)
		}
		return key, err
	}
}

// unnamedKeys are the keys a JWT without a kid is checked with: every
// key of the JWKS meant for signatures (use "sig", or no use) and for
// its algorithm (no alg, or the JWT's), as the key a kid names must be.
// The library's own set for it was every key, an encryption key or one
// pinned to another algorithm included.
func (a *Authenticator) unnamedKeys(ctx context.Context, alg string) (jwt.VerificationKeySet, error) {
	var set jwt.VerificationKeySet
	keys, err := a.jwks.Storage().KeyReadAll(ctx)
	if err != nil {
		return set, err
	}
	for _, k := range keys {
		m := k.Marshal()
		if !slices.Contains(jwksUses, m.USE) || (m.ALG != "" && m.ALG.String() != alg) {
			continue
		}
		key := k.Key()
		if private, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = private.Public()
		}
		set.Keys = append(set.Keys, key)
	}
	return set, nil
}

// jwksHasKID reports whether the loaded JWKS holds the token's kid,
// without triggering a refresh.
func (a *Authenticator) jwksHasKID(ctx context.Context, t *jwt.Token) bool {
	kid, ok := t.Header[jwkset.HeaderKID].(string)
	if !ok {
		return false
	}
	keys, err := a.jwks.Storage().KeyReadAll(ctx)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(keys, func(k jwkset.JWK) bool { return k.Marshal().KID == kid })
}

// jwtError turns a parse failure into a message that says what to fix.
// The details (which may name the kid or alg) go to the debug log; the
// token itself goes nowhere.
func (a *Authenticator) jwtError(ctx context.Context, t *jwt.Token, claims jwt.MapClaims, err error) error {
	a.log.DebugContext(ctx, "auth: JWT refused", "error", err)
	if errors.Is(err, jwt.ErrTokenMalformed) || t == nil {
		return unauthorized("the JWT is malformed: expected header.payload.signature, each base64url-encoded")
	}
	if alg, _ := t.Header["alg"].(string); !slices.Contains(a.methods, alg) {
		return unauthorized("the JWT's signing algorithm (alg) is not accepted: this server accepts " + strings.Join(a.methods, ", "))
	}
	switch {
	case errors.Is(err, errUnknownKID):
		return unauthorized("the JWT's key id (kid) is not in the server's JWKS: the token was signed by a key this server does not trust")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return unauthorized("the JWT could not be verified with the server's keys: check its alg and kid match a key in the JWKS")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthorized("the JWT's signature is invalid")
	}

	if exp, e := claims.GetExpirationTime(); e == nil && exp == nil {
		return unauthorized("the JWT has no exp claim: this server only accepts JWTs that expire")
	}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthorized("the JWT has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthorized("the JWT is not valid yet (its nbf claim is in the future)")
	case errors.Is(err, jwt.ErrInvalidType):
		return unauthorized("the JWT has a claim of the wrong type: exp and nbf must be numbers, iss a string, aud a string or an array of strings")
	case a.issuer != "" && (errors.Is(err, jwt.ErrTokenInvalidIssuer) || (errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && !hasIssuer(claims))):
		return unauthorized(fmt.Sprintf("the JWT's iss claim must be %q", a.issuer))
	case a.audience != "" && (errors.Is(err, jwt.ErrTokenInvalidAudience) || errors.Is(err, jwt.ErrTokenRequiredClaimMissing)):
		return unauthorized(fmt.Sprintf("the JWT's aud claim must include %q", a.audience))
	}
	return unauthorized("the JWT is invalid")
}

func hasIssuer(claims jwt.MapClaims) bool {
	iss, err := claims.GetIssuer()
	return err == nil && iss != ""
}

// organizations reads the organizations claim: an array of UUID strings.
// Entries that are not UUIDs are skipped, so one odd group name from the
// identity provider does not lock a user out; a missing or null claim
// means no organizations, and any other shape is refused.
func (a *Authenticator) organizations(claims jwt.MapClaims) ([]uuid.UUID, error) {
	v := claims[a.orgsClaim]
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, unauthorized(fmt.Sprintf("the JWT's %q claim must be an array of organization ids (UUID strings)", a.orgsClaim))
	}
	orgs := make([]uuid.UUID, 0, len(list))
	seen := make(map[uuid.UUID]bool, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			continue
		}
		id, err := uuid.Parse(s)
		if err != nil || id == uuid.Nil || seen[id] {
			continue
		}
		seen[id] = true
		orgs = append(orgs, id)
	}
	return orgs, nil
}
