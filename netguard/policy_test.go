package netguard

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePrefixes(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ", nil},
		{"127.0.0.0/8", []string{"127.0.0.0/8"}},
		{"127.0.0.0/8, ::1/128", []string{"127.0.0.0/8", "::1/128"}},
		{"10.0.0.1", []string{"10.0.0.1/32"}},
		{"::1", []string{"::1/128"}},
		{"10.1.2.3/8,", []string{"10.0.0.0/8"}},
		{" 192.168.0.0/16 ,fd00::/8 ", []string{"192.168.0.0/16", "fd00::/8"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()

			got, err := ParsePrefixes(tt.in)
			require.NoError(t, err)
			var want []netip.Prefix
			for _, s := range tt.want {
				want = append(want, netip.MustParsePrefix(s))
			}
			require.Equal(t, want, got)
		})
	}
}

func TestParsePrefixesInvalid(t *testing.T) {
	t.Parallel()

	for _, in := range []string{
		"localhost",
		"127.0.0.0/33",
		"10.0.0.0/8, nope",
		"::1/129",
		"fe80::1%eth0",
		"300.0.0.1",
	} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()

			got, err := ParsePrefixes(in)
			require.Error(t, err)
			require.Nil(t, got)
		})
	}
}
