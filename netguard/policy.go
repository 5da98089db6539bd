package netguard

import (
	"fmt"
	"net/netip"
	"strings"
)

// Policy says where deliveries may go. The zero value is the strict default:
// https only, and no blocked range allowed.
type Policy struct {
	// AllowHTTP accepts plain http:// URLs (SURVEYHOOKS_ALLOW_HTTP).
	AllowHTTP bool
	// Allowed lists ranges that may be reached although they are blocked
	// (SURVEYHOOKS_ALLOWED_CIDRS), e.g. loopback for tests and local development.
	Allowed []netip.Prefix
}

// ParsePrefixes parses a comma separated list of CIDR prefixes such as
// "127.0.0.0/8, ::1/128". A bare IP address becomes a /32 or /128 prefix.
// Empty entries are skipped, so "" yields no prefixes.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for field := range strings.SplitSeq(s, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			continue
		}
		prefix, err := parsePrefix(field)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, prefix)
	}
	return prefixes, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("parse prefix %q: %w", s, err)
		}
		// Masked drops host bits, so "10.1.2.3/8" reads back as 10.0.0.0/8.
		return prefix.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parse address %q: %w", s, err)
	}
	if addr.Zone() != "" {
		// A zone names a local interface; it cannot be part of a prefix.
		return netip.Prefix{}, fmt.Errorf("parse address %q: zone not allowed", s)
	}
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// allows reports whether an allow-listed prefix contains addr.
func (p Policy) allows(addr netip.Addr) bool {
	for _, prefix := range p.Allowed {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}
