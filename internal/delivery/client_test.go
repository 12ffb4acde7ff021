package delivery

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var loopbackV4 = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// clientDials wraps c's dialer to count the connections it really made.
func clientDials(t *testing.T, c *http.Client) *atomic.Int64 {
	t.Helper()
	tr := c.Transport.(*http.Transport)
	dial := tr.DialContext
	var n atomic.Int64
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err == nil {
			n.Add(1)
		}
		return conn, err
	}
	return &n
}

// noDNS resolves from /etc/hosts only: tests must not send DNS queries.
func noDNS(queries *atomic.Int64) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			queries.Add(1)
			return nil, errors.New("no DNS in tests")
		},
	}
}

// Each spelling of a non-public address fails without a connection being
// made: the dialer's Control check runs after socket() and before
// connect(), so no packet leaves. What Go does with each spelling:
//   - IP literals, bracketed IPv6 included, reach the dialer as they are;
//     [::ffff:127.0.0.1] is dialled as the IPv4 address 127.0.0.1.
//   - "localhost" is resolved (from /etc/hosts here) and the resolved
//     127.0.0.1 is refused, which is also how a DNS name rebinding to a
//     private address is caught.
//   - Go's IP parser accepts only dotted-decimal IPv4, so 2130706433,
//     0x7f.0.0.1 and 017700000001 are host names to it. The pure-Go
//     resolver fails the all-digit ones at once ("no such host": not a
//     valid domain name, no query sent) and looks 0x7f.0.0.1 up in DNS
//     (here a resolver that answers nothing). A libc resolver (inet_aton)
//     would turn them into 127.0.0.1, which Control refuses.
func TestClientRefusesNonPublicAddresses(t *testing.T) {
	tests := []struct {
		url        string
		addr       string // the refused address; "" when the name may not resolve at all
		reason     string
		maybeNoDNS bool
	}{
		{"http://127.0.0.1/", "127.0.0.1", "loopback", false},
		{"http://127.0.0.1:8080/hook", "127.0.0.1", "loopback", false},
		{"http://localhost/", "127.0.0.1", "loopback", false},
		{"http://2130706433/", "127.0.0.1", "loopback", true},
		{"http://0x7f.0.0.1/", "127.0.0.1", "loopback", true},
		{"http://017700000001/", "127.0.0.1", "loopback", true},
		{"http://[::1]/", "::1", "loopback", false},
		{"http://[::ffff:127.0.0.1]/", "127.0.0.1", "loopback", false},
		{"http://0.0.0.0/", "0.0.0.0", "unspecified", false},
		{"http://[::]/", "::", "unspecified", false},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local", false},
		{"http://10.0.0.1/", "10.0.0.1", "private", false},
		{"https://192.168.1.1/", "192.168.1.1", "private", false},
		{"http://[fd00::1]/", "fd00::1", "unique local", false},
		{"http://100.64.0.1/", "100.64.0.1", "shared (carrier-grade NAT)", false},
		{"http://[64:ff9b::a00:1]/", "64:ff9b::a00:1", "NAT64 (embedding 10.0.0.1, private)", false},
		{"http://[fe80::1%25eth0]/", "fe80::1", "link-local", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			var queries atomic.Int64
			c := newHTTPClient(ClientOptions{Timeout: 5 * time.Second}, noDNS(&queries))
			dials := clientDials(t, c)
			req, err := http.NewRequest(http.MethodPost, tt.url, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("request to %s succeeded", tt.url)
			}
			if n := dials.Load(); n != 0 {
				t.Fatalf("%d connections made", n)
			}
			var refused *RefusedAddressError
			if !errors.As(err, &refused) {
				var dnsErr *net.DNSError
				if tt.maybeNoDNS && errors.As(err, &dnsErr) {
					t.Logf("not resolved (Go treats it as a host name): %v", err)
					return
				}
				t.Fatalf("error %v (%T), want a *RefusedAddressError", err, err)
			}
			if refused.Addr.String() != tt.addr {
				t.Errorf("refused %s, want %s", refused.Addr, tt.addr)
			}
			if refused.Reason != tt.reason {
				t.Errorf("reason %q, want %q", refused.Reason, tt.reason)
			}
			// What the delivery log records names the refusal, not the
			// address a name resolved to.
			if got := describe(err).Error(); got != RefusedMessage {
				t.Errorf("recorded as %q\nwant %q", got, RefusedMessage)
			}
			var uerr *url.Error
			if !errors.As(err, &uerr) {
				t.Errorf("error %T is not a *url.Error", err)
			}
			t.Logf("%v", err)
		})
	}
}

