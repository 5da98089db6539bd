package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors returned by Verify and VerifyStandard. Callers should match them
// with errors.Is: they may be wrapped with detail.
var (
	// ErrMissingSignature means the X-Webhook-Signature value is empty.
	ErrMissingSignature = errors.New("signature: missing signature")
	// ErrMissingHeaders means one of webhook-id, webhook-timestamp or
	// webhook-signature is absent.
	ErrMissingHeaders = errors.New("signature: missing standard webhooks headers")
	// ErrInvalidSignature means no signature in the header matches any secret,
	// or the header cannot be parsed.
	ErrInvalidSignature = errors.New("signature: invalid signature")
	// ErrTimestampTooOld means webhook-timestamp is older than the tolerance.
	ErrTimestampTooOld = errors.New("signature: timestamp too old")
	// ErrTimestampTooNew means webhook-timestamp is further in the future than
	// the tolerance.
	ErrTimestampTooNew = errors.New("signature: timestamp too new")
)

// Verify checks an X-Webhook-Signature header value against body. The value
// may hold one or several space-separated "sha256=<hex>" signatures (a secret
// rotation); one match is enough. The comparison runs in constant time.
// It returns ErrMissingSignature for an empty value and ErrInvalidSignature
// when nothing matches.
func Verify(secret, header string, body []byte) error {
	return verifyAny([]string{secret}, header, body)
}

// verifyAny is Verify for a receiver that accepts several secrets.
func verifyAny(secrets []string, header string, body []byte) error {
	values := strings.Fields(header)
	if len(values) == 0 {
		return ErrMissingSignature
	}
	var want [sha256.Size]byte
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		expected := mac.Sum(want[:0])
		for _, v := range values {
			hexSig, ok := strings.CutPrefix(v, "sha256=")
			if !ok || hex.DecodedLen(len(hexSig)) != sha256.Size {
				continue
			}
			var got [sha256.Size]byte
			if _, err := hex.Decode(got[:], []byte(hexSig)); err != nil {
				continue
			}
			if hmac.Equal(got[:], expected) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}

// VerifyStandard checks the Standard Webhooks headers in h against body: the
// timestamp must lie within tolerance of now (zero or negative tolerance means
// DefaultTolerance), and one of the space-separated "v1,<base64>" values must
// match. It returns ErrMissingHeaders, ErrTimestampTooOld, ErrTimestampTooNew
// or ErrInvalidSignature. The timestamp is checked first because a signature
// over a stale timestamp proves nothing about this request.
func VerifyStandard(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	return verifyStandardAny([]string{secret}, h, body, now, tolerance)
}

// verifyStandardAny is VerifyStandard for a receiver that accepts several
// secrets.
func verifyStandardAny(secrets []string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	msgID, unixText, values, err := standardHeaders(h, now, tolerance)
	if err != nil {
		return err
	}
	for _, secret := range secrets {
		expected := standardMAC(standardKey(secret), msgID, unixText, body)
		for _, v := range values {
			sig, ok := strings.CutPrefix(v, "v1,")
			if !ok {
				// Other versions (such as v1a, asymmetric) are checked with a public key.
				continue
			}
			if hmac.Equal([]byte(sig), expected) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}

// standardHeaders reads the Standard Webhooks headers of a request whose
// timestamp lies within tolerance of now: the message id, the timestamp as
// signed and the signature header's values. The timestamp is checked first
// because a signature over a stale timestamp proves nothing about this
// request.
func standardHeaders(h http.Header, now time.Time, tolerance time.Duration) (msgID, unixText string, values []string, err error) {
	msgID = h.Get(HeaderWebhookID)
	rawTS := h.Get(HeaderWebhookTimestamp)
	sigHeader := h.Get(HeaderWebhookSignature)
	if msgID == "" || rawTS == "" || strings.TrimSpace(sigHeader) == "" {
		return "", "", nil, ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(rawTS, 10, 64)
	if err != nil {
		return "", "", nil, fmt.Errorf("parse %s: %w", HeaderWebhookTimestamp, ErrInvalidSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts := time.Unix(unix, 0)
	if now.Sub(ts) > tolerance {
		return "", "", nil, ErrTimestampTooOld
	}
	if ts.Sub(now) > tolerance {
		return "", "", nil, ErrTimestampTooNew
	}
	// Sign over the re-formatted number, like the official libraries, so
	// "0123" and "123" mean the same message.
	return msgID, strconv.FormatInt(unix, 10), strings.Fields(sigHeader), nil
}
