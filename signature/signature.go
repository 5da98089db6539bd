package signature

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names and defaults shared by the sender and receivers.
const (
	// HeaderSignature carries "sha256=<hex>" values, one per active secret,
	// under DefaultProfile; a Profile may name another header.
	HeaderSignature = "X-Webhook-Signature"
	// HeaderWebhookID is the Standard Webhooks message ID; it stays the same
	// across retries of one delivery, so receivers can deduplicate on it.
	HeaderWebhookID = "webhook-id"
	// HeaderWebhookTimestamp is the Standard Webhooks signing time in unix seconds.
	HeaderWebhookTimestamp = "webhook-timestamp"
	// HeaderWebhookSignature carries "v1,<base64>" values, one per active secret.
	HeaderWebhookSignature = "webhook-signature"
	// HeaderEvent names the event type, so receivers can route before parsing.
	HeaderEvent = "X-Webhook-Event"
	// HeaderDelivery is the surveyhooks delivery ID, as shown in the delivery log.
	HeaderDelivery = "X-Webhook-Delivery"
	// SecretPrefix marks a secret whose remainder is the base64 Standard
	// Webhooks key.
	SecretPrefix = "whsec_"
	// DefaultTolerance is how far a webhook-timestamp may be from the
	// receiver's clock, the value the Standard Webhooks libraries use.
	DefaultTolerance = 5 * time.Minute
)

// secretBytes is the amount of randomness in a generated secret: 256 bits,
// the size of an HMAC-SHA256 output and within the 24 to 64 bytes the
// Standard Webhooks spec asks for.
const secretBytes = 32

// Event is the JSON envelope surveyhooks POSTs to every webhook.
type Event struct {
	// EventID identifies the event; the same event delivered twice has the
	// same ID.
	EventID string `json:"event_id"`
	// EventType is a registered type (such as survey.response.completed), webhook.test, or
	// one of surveyhooks' notices (webhook.disabled).
	EventType string `json:"event_type"`
	// Timestamp is when the event happened (RFC 3339).
	Timestamp time.Time `json:"timestamp"`
	// Data is the event's payload, left raw so receivers decode what they need.
	Data json.RawMessage `json:"data"`
}

// GenerateSecret returns a new random secret in the Standard Webhooks form
// "whsec_" + base64(32 random bytes).
func GenerateSecret() (string, error) {
	key := make([]byte, secretBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// Sign returns the X-Webhook-Signature value for body: "sha256=" followed by
// the lower-case hex HMAC-SHA256 of body keyed with the secret's bytes.
func Sign(secret string, body []byte) string {
	const prefix = "sha256="
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	var sum [sha256.Size]byte
	out := make([]byte, len(prefix)+hex.EncodedLen(sha256.Size))
	copy(out, prefix)
	hex.Encode(out[len(prefix):], mac.Sum(sum[:0]))
	return string(out)
}

// SignStandard returns one Standard Webhooks signature, "v1,<base64>", over
// "<msgID>.<unix seconds of ts>.<body>". See the package documentation for how
// the key is derived from secret.
func SignStandard(secret, msgID string, ts time.Time, body []byte) string {
	return "v1," + string(standardMAC(standardKey(secret), msgID, strconv.FormatInt(ts.Unix(), 10), body))
}

// Headers returns every signature header for one request signed with HMAC
// secrets under DefaultProfile: X-Webhook-Signature, webhook-id,
// webhook-timestamp and webhook-signature. Each signature header holds one
// value per secret, in the order given (newest first by convention),
// separated by a single space. With no secrets only webhook-id and
// webhook-timestamp are set. Profile.Headers signs under another profile or
// with ed25519 keys.
func Headers(secrets []string, msgID string, ts time.Time, body []byte) http.Header {
	return DefaultProfile.Headers(Keys{Secrets: secrets}, msgID, ts, body)
}

// Canonical header keys, computed once because Headers runs for every
// delivery attempt.
var (
	canonicalWebhookID        = http.CanonicalHeaderKey(HeaderWebhookID)
	canonicalWebhookTimestamp = http.CanonicalHeaderKey(HeaderWebhookTimestamp)
	canonicalWebhookSignature = http.CanonicalHeaderKey(HeaderWebhookSignature)
)

// standardKey derives the Standard Webhooks HMAC key from a secret: the
// decoded remainder of a "whsec_<base64>" secret, else the secret's own bytes.
// Line breaks are refused explicitly because Go's decoder skips them while
// the other languages' strict decoders do not; the rule must give the same key
// everywhere.
func standardKey(secret string) []byte {
	rest, ok := strings.CutPrefix(secret, SecretPrefix)
	if ok && rest != "" && !strings.ContainsAny(rest, "\r\n") {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return key
		}
	}
	return []byte(secret)
}

// standardMAC returns the base64 HMAC-SHA256 of "<msgID>.<unix>.<body>".
// The parts are written one by one so the body is never copied.
func standardMAC(key []byte, msgID, unix string, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write([]byte(unix))
	mac.Write([]byte{'.'})
	mac.Write(body)
	var sum [sha256.Size]byte
	out := make([]byte, base64.StdEncoding.EncodedLen(sha256.Size))
	base64.StdEncoding.Encode(out, mac.Sum(sum[:0]))
	return out
}
