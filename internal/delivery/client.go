// Package delivery carries events to webhooks: it claims due deliveries
// from the store, renders and signs each request, sends it with a guarded
// HTTP client, records the attempt and schedules the next one.
//
// It must never dial a non-public address unless the operator allowed it
// (the check is made on the address actually dialled, so neither DNS
// tricks nor redirects get around it), never follow a redirect, and never
// log a webhook's secret or a target URL's credentials.
package delivery

import (
	"net"
	"net/http"
	"net/netip"
	"time"
)

// ClientOptions configures NewHTTPClient; zero values take the defaults.
type ClientOptions struct {
	// Timeout bounds a whole request, answer included (default 30s).
	Timeout time.Duration
	// AllowedCIDRs are non-public ranges that may be dialled anyway
	// (HOOKD_ALLOWED_TARGET_CIDRS), e.g. 127.0.0.0/8 for local tests.
	AllowedCIDRs []netip.Prefix
	// NAT64Prefixes are the network's own NAT64 prefixes
	// (HOOKD_NAT64_PREFIXES, DiscoverNAT64): an address in one is as
	// public as the IPv4 address it carries, as in the well-known
	// 64:ff9b::/96, which is always checked.
	NAT64Prefixes []netip.Prefix
	// MaxIdleConnsPerHost is how many keep-alive connections are kept per
	// target host (default DefaultMaxIdleConnsPerHost). Many webhooks
	// often share a host (every Slack webhook is hooks.slack.com), each
	// with up to MaxInflightPerWebhook requests at once: a pool smaller
	// than the requests in flight to a host closes connections only to
	// dial them again a moment later.
	MaxIdleConnsPerHost int
}

// Defaults of ClientOptions.
const (
	DefaultTimeout = 30 * time.Second
	// DefaultMaxIdleConnsPerHost is as many connections as a dispatcher
	// can have requests in flight (maxHeld), all to one host at worst: a
	// fan-out to 100 webhooks there can have 800. With a bound of 512, a
	// tenth of a fan-out's requests dialled anew. The pool never grows
	// past what was in flight at once, and an idle connection closes
	// after 90 s.
	DefaultMaxIdleConnsPerHost = maxHeld
)

// NewHTTPClient returns the client that sends deliveries. It refuses to
// connect to non-public addresses outside o.AllowedCIDRs (the error is a
// *RefusedAddressError), ignores proxy settings from the environment (a
// proxy would dial in hookd's place, unchecked), and returns a redirect
// as the answer instead of following it.
func NewHTTPClient(o ClientOptions) *http.Client {
	return newHTTPClient(o, nil)
}

// newHTTPClient is NewHTTPClient with a resolver, so tests resolve names
// without sending a DNS query (nil: the system's).
func newHTTPClient(o ClientOptions, resolver *net.Resolver) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxIdleConnsPerHost <= 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	dialer := &net.Dialer{
		Timeout:        min(o.Timeout, 10*time.Second),
		KeepAlive:      30 * time.Second,
		ControlContext: dialControl(o.AllowedCIDRs, o.NAT64Prefixes),
		Resolver:       resolver,
	}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           0, // no overall limit: per host is what matters
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    min(o.Timeout, 10*time.Second),
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
