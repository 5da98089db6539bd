package signature_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/signature"
)

// The code between the markers is the Go ed25519 example of docs/receivers.md (it uses
// tolerance from the standard-library verifier above it); TestReceiversDocInSync keeps the
// two identical.

// receivers.md:ed25519:begin
// publicKey reads a "whpk_<base64 of 32 bytes>" key (GET .../public-key).
func publicKey(whpk string) (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(whpk, "whpk_"))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("not a whpk_ public key")
	}
	return ed25519.PublicKey(raw), nil
}

// verifyEd25519 checks webhook-id, webhook-timestamp and the "v1a,<base64>"
// values of webhook-signature against one or more public keys (during a key
// rotation, the previous key too).
func verifyEd25519(payload []byte, h http.Header, keys ...ed25519.PublicKey) bool {
	msgID := h.Get("webhook-id")
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if msgID == "" || err != nil {
		return false
	}
	if age := time.Since(time.Unix(ts, 0)); age > tolerance || age < -tolerance {
		return false // too old or too new: a replay or a wrong clock
	}
	signed := append([]byte(fmt.Sprintf("%s.%d.", msgID, ts)), payload...)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		value, ok := strings.CutPrefix(sig, "v1a,")
		raw, err := base64.StdEncoding.DecodeString(value)
		if !ok || err != nil {
			continue
		}
		for _, key := range keys {
			if ed25519.Verify(key, signed, raw) {
				return true
			}
		}
	}
	return false
}

// receivers.md:ed25519:end

// ed25519Headers signs body with keys, newest first, as a delivery of an ed25519 webhook.
func ed25519Headers(keys []signingKey, ts time.Time, body []byte) http.Header {
	private := make([]ed25519.PrivateKey, len(keys))
	for i, k := range keys {
		private[i] = k.private
	}
	return signature.DefaultProfile.Headers(signature.Keys{SigningKeys: private}, "msg_ed", ts, body)
}

func TestStdlibEd25519Verifier(t *testing.T) {
	t.Parallel()
	newest, previous, third := newSigningKey(t), newSigningKey(t), newSigningKey(t)
	body := []byte(testBody)
	now := time.Now()
	key := func(k signingKey) ed25519.PublicKey {
		p, err := publicKey(k.public)
		require.NoError(t, err)
		return p
	}
	tests := []struct {
		name   string
		signed []signingKey
		with   []ed25519.PublicKey
		ts     time.Time
		body   []byte
		want   bool
	}{
		{"one key", []signingKey{newest}, []ed25519.PublicKey{key(newest)}, now, body, true},
		{"rotation, newest", []signingKey{newest, previous}, []ed25519.PublicKey{key(newest)}, now, body, true},
		{"rotation, previous", []signingKey{newest, previous}, []ed25519.PublicKey{key(previous)}, now, body, true},
		{"another key", []signingKey{newest, previous}, []ed25519.PublicKey{key(third)}, now, body, false},
		{"altered body", []signingKey{newest}, []ed25519.PublicKey{key(newest)}, now, append([]byte{' '}, body...), false},
		{"stale", []signingKey{newest}, []ed25519.PublicKey{key(newest)}, now.Add(-6 * time.Minute), body, false},
		{"future", []signingKey{newest}, []ed25519.PublicKey{key(newest)}, now.Add(6 * time.Minute), body, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, verifyEd25519(tt.body, ed25519Headers(tt.signed, tt.ts, body), tt.with...))
		})
	}
	_, err := publicKey("whpk_short")
	require.Error(t, err)
}

// TestEd25519VerifierScript runs the Node.js ed25519 verifier of docs/receivers.md
// (crypto.verify, independent of this package) against Headers' output.
func TestEd25519VerifierScript(t *testing.T) {
	t.Parallel()
	newest, previous, third := newSigningKey(t), newSigningKey(t), newSigningKey(t)
	body := []byte(testBody)
	now := time.Now()
	run := func(h http.Header, body []byte, keys ...signingKey) bool {
		args := []string{h.Get(signature.HeaderWebhookID), h.Get(signature.HeaderWebhookTimestamp), h.Get(signature.HeaderWebhookSignature)}
		for _, k := range keys {
			args = append(args, k.public)
		}
		return runScript(t, "node", "verify_ed25519.js", args, body)
	}
	rotating := ed25519Headers([]signingKey{newest, previous}, now, body)
	require.True(t, run(rotating, body, newest))
	require.True(t, run(rotating, body, previous))
	require.True(t, run(rotating, body, third, previous), "a receiver holding both keys")
	require.False(t, run(rotating, body, third))
	require.False(t, run(rotating, append([]byte{' '}, body...), newest))
	require.False(t, run(ed25519Headers([]signingKey{newest}, now.Add(-10*time.Minute), body), body, newest))
	hmac := signature.Headers([]string{"a shared secret"}, "msg_ed", now, body)
	require.False(t, run(hmac, body, newest), "v1 values are not ed25519 signatures")
}
