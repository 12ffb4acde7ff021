package api

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are the API's abuse limits; a zero rate or count turns its limit
// off. Rates are kept in each process's memory: n nodes together allow n
// times the rate.
type Limits struct {
	// APIRate is the requests per second each credential (API token, or a
	// JWT's issuer and subject) may make to the management API, with
	// bursts of APIBurst. Intake is not counted here: it has IntakeRate.
	APIRate  float64
	APIBurst int
	// IntakeRate is the deployment events per second each organization
	// may report, with bursts of IntakeBurst.
	IntakeRate  float64
	IntakeBurst int
	// AuthFailureRate is the failed authentications a second each client
	// address may make, with bursts of AuthFailureBurst; past it the
	// address is answered 429 before its credentials are even looked up.
	AuthFailureRate  float64
	AuthFailureBurst int
	// MaxWebhooksPerOrg is how many webhooks an organization may have.
	MaxWebhooksPerOrg int
	// MaxSourcesPerOrg is how many event sources an organization may
	// have; it also bounds GET …/source, which is not paginated.
	MaxSourcesPerOrg int
}

// rateLimiter is a token bucket per key: a credential, an organization,
// a client address. Buckets are created on first use and forgotten once
// full again with nothing in flight (a full bucket is what a new one
// would be), so memory follows the keys active within one refill.
type rateLimiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	// The next sweep is due at sweepAt or once the map holds sweepLen
	// buckets, whichever comes first; both move on after each sweep, so
	// sweeping costs O(1) per request amortized.
	sweepAt  time.Time
	sweepLen int
}

// bucket is one key's tokens, and the attempts admitted against them
// whose outcome is not known yet (admit).
type bucket struct {
	*rate.Limiter
	pending int
}

// Sweeping bounds.
const (
	sweepEvery  = time.Minute
	minSweepLen = 1024
)

// newRateLimiter returns a limiter of perSecond with bursts of burst (at
// least 1), or nil, which allows everything, when perSecond is not
// positive.
func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &rateLimiter{limit: rate.Limit(perSecond), burst: max(burst, 1), buckets: map[string]*bucket{}, sweepLen: minSweepLen}
}

// reserve takes a token from key's bucket at now and returns 0, or, when
// the bucket is empty, takes nothing and returns how long until a token
// is there.
func (l *rateLimiter) reserve(key string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.bucket(key, now).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // refused requests do not use up the future
		return d
	}
	return 0
}

// attempt is an attempt admit let through; settle it with its outcome.
type attempt struct {
	key string
	// counted is the bucket whose pending it was counted in, nil if none.
	counted *bucket
}

// admit decides whether an attempt that uses a token only if it fails (a
// credential about to be checked) may go ahead at now: wait > 0 when key
// is past its rate. While key's bucket is below full (the key failed
// lately), its attempts in flight count against its tokens until
// settled, so that many concurrent attempts cannot each find the one
// token left and all fail; a key that has not failed lately is held to
// no number in flight, so busy clients with valid credentials are never
// slowed.
func (l *rateLimiter) admit(key string, now time.Time) (a attempt, wait time.Duration) {
	a.key = key
	if l == nil {
		return a, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return a, 0
	}
	tokens := b.TokensAt(now)
	if tokens >= float64(l.burst) {
		return a, 0
	}
	if free := tokens - float64(b.pending); free < 1 {
		return a, time.Duration((1 - free) / float64(l.limit) * float64(time.Second))
	}
	b.pending++
	a.counted = b
	return a, 0
}

// settle ends an admitted attempt at now: a failed one takes a token
// from its key's bucket, if one is left.
func (l *rateLimiter) settle(a attempt, failed bool, now time.Time) {
	if l == nil || (a.counted == nil && !failed) {
		return // the common case, a success not counted: no lock
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.counted != nil {
		a.counted.pending--
	}
	if failed {
		l.bucket(a.key, now).AllowN(now, 1)
	}
}

// bucket is key's bucket, created full if there is none; l.mu is held.
func (l *rateLimiter) bucket(key string, now time.Time) *bucket {
	if !now.Before(l.sweepAt) || len(l.buckets) >= l.sweepLen {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{Limiter: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	return b
}

// clientKey is the client address failed authentications are counted
// against: the connection's IP address (a proxy in front of hookd is one
// client), and for IPv6 its /64, which one host usually holds whole.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if a = a.Unmap(); a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// sweep forgets the buckets that are full at now, with no attempt in
// flight.
func (l *rateLimiter) sweep(now time.Time) {
	for key, b := range l.buckets {
		if b.pending == 0 && b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, key)
		}
	}
	l.sweepAt = now.Add(sweepEvery)
	l.sweepLen = max(2*len(l.buckets), minSweepLen)
}

// size is how many buckets are remembered.
func (l *rateLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
