package netguard

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// MaxURLLength is the longest webhook URL CheckURL accepts, in bytes.
const MaxURLLength = 2048

// URLError says why CheckURL refused a URL.
type URLError struct {
	// Reason is a short phrase for the user about the URL, such as
	// "must use https"; the API shows it as the url field's message.
	Reason string

	// err is the underlying cause, when there is one (ErrBlockedAddress for
	// an IP literal in a blocked range).
	err error
}

// Error returns "url " followed by the reason.
func (e *URLError) Error() string {
	return "url " + e.Reason
}

// Unwrap returns the underlying cause, so errors.Is(err, ErrBlockedAddress)
// holds for a refused IP literal.
func (e *URLError) Unwrap() error {
	return e.err
}

// CheckURL validates a webhook URL: absolute, scheme https (http too when
// p.AllowHTTP), a host, no userinfo, no fragment, at most MaxURLLength bytes and
// a valid port. An IP-literal host in a blocked range is refused unless
// p.Allowed covers it. A hostname is not resolved: what it resolves to at
// delivery time is what matters, and the dialer checks that. A non-ASCII host
// is judged by the name net/http dials (see mapHost). Every refusal is a
// *URLError.
func (p Policy) CheckURL(raw string) error {
	if raw == "" {
		return &URLError{Reason: "must not be empty"}
	}
	if len(raw) > MaxURLLength {
		return &URLError{Reason: "must be at most " + strconv.Itoa(MaxURLLength) + " characters"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The parse error quotes the URL back; the reason stays generic.
		return &URLError{Reason: "must be a valid URL", err: err}
	}
	if !u.IsAbs() {
		return &URLError{Reason: "must be an absolute URL"}
	}
	// url.Parse lowercases the scheme, so HTTPS:// arrives here as https.
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowHTTP:
	case p.AllowHTTP:
		return &URLError{Reason: "must use http or https"}
	default:
		return &URLError{Reason: "must use https"}
	}
	if u.Opaque != "" || u.Hostname() == "" {
		// "https:example.com" is absolute but opaque and names no host.
		return &URLError{Reason: "must have a host"}
	}
	if u.User != nil {
		return &URLError{Reason: "must not contain credentials"}
	}
	// Any '#' starts a fragment, even an empty one that url.Parse drops.
	if strings.Contains(raw, "#") {
		return &URLError{Reason: "must not contain a fragment"}
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return &URLError{Reason: "must have a port between 1 and 65535"}
		}
	}
	host, canonical, err := mapHost(u.Hostname())
	if err != nil {
		return err
	}
	if err := p.checkHost(host); err != nil {
		// A blocked address says more than a spelling lesson.
		return err
	}
	if !canonical {
		// One destination, one spelling: nothing stays hidden in a stored URL.
		return &URLError{Reason: "must write the host as " + strconv.Quote(host)}
	}
	return nil
}

// mapHost returns the ASCII host net/http connects to for host, and whether
// host is that name's canonical spelling. net/http passes a non-ASCII host
// through the IDNA Lookup profile (UTS #46), which folds full-width digits,
// ideographic full stops and circled letters into ASCII and drops invisible
// characters, so "１２７。０.０.１" dials 127.0.0.1. An ASCII host is used as it
// is, as net/http does.
func mapHost(host string) (ascii string, canonical bool, err error) {
	if isASCII(host) {
		return host, true, nil
	}
	ascii, err = idna.Lookup.ToASCII(host)
	if err != nil {
		// net/http would dial the raw bytes, which no resolver knows.
		return "", false, &URLError{Reason: "must have a valid hostname", err: err}
	}
	spelled, err := idna.Lookup.ToUnicode(ascii)
	return ascii, err == nil && spelled == strings.ToLower(host), nil
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// checkHost refuses IP literals in blocked ranges and hosts that only look
// like names but which resolvers read as IPv4 addresses.
func (p Policy) checkHost(host string) error {
	addr, err := netip.ParseAddr(strings.TrimSuffix(host, "."))
	if err != nil {
		if endsInNumber(host) {
			// "127.1", "2130706433" and "0x7f.0.0.1" are loopback to
			// inet_aton-style resolvers; no DNS name ends in a number label.
			return &URLError{Reason: "must use a hostname or a standard IP address"}
		}
		return nil
	}
	if addr.Zone() != "" {
		return &URLError{Reason: "must not contain an IPv6 zone"}
	}
	if err := p.CheckAddr(addr); err != nil {
		return &URLError{Reason: "must not point to a private or reserved address", err: err}
	}
	return nil
}

// endsInNumber reports whether the last label of host is a decimal or 0x
// hexadecimal number, the WHATWG URL rule for hosts that are parsed as IPv4.
func endsInNumber(host string) bool {
	host = strings.TrimSuffix(host, ".")
	label := host[strings.LastIndexByte(host, '.')+1:]
	if label == "" {
		return false
	}
	if hex, ok := strings.CutPrefix(strings.ToLower(label), "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return strings.Trim(label, "0123456789") == ""
}
