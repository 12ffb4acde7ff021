package delivery

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRefusal(t *testing.T) {
	tests := []struct {
		addr   string
		reason string // "" for a public address
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
		{"2001:4860:4860::8888", ""},

		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.0.1", "private"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"100.127.255.255", "shared (carrier-grade NAT)"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fd00::1", "unique local"},
		{"fc00::1", "unique local"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"192.0.0.8", "IETF protocol assignment"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.1", "documentation"},
		{"203.0.113.1", "documentation"},
		{"2001:db8::1", "documentation"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"2001:2::1", "benchmarking"},
		{"2001:2:0:ffff::1", "benchmarking"},
		{"2001:3::1", ""}, // AMT, beside it, is global
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::7f00:1", "IPv4-compatible"},
		{"64:ff9b::7f00:1", "NAT64 (embedding 127.0.0.1, loopback)"},
		{"64:ff9b::a9fe:a9fe", "NAT64 (embedding 169.254.169.254, link-local)"},
		{"64:ff9b:1::a00:1", "local-use NAT64"},
		{"2002:a00:1::1", "6to4 (embedding 10.0.0.1, private)"},
		{"2002:7f00:1::", "6to4 (embedding 127.0.0.1, loopback)"},
		{"2001::1", "Teredo"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"100::1", "discard-only"},
		{"fec0::1", "site-local"},
		{"4000::1", "non-global IPv6"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if got := refusal(a, nil); got != tt.reason {
				t.Errorf("refusal(%s) = %q, want %q", a, got, tt.reason)
			}
			err := checkAddr(a, nil, nil)
			if (err == nil) != (tt.reason == "") {
				t.Errorf("checkAddr(%s) = %v", a, err)
			}
		})
	}
}

func TestCheckAddrAllowed(t *testing.T) {
	allowed, err := ParseCIDRs("127.0.0.0/8, 10.1.0.0/16,fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"10.1.2.3", true},
		{"10.2.0.1", false},
		{"fd00::1", true},
		{"::1", false},
		{"169.254.169.254", false},
		{"8.8.8.8", true},
	} {
		err := checkAddr(netip.MustParseAddr(tt.addr), allowed, nil)
		if (err == nil) != tt.ok {
			t.Errorf("checkAddr(%s) = %v, want allowed %v", tt.addr, err, tt.ok)
		}
		var refused *RefusedAddressError
		if err != nil && !errors.As(err, &refused) {
			t.Errorf("checkAddr(%s) = %T", tt.addr, err)
		}
	}
}

// TestRefusalNAT64Prefixes: an address in one of the network's own NAT64
// prefixes is judged by the IPv4 address it carries, at every length RFC
// 6052 defines (its own examples, section 2.4, which carry 192.0.2.33, a
// documentation address), even a prefix in a range refused otherwise.
func TestRefusalNAT64Prefixes(t *testing.T) {
	nat64, err := ParseNAT64Prefixes("2001:db8::/32,2001:db8:100::/40,2001:db8:122::/48,2001:db8:122:300::/56,2001:db8:122:344::/64,2600:1f00:64::/96,fd00:64::/96")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr, reason, without string
	}{
		{"2001:db8:c000:221::", "NAT64 (embedding 192.0.2.33, documentation)", "documentation"},
		{"2001:db8:1c0:2:21::", "NAT64 (embedding 192.0.2.33, documentation)", "documentation"},
		{"2001:db8:122:c000:2:2100::", "NAT64 (embedding 192.0.2.33, documentation)", "documentation"},
		{"2001:db8:122:3c0:0:221::", "NAT64 (embedding 192.0.2.33, documentation)", "documentation"},
		{"2001:db8:122:344:c0:2:2100:0", "NAT64 (embedding 192.0.2.33, documentation)", "documentation"},
		{"2600:1f00:64::a00:1", "NAT64 (embedding 10.0.0.1, private)", ""},
		{"2600:1f00:64::a9fe:a9fe", "NAT64 (embedding 169.254.169.254, link-local)", ""},
		{"2600:1f00:64::808:808", "", ""},
		{"fd00:64::808:808", "", "unique local"},
		{"fd00:64::7f00:1", "NAT64 (embedding 127.0.0.1, loopback)", "unique local"},
		{"2600:1f00:65::a00:1", "", ""}, // beside the prefix
		{"64:ff9b::a00:1", "NAT64 (embedding 10.0.0.1, private)", "NAT64 (embedding 10.0.0.1, private)"},
	} {
		a := netip.MustParseAddr(tt.addr)
		if got := refusal(a, nat64); got != tt.reason {
			t.Errorf("refusal(%s) with the prefixes = %q, want %q", a, got, tt.reason)
		}
		if got := refusal(a, nil); got != tt.without {
			t.Errorf("refusal(%s) without them = %q, want %q", a, got, tt.without)
		}
		if err := checkAddr(a, nil, nat64); (err == nil) != (tt.reason == "") {
			t.Errorf("checkAddr(%s) = %v", a, err)
		}
	}
	// HOOKD_ALLOWED_TARGET_CIDRS still wins.
	allowed, _ := ParseCIDRs("10.0.0.0/8")
	if err := checkAddr(netip.MustParseAddr("2600:1f00:64::a00:1"), allowed, nat64); err == nil {
		t.Error("an allowed IPv4 range does not let its NAT64 form through: that is a range of its own to allow")
	}
}

