package netguard

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()

	long := "https://example.com/" + strings.Repeat("a", MaxURLLength-len("https://example.com/"))
	tests := []struct {
		name   string
		policy Policy
		url    string
		reason string // "" means accepted
	}{
		{name: "https", url: "https://hooks.example.com/surveyhooks?x=1"},
		{name: "https with port", url: "https://hooks.example.com:8443/in"},
		{name: "upper case scheme", url: "HTTPS://hooks.example.com/"},
		{name: "exactly max length", url: long},
		{name: "hostname not resolved", url: "https://localhost/"},
		{name: "public IPv4 literal", url: "https://1.1.1.1/"},
		{name: "public IPv6 literal", url: "https://[2606:4700::1111]:443/"},
		{name: "http refused", url: "http://hooks.example.com/", reason: "must use https"},
		{name: "http allowed", policy: Policy{AllowHTTP: true}, url: "http://hooks.example.com/"},
		{name: "ftp refused", url: "ftp://hooks.example.com/", reason: "must use https"},
		{name: "ftp refused with http", policy: Policy{AllowHTTP: true}, url: "ftp://hooks.example.com/", reason: "must use http or https"},
		{name: "empty", url: "", reason: "must not be empty"},
		{name: "too long", url: long + "a", reason: "must be at most 2048 characters"},
		{name: "relative", url: "/webhooks/in", reason: "must be an absolute URL"},
		{name: "scheme relative", url: "//hooks.example.com/", reason: "must be an absolute URL"},
		{name: "no host", url: "https:///path", reason: "must have a host"},
		{name: "opaque", url: "https:hooks.example.com", reason: "must have a host"},
		{name: "port only", url: "https://:443/", reason: "must have a host"},
		{name: "userinfo", url: "https://user:pass@hooks.example.com/", reason: "must not contain credentials"},
		{name: "user only", url: "https://user@hooks.example.com/", reason: "must not contain credentials"},
		{name: "fragment", url: "https://hooks.example.com/#frag", reason: "must not contain a fragment"},
		{name: "empty fragment", url: "https://hooks.example.com/#", reason: "must not contain a fragment"},
		{name: "port zero", url: "https://hooks.example.com:0/", reason: "must have a port between 1 and 65535"},
		{name: "port too big", url: "https://hooks.example.com:65536/", reason: "must have a port between 1 and 65535"},
		{name: "port huge", url: "https://hooks.example.com:99999999999999999999/", reason: "must have a port between 1 and 65535"},
		{name: "port not a number", url: "https://hooks.example.com:https/", reason: "must be a valid URL"},
		{name: "space in host", url: "https://hooks example.com/", reason: "must be a valid URL"},
		{name: "control character", url: "https://hooks.example.com/\x00", reason: "must be a valid URL"},
		{name: "loopback literal", url: "https://127.0.0.1/", reason: "must not point to a private or reserved address"},
		{name: "loopback literal trailing dot", url: "https://127.0.0.1./", reason: "must not point to a private or reserved address"},
		{name: "metadata literal", url: "http://169.254.169.254/latest/meta-data", policy: Policy{AllowHTTP: true}, reason: "must not point to a private or reserved address"},
		{name: "private literal", url: "https://10.0.0.5:8443/", reason: "must not point to a private or reserved address"},
		{name: "IPv6 loopback literal", url: "https://[::1]/", reason: "must not point to a private or reserved address"},
		{name: "IPv4-mapped literal", url: "https://[::ffff:127.0.0.1]/", reason: "must not point to a private or reserved address"},
		{name: "IPv4-translated literal", url: "https://[::ffff:0:7f00:1]/", reason: "must not point to a private or reserved address"},
		{name: "unique local literal", url: "https://[fd00:ec2::254]/", reason: "must not point to a private or reserved address"},
		{name: "IPv6 zone", url: "https://[fe80::1%25eth0]/", reason: "must not contain an IPv6 zone"},
		{name: "short IPv4 form", url: "https://127.1/", reason: "must use a hostname or a standard IP address"},
		{name: "decimal IPv4 form", url: "https://2130706433/", reason: "must use a hostname or a standard IP address"},
		{name: "hex IPv4 form", url: "https://0x7f.0.0.1/", reason: "must use a hostname or a standard IP address"},
		{name: "octal IPv4 form", url: "https://0177.0.0.1/", reason: "must use a hostname or a standard IP address"},
		{name: "numeric-looking name", url: "https://0xhooks.example.com/"},
		// Non-ASCII hosts are checked as net/http dials them, after IDNA mapping.
		{name: "internationalised name", url: "https://bücher.example/"},
		{name: "internationalised name in capitals", url: "https://BÜCHER.example/"},
		{name: "punycode name", url: "https://xn--bcher-kva.example/"},
		{name: "full-width loopback", url: "https://１２７.０.０.１/", reason: "must not point to a private or reserved address"},
		{name: "ideographic full stops", url: "https://127。0。0。1/", reason: "must not point to a private or reserved address"},
		{name: "full-width short IPv4 form", url: "https://１２７.１/", reason: "must use a hostname or a standard IP address"},
		{name: "full-width public address", url: "https://１.１.１.１/", reason: `must write the host as "1.1.1.1"`},
		{name: "circled letters", url: "https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", reason: `must write the host as "localhost"`},
		{name: "zero-width space", url: "https://loc\u200balhost/", reason: `must write the host as "localhost"`},
		{name: "soft hyphen", url: "https://hooks.exa\u00admple.com/", reason: `must write the host as "hooks.example.com"`},
		{name: "zero-width joiner", url: "https://exa\u200dmple.com/", reason: "must have a valid hostname"},
		{name: "disallowed character", url: "https://a\u0080b.example/", reason: "must have a valid hostname"},
		{
			name:   "allow-listed loopback literal",
			policy: Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
			url:    "http://127.0.0.1:8080/hook",
		},
		{
			name:   "allow-listed IPv6 loopback literal",
			policy: Policy{Allowed: []netip.Prefix{netip.MustParsePrefix("::1/128")}},
			url:    "https://[::1]:8443/hook",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			err := tt.policy.CheckURL(tt.url)
			if tt.reason == "" {
				require.NoError(t, err)
				return
			}
			var urlErr *URLError
			require.ErrorAs(t, err, &urlErr)
			require.Equal(t, tt.reason, urlErr.Reason)
			require.Equal(t, "url "+tt.reason, err.Error())
		})
	}
}

func TestCheckURLBlockedLiteralWrapsErrBlockedAddress(t *testing.T) {
	t.Parallel()

	err := Policy{}.CheckURL("https://[::1]/")
	require.ErrorIs(t, err, ErrBlockedAddress)

	// Other refusals are not about addresses.
	err = Policy{}.CheckURL("http://hooks.example.com/")
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrBlockedAddress))
}

func TestCheckURLErrorHidesCredentials(t *testing.T) {
	t.Parallel()

	err := Policy{}.CheckURL("https://user:s3cret@hooks.example.com/")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}
