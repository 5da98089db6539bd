package signature

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Format is how the profile header writes an HMAC-SHA256 signature.
type Format string

// The formats of the profile header.
const (
	// FormatSHA256Hex writes "sha256=<hex>", one value per active secret,
	// separated by a space (seed 002's scheme; the default).
	FormatSHA256Hex Format = "sha256=hex"
	// FormatHex writes the bare lower-case hex of the newest secret's HMAC
	// only: receivers of this format (seeds 000 and 003) compare the whole
	// header with one value, so a second value would make every request fail.
	FormatHex Format = "hex"
)

// Profile is the header a platform's receivers already verify: its name and
// how it writes the HMAC-SHA256 of the body. The Standard Webhooks headers are
// sent beside it whatever the profile.
type Profile struct {
	// Header is the header's name, such as X-Webhook-Signature or
	// X-SmartSurvey-Signature.
	Header string
	// Format is how the header writes the signature.
	Format Format
}

// DefaultProfile is X-Webhook-Signature: sha256=<hex>.
var DefaultProfile = Profile{Header: HeaderSignature, Format: FormatSHA256Hex}

// reservedHeaders are the headers every request sets for its own purpose: a
// profile header of the same name would overwrite one of them or be
// overwritten.
var reservedHeaders = []string{
	HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature, HeaderEvent, HeaderDelivery,
	"Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "User-Agent", "Host",
	"Connection", "traceparent", "tracestate",
}

// ParseProfile checks a header name and a format and returns their profile.
// An empty name or format takes DefaultProfile's. The name must be an HTTP
// token and none of the headers surveyhooks sets for another purpose (the
// Standard Webhooks headers among them); the format must be "sha256=hex" or
// "hex".
func ParseProfile(header, format string) (Profile, error) {
	p := DefaultProfile
	if header = strings.TrimSpace(header); header != "" {
		p.Header = header
	}
	if format = strings.TrimSpace(format); format != "" {
		p.Format = Format(format)
	}
	if err := p.validate(); err != nil {
		return Profile{}, err
	}
	p.Header = http.CanonicalHeaderKey(p.Header)
	return p, nil
}

func (p Profile) validate() error {
	if !isToken(p.Header) {
		return fmt.Errorf("signature header %q is not a valid HTTP header name (letters, digits and !#$%%&'*+-.^_`|~ only)", p.Header)
	}
	for _, reserved := range reservedHeaders {
		if strings.EqualFold(p.Header, reserved) {
			return fmt.Errorf("signature header %q is a header surveyhooks sets for another purpose; choose another name such as X-Webhook-Signature", p.Header)
		}
	}
	switch p.Format {
	case FormatSHA256Hex, FormatHex:
		return nil
	default:
		return fmt.Errorf("signature format %q is not one of %q (sha256=<hex>, the default) or %q (bare hex)", p.Format, FormatSHA256Hex, FormatHex)
	}
}

// Keys are what signs one request, newest first: a webhook's HMAC secrets, or
// its ed25519 signing keys. A webhook has one or the other.
type Keys struct {
	Secrets     []string
	SigningKeys []ed25519.PrivateKey
}

// Value returns the profile header's value for body: the HMAC-SHA256 of body
// keyed with each secret's own bytes (the secret exactly as the user copies
// it, "whsec_" prefix included), in the profile's format. "" when there is no
// secret.
func (p Profile) Value(secrets []string, body []byte) string {
	if len(secrets) == 0 {
		return ""
	}
	if p.Format == FormatHex {
		return hexMAC(secrets[0], body)
	}
	values := make([]string, len(secrets))
	for i, secret := range secrets {
		values[i] = Sign(secret, body)
	}
	return strings.Join(values, " ")
}

// Headers returns every signature header of one request: webhook-id,
// webhook-timestamp, webhook-signature with a "v1," value per secret or a
// "v1a," value per signing key (newest first, one space apart), and, for
// secrets, the profile header. An ed25519 webhook gets no profile header: its
// receivers hold no shared secret to check an HMAC with.
func (p Profile) Headers(keys Keys, msgID string, ts time.Time, body []byte) http.Header {
	unix := strconv.FormatInt(ts.Unix(), 10)
	h := make(http.Header, 4)
	h[canonicalWebhookID] = []string{msgID}
	h[canonicalWebhookTimestamp] = []string{unix}
	std := make([]string, 0, len(keys.Secrets)+len(keys.SigningKeys))
	for _, secret := range keys.Secrets {
		std = append(std, "v1,"+string(standardMAC(standardKey(secret), msgID, unix, body)))
	}
	for _, key := range keys.SigningKeys {
		std = append(std, "v1a,"+asymmetricSignature(key, msgID, unix, body))
	}
	if len(std) > 0 {
		h[canonicalWebhookSignature] = []string{strings.Join(std, " ")}
	}
	if v := p.Value(keys.Secrets, body); v != "" {
		h[http.CanonicalHeaderKey(p.Header)] = []string{v}
	}
	return h
}

// isToken reports whether s is an HTTP token (RFC 9110, section 5.6.2), what a
// header name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hexMAC is the bare lower-case hex HMAC-SHA256 of body keyed with the
// secret's bytes.
func hexMAC(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(sum[:0]))
}
