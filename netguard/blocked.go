package netguard

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrBlockedAddress is wrapped by every error that refuses an address because
// it lies in a blocked range. Callers test for it with errors.Is, which also
// sees through *url.Error and *net.OpError from the HTTP client.
var ErrBlockedAddress = errors.New("blocked address")

// blockedRange is a special-purpose range deliveries must not reach, with the
// name shown in error messages.
type blockedRange struct {
	prefix netip.Prefix
	name   string
}

// blocked4 lists the blocked IPv4 ranges. The first match names the range, so
// a narrower range precedes the range containing it (metadata before
// link-local, broadcast before reserved).
var blocked4 = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// blocked6 lists the blocked IPv6 ranges, narrower ranges first as in
// blocked4. Ranges that embed an IPv4 address (IPv4-mapped, NAT64, 6to4,
// Teredo) are not here: embedded4 extracts the IPv4 address, which is then
// checked against blocked4, so NAT64 to a public address stays usable.
var blocked6 = []blockedRange{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	// Deprecated IPv4-compatible addresses (RFC 4291); nothing routes them.
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	// IPv4-translated addresses (SIIT, RFC 2765: ::ffff:0:a.b.c.d) exist only
	// inside a translator's network; no public destination needs one. Note
	// ::ffff:0:0:0/96, not the IPv4-mapped ::ffff:0:0/96, which embedded4 handles.
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated"},
	// Local-use NAT64 (RFC 8215) translates into a private network.
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	// AWS's IPv6 instance metadata service, inside fc00::/7.
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	teredoPrefix = netip.MustParsePrefix("2001::/32")
)

// CheckAddr reports whether ip may be dialed. It returns an error wrapping
// ErrBlockedAddress, such as "address 127.0.0.1 is blocked (loopback)", when ip
// is in a blocked range that p.Allowed does not cover. An IPv6 address that
// embeds an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) is judged by the
// embedded address as well, since that is where the traffic ends up.
func (p Policy) CheckAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("invalid address is blocked: %w", ErrBlockedAddress)
	}
	// Prefix.Contains never matches an address with a zone, which would let
	// fe80::1%eth0 slip through; the zone does not change the destination range.
	ip = ip.WithZone("")
	if ip.Is4() {
		name, ok := lookup(blocked4, ip)
		if !ok || p.allows(ip) {
			return nil
		}
		return blockedError(ip, name)
	}
	if name, ok := lookup(blocked6, ip); ok {
		if p.allows(ip) {
			return nil
		}
		return blockedError(ip, name)
	}
	for _, e := range embedded4(ip) {
		if !e.addr.IsValid() {
			continue
		}
		name, ok := lookup(blocked4, e.addr)
		if !ok || p.allows(ip) || p.allows(e.addr) {
			continue
		}
		return blockedError(ip, name+" in "+e.form)
	}
	return nil
}

func lookup(ranges []blockedRange, ip netip.Addr) (string, bool) {
	for _, r := range ranges {
		if r.prefix.Contains(ip) {
			return r.name, true
		}
	}
	return "", false
}

func blockedError(ip netip.Addr, name string) error {
	return fmt.Errorf("address %s is blocked (%s): %w", ip, name, ErrBlockedAddress)
}

// embedding is an IPv4 address carried inside an IPv6 address, with the name
// of the mechanism that carries it.
type embedding struct {
	addr netip.Addr
	form string
}

// embedded4 returns the IPv4 addresses an IPv6 address carries. It returns an
// array rather than a slice so that CheckAddr does not allocate; unused
// entries hold the zero Addr. Teredo carries two: the client (stored
// bit-inverted, RFC 4380) and its server.
func embedded4(ip netip.Addr) [2]embedding {
	b := ip.As16()
	switch {
	case ip.Is4In6():
		return [2]embedding{{ip.Unmap(), "IPv4-mapped IPv6"}}
	case nat64Prefix.Contains(ip):
		return [2]embedding{{netip.AddrFrom4([4]byte(b[12:16])), "NAT64"}}
	case sixToFour.Contains(ip):
		return [2]embedding{{netip.AddrFrom4([4]byte(b[2:6])), "6to4"}}
	case teredoPrefix.Contains(ip):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return [2]embedding{
			{netip.AddrFrom4(client), "Teredo"},
			{netip.AddrFrom4([4]byte(b[4:8])), "Teredo server"},
		}
	}
	return [2]embedding{}
}
