package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// TokenPrefix starts every API token, so a leaked one is easy to spot
// (and to search for) and a JWT sent as a token is told apart.
const TokenPrefix = "hkd_"

// NewToken mints an API token: plain is shown to the user once, hash is
// what the store keeps. The token carries 256 random bits, so a fast,
// unsalted hash is enough and lets the store look the token up by it.
func NewToken() (plain string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("auth: generate token: %w", err)
	}
	plain = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return plain, HashToken(plain), nil
}

// HashToken returns the SHA-256 of an API token, as stored.
func HashToken(plain string) []byte {
	sum := sha256.Sum256([]byte(plain))
	return sum[:]
}

func looksLikeAPIToken(s string) bool { return strings.HasPrefix(s, TokenPrefix) }

func (a *Authenticator) authenticateToken(ctx context.Context, plain string) (*Identity, error) {
	if !looksLikeAPIToken(plain) {
		if looksLikeJWT(plain) {
			return nil, unauthorized("this looks like a JWT: send it as 'Authorization: Bearer <jwt>'")
		}
		return nil, unauthorized("the API token is malformed: hookd API tokens start with \"" + TokenPrefix + "\"")
	}
	hash := HashToken(plain)
	tok, err := a.lookupToken(ctx, hash)
	if webhook.ErrorCode(err) == webhook.ENotFound {
		return nil, errUnknownToken
	}
	if err != nil {
		return nil, fmt.Errorf("auth: look up API token: %w", err)
	}
	// The store matched on the hash already; comparing again in constant
	// time keeps a store that matched loosely from letting a caller in.
	if subtle.ConstantTimeCompare(tok.Hash, hash) != 1 || !tok.RevokedAt.IsZero() {
		return nil, errUnknownToken
	}
	a.touch(ctx, tok)
	return &Identity{
		TokenID:       tok.ID,
		Subject:       "token:" + tok.ID.String(),
		Organizations: []uuid.UUID{tok.OrganizationID},
	}, nil
}

var errUnknownToken = unauthorized("the API token is unknown or revoked")

// tokenCacheTTL is how long a token found in the store is trusted without
// asking the store again, so revoking a token takes effect within it.
// Without it every intake request paid a database read for its token.
// Unknown tokens are not cached: each one is looked up.
const tokenCacheTTL = time.Second

type cachedToken struct {
	tok *webhook.Token
	at  time.Time
}

// lookupToken returns the unrevoked token with that hash, from the cache
// when it was read from the store less than tokenCacheTTL ago.
func (a *Authenticator) lookupToken(ctx context.Context, hash []byte) (*webhook.Token, error) {
	now := a.now()
	a.mu.Lock()
	c, ok := a.tokenCache[string(hash)]
	a.mu.Unlock()
	if ok && now.Sub(c.at) < tokenCacheTTL {
		return c.tok, nil
	}
	tok, err := a.tokens.TokenGetByHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if len(a.tokenCache) >= maxTouched {
		for k, c := range a.tokenCache {
			if now.Sub(c.at) >= tokenCacheTTL {
				delete(a.tokenCache, k)
			}
		}
		if len(a.tokenCache) >= maxTouched {
			clear(a.tokenCache) // all fresh: a burst of distinct tokens
		}
	}
	a.tokenCache[string(hash)] = cachedToken{tok: tok, at: now}
	a.mu.Unlock()
	return tok, nil
}

// touchInterval is how stale a token's LastUsedAt may be: a token used on
// every request writes to the store at most once per interval.
const touchInterval = time.Minute

// maxTouched bounds the throttle map and the token cache before stale
// entries are swept.
const maxTouched = 4096

// touch records the token's use unless it was recorded less than
// touchInterval ago, by this process or (per LastUsedAt) another.
func (a *Authenticator) touch(ctx context.Context, tok *webhook.Token) {
	now := a.now()
	a.mu.Lock()
	last := a.touched[tok.ID]
	if tok.LastUsedAt.After(last) {
		last = tok.LastUsedAt
	}
	if now.Sub(last) < touchInterval {
		a.mu.Unlock()
		return
	}
	if len(a.touched) >= maxTouched {
		for id, at := range a.touched {
			if now.Sub(at) >= touchInterval {
				delete(a.touched, id)
			}
		}
	}
	// Claimed before writing, so concurrent requests with the same token
	// write once; a failed write is not retried until the next interval.
	a.touched[tok.ID] = now
	a.mu.Unlock()

	if err := a.tokens.TokenTouch(ctx, tok.ID, now); err != nil {
		a.log.DebugContext(ctx, "auth: recording API token use failed", "token_id", tok.ID, "error", err)
	}
}