func TestParseNAT64Prefixes(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"2001:db8:64::/96":                 "2001:db8:64::/96",
		" 2001:db8::/32 , 2001:db8:1::/48": "2001:db8::/32,2001:db8:1::/48",
		"2001:db8:64::/95":                 `2001:db8:64::/95 is not a NAT64 prefix: one is IPv6, of length 32, 40, 48, 56, 64 or 96 (RFC 6052)`,
		"10.0.0.0/8":                       `10.0.0.0/8 is not a NAT64 prefix: one is IPv6, of length 32, 40, 48, 56, 64 or 96 (RFC 6052)`,
		"2001:db8:64::":                    `2001:db8:64::/128 is not a NAT64 prefix: one is IPv6, of length 32, 40, 48, 56, 64 or 96 (RFC 6052)`,
		"nat64":                            `"nat64" is not an IP address or a CIDR prefix like 10.0.0.0/8`,
	} {
		ps, err := ParseNAT64Prefixes(in)
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if err != nil {
			got = []string{err.Error()}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("ParseNAT64Prefixes(%q) = %q, want %q", in, strings.Join(got, ","), want)
		}
	}
}

// TestDiscoverNAT64: the prefixes are found where a DNS64 resolver put
// ipv4only.arpa's well-known IPv4 addresses (RFC 7050), at any RFC 6052
// length; the well-known prefix, which is always checked, and a network
// without DNS64 give none.
func TestDiscoverNAT64(t *testing.T) {
	answer := func(addrs ...string) func(context.Context, string, string) ([]netip.Addr, error) {
		return func(_ context.Context, network, host string) ([]netip.Addr, error) {
			if network != "ip6" || host != "ipv4only.arpa" {
				t.Errorf("looked up %s %q, want ip6 ipv4only.arpa", network, host)
			}
			var out []netip.Addr
			for _, a := range addrs {
				out = append(out, netip.MustParseAddr(a))
			}
			return out, nil
		}
	}
	for _, tt := range []struct {
		name   string
		lookup func(context.Context, string, string) ([]netip.Addr, error)
		want   string
	}{
		{"/96, both addresses", answer("2001:db8:122:344::c000:aa", "2001:db8:122:344::c000:ab"), "2001:db8:122:344::/96"},
		{"/64", answer("2001:db8:122:344:c0:0:aa00:0"), "2001:db8:122:344::/64"},
		{"/96 whose bits 64 to 71 are set", answer("2001:db8:122:344:ff00::c000:aa"), "2001:db8:122:344:ff00::/96"},
		{"/32", answer("2001:db8:c000:aa::"), "2001:db8::/32"},
		{"/56", answer("2001:db8:122:3c0:0:aa::"), "2001:db8:122:300::/56"},
		{"two prefixes", answer("2001:db8:122:344::c000:aa", "2001:db8:1c0:0:aa::"), "2001:db8:122:344::/96,2001:db8:100::/40"},
		{"the well-known prefix", answer("64:ff9b::c000:aa"), ""},
		{"not a synthesized address", answer("2001:db8::1"), ""},
		{"no DNS64", func(context.Context, string, string) ([]netip.Addr, error) {
			return nil, &net.DNSError{Err: "no such host", Name: "ipv4only.arpa", IsNotFound: true}
		}, ""},
		// The cgo resolver (glibc with mdns or systemd-resolved in
		// nsswitch.conf, macOS) finds the A records and net filters them
		// out of an "ip6" lookup.
		{"no DNS64, cgo resolver", func(context.Context, string, string) ([]netip.Addr, error) {
			return nil, &net.AddrError{Err: "no suitable address found", Addr: "ipv4only.arpa"}
		}, ""},
	} {
		ps, err := DiscoverNAT64(context.Background(), tt.lookup)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("%s: discovered %q, want %q", tt.name, strings.Join(got, ","), tt.want)
		}
	}
	_, err := DiscoverNAT64(context.Background(), func(context.Context, string, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "i/o timeout", Name: "ipv4only.arpa", IsTimeout: true}
	})
	if err == nil || !strings.Contains(err.Error(), "discover NAT64 prefixes") {
		t.Errorf("a resolver that did not answer: %v, want an error", err)
	}
}

