package signature

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Key prefixes of the Standard Webhooks asymmetric (ed25519) scheme.
const (
	// SigningKeyPrefix marks a private signing key: "whsk_" + base64 of the
	// 64-byte ed25519 private key (the seed followed by the public key), the
	// form Svix uses. It never leaves surveyhooks.
	SigningKeyPrefix = "whsk_"
	// PublicKeyPrefix marks a public key: "whpk_" + base64 of the 32-byte
	// ed25519 public key. Receivers verify "v1a," signatures with it.
	PublicKeyPrefix = "whpk_"
)

// ErrInvalidKey means a whsk_ or whpk_ key is not in its form.
var ErrInvalidKey = errors.New("signature: invalid key")

// GenerateSigningKey returns a new random ed25519 signing key in the "whsk_"
// form.
func GenerateSigningKey() (string, error) {
	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate ed25519 key: %w", err)
	}
	return SigningKeyPrefix + base64.StdEncoding.EncodeToString(private), nil
}

// ParseSigningKey reads a "whsk_" signing key. The public half it carries must
// be the one its seed makes.
func ParseSigningKey(key string) (ed25519.PrivateKey, error) {
	raw, ok := strings.CutPrefix(key, SigningKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("signing key has no %s prefix: %w", SigningKeyPrefix, ErrInvalidKey)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(raw)
	if err != nil || len(b) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("signing key is not base64 of %d bytes: %w", ed25519.PrivateKeySize, ErrInvalidKey)
	}
	private := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	if !bytes.Equal(private, b) {
		return nil, fmt.Errorf("signing key's public half does not match its seed: %w", ErrInvalidKey)
	}
	return private, nil
}

// PublicKey returns the "whpk_" public key of a "whsk_" signing key.
func PublicKey(signingKey string) (string, error) {
	private, err := ParseSigningKey(signingKey)
	if err != nil {
		return "", err
	}
	return EncodePublicKey(private.Public().(ed25519.PublicKey)), nil
}

// EncodePublicKey writes an ed25519 public key in the "whpk_" form.
func EncodePublicKey(public ed25519.PublicKey) string {
	return PublicKeyPrefix + base64.StdEncoding.EncodeToString(public)
}

// ParsePublicKey reads a "whpk_" public key.
func ParsePublicKey(key string) (ed25519.PublicKey, error) {
	raw, ok := strings.CutPrefix(key, PublicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("public key has no %s prefix: %w", PublicKeyPrefix, ErrInvalidKey)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(raw)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key is not base64 of %d bytes: %w", ed25519.PublicKeySize, ErrInvalidKey)
	}
	return ed25519.PublicKey(b), nil
}

// asymmetricSignature returns the base64 ed25519 signature of
// "<msgID>.<unix>.<body>". Pure ed25519 hashes the message twice, so it needs
// the message whole: this copies the body once.
func asymmetricSignature(key ed25519.PrivateKey, msgID, unix string, body []byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, signedContent(msgID, unix, body)))
}

func signedContent(msgID, unix string, body []byte) []byte {
	msg := make([]byte, 0, len(msgID)+len(unix)+2+len(body))
	msg = append(msg, msgID...)
	msg = append(msg, '.')
	msg = append(msg, unix...)
	msg = append(msg, '.')
	return append(msg, body...)
}

// VerifyAsymmetric checks the Standard Webhooks headers in h against body with
// one or more "whpk_" public keys (during a key rotation, the previous key
// too): the timestamp must lie within tolerance of now (zero or negative
// tolerance means DefaultTolerance), and one "v1a,<base64>" value must be a
// valid signature by one of the keys. It returns ErrMissingHeaders,
// ErrTimestampTooOld, ErrTimestampTooNew, ErrInvalidSignature, or
// ErrInvalidKey for a key not in the whpk_ form.
func VerifyAsymmetric(publicKeys []string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	keys := make([]ed25519.PublicKey, len(publicKeys))
	for i, k := range publicKeys {
		var err error
		if keys[i], err = ParsePublicKey(k); err != nil {
			return err
		}
	}
	msgID, unixText, values, err := standardHeaders(h, now, tolerance)
	if err != nil {
		return err
	}
	msg := signedContent(msgID, unixText, body)
	for _, v := range values {
		sig, ok := strings.CutPrefix(v, "v1a,")
		if !ok {
			continue // v1 values are checked with a secret (VerifyStandard)
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		if err != nil || len(raw) != ed25519.SignatureSize {
			continue
		}
		for _, key := range keys {
			if ed25519.Verify(key, msg, raw) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}