func TestClientAllowedCIDRs(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	t.Run("refused by default", func(t *testing.T) {
		c := NewHTTPClient(ClientOptions{Timeout: 5 * time.Second})
		_, err := c.Get(srv.URL)
		var refused *RefusedAddressError
		if !errors.As(err, &refused) || refused.Addr != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("error %v, want a refused 127.0.0.1", err)
		}
		if hits.Load() != 0 {
			t.Fatal("the server was reached")
		}
	})
	t.Run("other ranges allowed", func(t *testing.T) {
		c := NewHTTPClient(ClientOptions{Timeout: 5 * time.Second, AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		_, err := c.Get(srv.URL)
		var refused *RefusedAddressError
		if !errors.As(err, &refused) {
			t.Fatalf("error %v, want a *RefusedAddressError", err)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		c := NewHTTPClient(ClientOptions{Timeout: 5 * time.Second, AllowedCIDRs: loopbackV4})
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || hits.Load() != 1 {
			t.Fatalf("status %d, hits %d", resp.StatusCode, hits.Load())
		}
	})
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	c := NewHTTPClient(ClientOptions{Timeout: 5 * time.Second, AllowedCIDRs: loopbackV4})
	resp, err := c.Post(srv.URL+"/hook", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("status %d, want the 307 itself", resp.StatusCode)
	}
	if followed.Load() != 0 {
		t.Error("the redirect was followed")
	}
}

// connCounter starts a loopback server with h and counts the
// connections it accepts.
func connCounter(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestClientReusesConnections(t *testing.T) {
	srv, conns := connCounter(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	})

	c := NewHTTPClient(ClientOptions{Timeout: 5 * time.Second, AllowedCIDRs: loopbackV4})
	for range 20 {
		resp, err := c.Post(srv.URL, "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 20 sequential requests, want 1", n)
	}
}

// A fan-out to many webhooks on one host (every Slack webhook is
// hooks.slack.com) has as many requests in flight there as its webhooks
// allow: their connections must all be kept for the next round, not
// closed to be dialled again. 600 is more than the 512 the pool once
// kept, and less than a dispatcher can have in flight.
func TestClientKeepsConnectionsOfAWideFanOut(t *testing.T) {
	const wide = 600
	var (
		mu      sync.Mutex
		arrived int                   // under mu
		all     = make(chan struct{}) // closed, then replaced, once wide requests are in; under mu
	)
	srv, conns := connCounter(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		wait := all
		if arrived++; arrived%wide == 0 {
			close(all)
			all = make(chan struct{})
		}
		mu.Unlock()
		select { // every request of a round is in flight at once
		case <-wait:
		case <-time.After(10 * time.Second):
		}
		w.Write([]byte("ok"))
	})

	c := NewHTTPClient(ClientOptions{Timeout: 15 * time.Second, AllowedCIDRs: loopbackV4})
	for round := range 2 {
		var wg sync.WaitGroup
		errs := make(chan error, wide)
		for range wide {
			wg.Go(func() {
				resp, err := c.Post(srv.URL, "application/json", strings.NewReader(`{"n":1}`))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body) // at EOF the connection is back in the pool
				resp.Body.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if n := conns.Load(); n != wide {
		t.Errorf("%d connections for two rounds of %d requests at once, want %d", n, wide, wide)
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	c := NewHTTPClient(ClientOptions{Timeout: 100 * time.Millisecond, AllowedCIDRs: loopbackV4})
	_, err := c.Get(srv.URL)
	var uerr *url.Error
	if !errors.As(err, &uerr) || !uerr.Timeout() {
		t.Fatalf("error %v, want a timeout", err)
	}
}

func TestClientIgnoresProxyEnvironment(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://proxy.invalid:3128")
	t.Setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
	c := NewHTTPClient(ClientOptions{})
	tr := c.Transport.(*http.Transport)
	if tr.Proxy != nil {
		t.Error("the transport uses a proxy")
	}
	if tr.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost || c.Timeout != DefaultTimeout {
		t.Errorf("defaults: %d idle per host, timeout %s", tr.MaxIdleConnsPerHost, c.Timeout)
	}
}