func TestRefusedAddressErrorMessage(t *testing.T) {
	err := &RefusedAddressError{Addr: netip.MustParseAddr("10.1.2.3"), Reason: "private"}
	want := "refused: the target resolves to a non-public address; see HOOKD_ALLOWED_TARGET_CIDRS"
	if err.Error() != want {
		t.Errorf("got %q\nwant %q", err.Error(), want)
	}
}

// TestDescribeRevealsNoAddress checks what the delivery log records of a
// refused target and of a failed lookup: the name the owner typed, never
// an address hookd's network told it.
func TestDescribeRevealsNoAddress(t *testing.T) {
	const resolver, internal = "10.0.0.2", "10.1.2.3"
	wrap := func(err error) error {
		return &url.Error{Op: "Post", URL: "http://some-internal-name/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: err}}
	}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"refused", wrap(&RefusedAddressError{Addr: netip.MustParseAddr(internal), Reason: "private"}), RefusedMessage},
		{"no such host", wrap(&net.DNSError{Name: "some-internal-name", Server: resolver + ":53", Err: "no such host", IsNotFound: true}),
			`could not resolve "some-internal-name": no such host`},
		{"timeout", wrap(&net.DNSError{Name: "some-internal-name", Server: resolver + ":53",
			Err: "read udp " + internal + ":40000->" + resolver + ":53: i/o timeout", IsTimeout: true}),
			`could not resolve "some-internal-name": the lookup timed out`},
		{"other", wrap(&net.DNSError{Name: "some-internal-name", Server: resolver + ":53",
			Err: "dial udp " + resolver + ":53: connect: network is unreachable"}),
			`could not resolve "some-internal-name": the lookup failed`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := describe(tt.err).Error()
			if got != tt.want {
				t.Errorf("recorded as %q, want %q", got, tt.want)
			}
			if strings.Contains(got, resolver) || strings.Contains(got, internal) {
				t.Errorf("%q reveals an internal address", got)
			}
		})
	}
}

// TestLookupFailureRevealsNoResolver fails a real lookup (the resolver
// answers nothing): the error Go makes names the resolver, the recorded
// one must not.
func TestLookupFailureRevealsNoResolver(t *testing.T) {
	var queries atomic.Int64
	c := newHTTPClient(ClientOptions{Timeout: 5 * time.Second}, noDNS(&queries))
	_, err := c.Post("http://some-internal-name.example/", "application/json", strings.NewReader(`{}`))
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Fatalf("error %v (%T), want a lookup failure", err, err)
	}
	got := describe(err).Error()
	if !strings.HasPrefix(got, `could not resolve "some-internal-name.example"`) {
		t.Errorf("recorded as %q", got)
	}
	if host, _, _ := net.SplitHostPort(dnsErr.Server); host != "" && strings.Contains(got, host) {
		t.Errorf("%q names the resolver %s", got, host)
	}
}

func TestParseCIDRs(t *testing.T) {
	tests := []struct {
		in   string
		want string // the prefixes joined by commas
		err  string // a part of the error
	}{
		{"", "", ""},
		{"  ", "", ""},
		{"127.0.0.0/8,::1/128", "127.0.0.0/8,::1/128", ""},
		{" 10.0.0.0/8 , 192.168.1.0/24 ,", "10.0.0.0/8,192.168.1.0/24", ""},
		{"127.0.0.1", "127.0.0.1/32", ""},
		{"::1", "::1/128", ""},
		{"10.1.2.3/8", "10.0.0.0/8", ""},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", ""},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0", ""}, // every IPv4 address
		{"::ffff:10.1.2.3", "10.1.2.3/32", ""},
		{"127.0.0.0/8,localhost", "", `"localhost"`},
		{"10.0.0.0/33", "", `"10.0.0.0/33"`},
		{"10.0.0/8", "", `"10.0.0/8"`},
		{"fe80::1%eth0", "", `"fe80::1%eth0"`},
	}
	for _, tt := range tests {
		got, err := ParseCIDRs(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCIDRs(%q) = %v, %v; want an error naming %s", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCIDRs(%q): %v", tt.in, err)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if strings.Join(s, ",") != tt.want {
			t.Errorf("ParseCIDRs(%q) = %v, want %s", tt.in, s, tt.want)
		}
	}
}
