package netguard

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// None of these tests dial: CheckAddr is pure, so public addresses appear here
// only as values.
func TestCheckAddrBlocked(t *testing.T) {
	t.Parallel()

	tests := []struct {
		addr string
		name string // range name expected in the error
	}{
		// IPv4.
		{"0.0.0.0", "unspecified"},
		{"0.255.255.255", "unspecified"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"169.254.0.1", "link-local"},
		{"169.254.169.254", "cloud metadata"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.254", "reserved"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.1", "documentation"},
		{"203.0.113.1", "documentation"},
		{"192.0.0.1", "IETF protocol assignments"},
		// IPv6.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::7f00:1", "IPv4-compatible"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"fd00:ec2::254", "cloud metadata"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf:ffff::1", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"ff05::1:3", "multicast"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"2001:2::1", "benchmarking"},
		{"100::1", "discard-only"},
		{"64:ff9b:1::1", "local-use NAT64"},
		// IPv4-translated (SIIT, RFC 2765): blocked whatever the IPv4 address.
		{"::ffff:0:7f00:1", "IPv4-translated"},
		{"::ffff:0:101:101", "IPv4-translated"},
		{"::ffff:0:0:0", "IPv4-translated"},
		// IPv4 embedded in IPv6.
		{"::ffff:127.0.0.1", "loopback in IPv4-mapped IPv6"},
		{"::ffff:10.1.2.3", "private in IPv4-mapped IPv6"},
		{"::ffff:169.254.169.254", "cloud metadata in IPv4-mapped IPv6"},
		{"64:ff9b::127.0.0.1", "loopback in NAT64"},
		{"64:ff9b::a9fe:a9fe", "cloud metadata in NAT64"},
		{"64:ff9b::192.168.0.1", "private in NAT64"},
		{"2002:7f00:1::1", "loopback in 6to4"},
		{"2002:a9fe:a9fe::", "cloud metadata in 6to4"},
		{"2002:c0a8:101::1", "private in 6to4"},
		// Teredo client 127.0.0.1 stored inverted: 80ff:fffe; server public 1.2.3.4.
		{"2001:0:102:304::80ff:fffe", "loopback in Teredo"},
		// Teredo server 10.0.0.1, client public 1.1.1.1 (inverted: fefe:fefe).
		{"2001:0:a00:1::fefe:fefe", "private in Teredo server"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()

			ip := netip.MustParseAddr(tt.addr)
			err := Policy{}.CheckAddr(ip)
			require.ErrorIs(t, err, ErrBlockedAddress)
			require.EqualError(t, err, "address "+ip.WithZone("").String()+" is blocked ("+tt.name+"): blocked address")
		})
	}
}

func TestCheckAddrPublic(t *testing.T) {
	t.Parallel()

	for _, addr := range []string{
		"1.1.1.1",
		"8.8.8.8",
		"93.184.215.14",
		"100.63.255.255",  // just below carrier-grade NAT
		"100.128.0.0",     // just above carrier-grade NAT
		"172.15.255.255",  // just below 172.16/12
		"172.32.0.0",      // just above 172.16/12
		"169.253.255.255", // just below link-local
		"223.255.255.255", // just below multicast
		"2606:4700::1111",
		"2a00:1450:4001:80b::200e",
		"::ffff:1.1.1.1",
		"64:ff9b::1.1.1.1",          // NAT64 to a public address
		"2002:101:101::1",           // 6to4 of 1.1.1.1
		"2001:0:102:304::fefe:fefe", // Teredo client 1.1.1.1, server 1.2.3.4
		"fbff:ffff::1",              // just below fc00::/7
		"fe7f:ffff::1",              // just below fe80::/10
	} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()

			require.NoError(t, Policy{}.CheckAddr(netip.MustParseAddr(addr)))
		})
	}
}

func TestCheckAddrInvalid(t *testing.T) {
	t.Parallel()

	require.ErrorIs(t, Policy{}.CheckAddr(netip.Addr{}), ErrBlockedAddress)
}

func TestCheckAddrAllowed(t *testing.T) {
	t.Parallel()

	policy := Policy{Allowed: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("fd00::/8"),
	}}
	tests := []struct {
		addr    string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"127.9.9.9", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true}, // the v4 prefix covers the mapped form
		{"64:ff9b::7f00:1", true},  // and the NAT64 form
		{"10.1.2.3", true},
		{"fd00:ec2::254", true}, // fd00::/8 was allowed explicitly
		{"10.2.0.1", false},     // outside the allowed /16
		{"192.168.0.1", false},
		{"169.254.169.254", false},
		{"fc00::1", false},
		{"1.1.1.1", true}, // public stays allowed
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()

			err := policy.CheckAddr(netip.MustParseAddr(tt.addr))
			if tt.allowed {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrBlockedAddress)
			}
		})
	}
}

func TestCheckAddrMetadataNeedsOwnAllowance(t *testing.T) {
	t.Parallel()

	// Allowing loopback must not open link-local or metadata.
	policy := Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	err := policy.CheckAddr(netip.MustParseAddr("169.254.169.254"))
	require.True(t, errors.Is(err, ErrBlockedAddress))
	require.ErrorContains(t, err, "cloud metadata")
}

func BenchmarkCheckAddr(b *testing.B) {
	policy := Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	for _, bench := range []struct {
		name string
		addr netip.Addr
	}{
		{"public v4", netip.MustParseAddr("1.1.1.1")},
		{"public v6", netip.MustParseAddr("2606:4700::1111")},
		{"NAT64 public", netip.MustParseAddr("64:ff9b::1.1.1.1")},
		{"allowed loopback", netip.MustParseAddr("127.0.0.1")},
		{"blocked private", netip.MustParseAddr("10.0.0.1")},
	} {
		b.Run(bench.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = policy.CheckAddr(bench.addr)
			}
		})
	}
}
