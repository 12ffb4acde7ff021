package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"syscall"
)

// RefusedAddressError is the error of a request whose target resolved to
// an address hookd must not dial (loopback, private, link-local...): a
// webhook must never become a way to reach hookd's own network (SSRF).
// errors.As finds it through the *url.Error of http.Client.Do.
//
// Its message names neither the address nor its kind: it is recorded in
// the delivery log, which the webhook's owner reads, and saying that
// some-internal-name is 10.1.2.3 would map hookd's network for them.
type RefusedAddressError struct {
	Addr netip.Addr
	// Reason names the kind of address, as in "loopback"; empty, it is
	// worked out from Addr.
	Reason string
}

// RefusedMessage is what a refused target is recorded and logged as.
const RefusedMessage = "refused: the target resolves to a non-public address; see HOOKD_ALLOWED_TARGET_CIDRS"

func (e *RefusedAddressError) Error() string { return RefusedMessage }

// blocked lists the non-public ranges, most specific first so that the
// reason is the precise one. IPv4-mapped IPv6 addresses are unmapped
// before they are looked up, and IPv6 outside 2000::/3 (global unicast) is
// refused whether listed or not.
var blocked = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (carrier-grade NAT)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},

	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"}, // 198.18.0.0/15's IPv6 twin (RFC 5180)
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("fc00::/7"), "unique local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	wellKnownNAT64 = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// refusal says why a may not be dialled, or "" when it is a public
// address. nat64 are the network's own NAT64 prefixes, beside the
// well-known one.
func refusal(a netip.Addr, nat64 []netip.Prefix) string {
	a = a.WithZone("").Unmap()
	// The network's own NAT64 prefixes first (the longest, should they
	// nest): one may well be in a range refused below (unique local,
	// say), and what a gateway reaches through it is the IPv4 address it
	// carries.
	bits := -1
	for _, p := range nat64 {
		if p.Contains(a) {
			bits = max(bits, p.Bits())
		}
	}
	if bits >= 0 {
		return embedded("NAT64", nat64Embedded(a, bits))
	}
	for _, b := range blocked {
		if b.prefix.Contains(a) {
			return b.reason
		}
	}
	if a.Is4() {
		return ""
	}
	// Translation prefixes carry an IPv4 address that a gateway reaches
	// on hookd's behalf: they are as public as the address they carry.
	raw := a.As16()
	switch {
	case wellKnownNAT64.Contains(a):
		return embedded("NAT64", nat64Embedded(a, wellKnownNAT64.Bits()))
	case sixToFour.Contains(a):
		return embedded("6to4", netip.AddrFrom4([4]byte(raw[2:6])))
	}
	if !globalUnicast6.Contains(a) {
		return "non-global IPv6"
	}
	return ""
}

func embedded(kind string, v4 netip.Addr) string {
	if r := refusal(v4, nil); r != "" {
		return fmt.Sprintf("%s (embedding %s, %s)", kind, v4, r)
	}
	return ""
}

// nat64Embedded is the IPv4 address that a, in a NAT64 prefix of bits
// bits, carries: the 32 bits after the prefix, skipping bits 64 to 71,
// which RFC 6052 (section 2.2) keeps zero.
func nat64Embedded(a netip.Addr, bits int) netip.Addr {
	raw := a.As16()
	var v4 [4]byte
	for i, n := bits/8, 0; n < 4; i++ {
		if i != 8 {
			v4[n] = raw[i]
			n++
		}
	}
	return netip.AddrFrom4(v4)
}

// checkAddr returns a *RefusedAddressError unless a is public or inside
// one of the allowed prefixes; nat64 are the network's own NAT64
// prefixes.
func checkAddr(a netip.Addr, allowed, nat64 []netip.Prefix) error {
	a = a.WithZone("")
	for _, p := range allowed {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return nil
		}
	}
	if r := refusal(a, nat64); r != "" {
		return &RefusedAddressError{Addr: a.Unmap(), Reason: r}
	}
	return nil
}

// dialControl returns a net.Dialer ControlContext that checks the address
// actually being dialled, after name resolution and for every address
// tried, so a name that resolves (or rebinds) to a private address is
// refused before a packet is sent.
func dialControl(allowed, nat64 []netip.Prefix) func(ctx context.Context, network, address string, c syscall.RawConn) error {
	return func(_ context.Context, network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("refused to connect to %q: not an IP address and port", address)
		}
		return checkAddr(ap.Addr(), allowed, nat64)
	}
}

// ParseCIDRs parses a comma-separated list of prefixes such as
// "127.0.0.0/8,::1/128" (HOOKD_ALLOWED_TARGET_CIDRS). A bare address is
// a prefix of that single address; empty entries are skipped.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(entry, "/") {
			var err error
			if p, err = netip.ParsePrefix(entry); err != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix like 10.0.0.0/8 or fd00::/8", entry)
			}
		} else {
			a, err := netip.ParseAddr(entry)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an IP address or a CIDR prefix like 10.0.0.0/8", entry)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		// Dialled addresses are checked unmapped, so an IPv4-mapped prefix
		// is kept as the IPv4 prefix it means.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// nat64Lengths are the prefix lengths RFC 6052 defines an embedding for.
var nat64Lengths = []int{32, 40, 48, 56, 64, 96}

// ParseNAT64Prefixes parses a comma-separated list of NAT64 prefixes
// (HOOKD_NAT64_PREFIXES), such as "2001:db8:64::/96".
func ParseNAT64Prefixes(s string) ([]netip.Prefix, error) {
	ps, err := ParseCIDRs(s)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if !p.Addr().Is6() || !slices.Contains(nat64Lengths, p.Bits()) {
			return nil, fmt.Errorf("%s is not a NAT64 prefix: one is IPv6, of length 32, 40, 48, 56, 64 or 96 (RFC 6052)", p)
		}
	}
	return ps, nil
}

// The IPv4 addresses a DNS64 resolver synthesizes ipv4only.arpa's IPv6
// addresses from (RFC 7050).
var ipv4onlyArpa = []netip.Addr{netip.MustParseAddr("192.0.0.170"), netip.MustParseAddr("192.0.0.171")}

// DiscoverNAT64 finds the network's NAT64 prefixes as RFC 7050 says: a
// DNS64 resolver answers ipv4only.arpa's IPv6 addresses (it has only
// IPv4 ones) by embedding 192.0.0.170 and 192.0.0.171 in its prefix,
// which is where they are found. No DNS64 (the name has no IPv6
// address) is no prefix and no error. The well-known prefix
// 64:ff9b::/96 is left out: it is always checked. lookup is
// net.Resolver's LookupNetIP.
func DiscoverNAT64(ctx context.Context, lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)) ([]netip.Prefix, error) {
	addrs, err := lookup(ctx, "ip6", "ipv4only.arpa")
	if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, nil
	}
	// The cgo resolver answers the name's IPv4 addresses, which net
	// filters out of an ip6 lookup: no IPv6 address either.
	if addrErr := (*net.AddrError)(nil); errors.As(err, &addrErr) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("discover NAT64 prefixes: %w", err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if !a.Is6() || a.Is4In6() {
			continue
		}
		for _, bits := range nat64Lengths {
			// Bits 64 to 71 are zero in every embedding but /96's, where
			// they are the prefix's.
			if raw := a.As16(); bits < 96 && raw[8] != 0 {
				continue
			}
			if !slices.Contains(ipv4onlyArpa, nat64Embedded(a, bits)) {
				continue
			}
			if p := netip.PrefixFrom(a, bits).Masked(); p != wellKnownNAT64 && !slices.Contains(out, p) {
				out = append(out, p)
			}
			break
		}
	}
	return out, nil
}
