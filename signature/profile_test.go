package signature_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/signature"
)

func TestParseProfile(t *testing.T) {
	t.Parallel()
	p, err := signature.ParseProfile("", "")
	require.NoError(t, err)
	require.Equal(t, signature.DefaultProfile, p)

	p, err = signature.ParseProfile(" x-smartsurvey-signature ", "hex")
	require.NoError(t, err)
	require.Equal(t, signature.Profile{Header: "X-Smartsurvey-Signature", Format: signature.FormatHex}, p)

	for _, tt := range []struct{ header, format, want string }{
		{"X Webhook Signature", "", "not a valid HTTP header name"},
		{"X-Signature:", "", "not a valid HTTP header name"},
		{"X-Sïgnature", "", "not a valid HTTP header name"},
		{"webhook-signature", "", "sets for another purpose"},
		{"Webhook-Id", "", "sets for another purpose"},
		{"WEBHOOK-TIMESTAMP", "", "sets for another purpose"},
		{"X-Webhook-Event", "", "sets for another purpose"},
		{"content-type", "", "sets for another purpose"},
		{"", "base64", `"base64" is not one of`},
		{"", "SHA256=HEX", "is not one of"},
	} {
		_, err := signature.ParseProfile(tt.header, tt.format)
		require.ErrorContains(t, err, tt.want, "%q %q", tt.header, tt.format)
	}
}

// TestProfileKeyIsTheSecretAsShown pins the profile header's HMAC key: the
// secret string's own bytes, "whsec_" prefix included, whatever its form (the
// seeds' createHmac('sha256', secret)), never the decoded bytes that Standard
// Webhooks uses.
func TestProfileKeyIsTheSecretAsShown(t *testing.T) {
	t.Parallel()
	generated, err := signature.GenerateSecret()
	require.NoError(t, err)
	body := []byte(testBody)
	for _, secret := range []string{generated, "user-chosen secret"} {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		want := hex.EncodeToString(mac.Sum(nil))
		for _, p := range []signature.Profile{
			{Header: "X-Smartsurvey-Signature", Format: signature.FormatHex},
			signature.DefaultProfile,
		} {
			h := p.Headers(signature.Keys{Secrets: []string{secret}}, "msg_1", time.Now(), body)
			got := h.Get(p.Header)
			require.Equal(t, want, strings.TrimPrefix(got, "sha256="), "%s %s", p.Format, secret)
			require.Equal(t, p.Format == signature.FormatSHA256Hex, strings.HasPrefix(got, "sha256="))
			require.False(t, p.Header != signature.HeaderSignature && h.Get(signature.HeaderSignature) != "", "only the profile's header")
			require.NoError(t, signature.VerifyStandard(secret, h, body, time.Now(), 0), "Standard Webhooks always")
		}
	}
}

// TestProfileRotation: sha256=hex carries every active secret; hex carries the
// newest only, since its receivers compare the whole header with one value.
func TestProfileRotation(t *testing.T) {
	t.Parallel()
	body := []byte(testBody)
	secrets := []string{"newest secret", "previous secret"}
	hexProfile := signature.Profile{Header: signature.HeaderSignature, Format: signature.FormatHex}
	require.Equal(t, strings.TrimPrefix(signature.Sign("newest secret", body), "sha256="), hexProfile.Value(secrets, body))
	require.Equal(t, signature.Sign("newest secret", body)+" "+signature.Sign("previous secret", body),
		signature.DefaultProfile.Value(secrets, body))
	require.Empty(t, hexProfile.Value(nil, body))

	h := hexProfile.Headers(signature.Keys{Secrets: secrets}, "msg_rot", time.Now(), body)
	for _, secret := range secrets {
		require.NoError(t, signature.VerifyStandard(secret, h, body, time.Now(), 0), "Standard Webhooks carries both")
	}
}

func TestSigningKeys(t *testing.T) {
	t.Parallel()
	key, err := signature.GenerateSigningKey()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(key, "whsk_"), key)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, "whsk_"))
	require.NoError(t, err)
	require.Len(t, raw, 64, "seed and public key, as Svix writes it")
	private, err := signature.ParseSigningKey(key)
	require.NoError(t, err)

	public, err := signature.PublicKey(key)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(public, "whpk_"), public)
	parsed, err := signature.ParsePublicKey(public)
	require.NoError(t, err)
	require.Equal(t, private.Public(), parsed)
	require.Equal(t, []byte(raw[32:]), []byte(parsed))

	other, err := signature.GenerateSigningKey()
	require.NoError(t, err)
	otherRaw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(other, "whsk_"))
	mismatched := "whsk_" + base64.StdEncoding.EncodeToString(append(raw[:32:32], otherRaw[32:]...))
	for _, bad := range []string{"", strings.TrimPrefix(key, "whsk_"), "whsk_not base64", "whsk_" + base64.StdEncoding.EncodeToString(raw[:32]), mismatched, public} {
		_, err := signature.ParseSigningKey(bad)
		require.ErrorIs(t, err, signature.ErrInvalidKey, bad)
	}
	for _, bad := range []string{"", strings.TrimPrefix(public, "whpk_"), "whpk_" + base64.StdEncoding.EncodeToString(raw), key} {
		_, err := signature.ParsePublicKey(bad)
		require.ErrorIs(t, err, signature.ErrInvalidKey, bad)
	}
}

func TestAsymmetricHeaders(t *testing.T) {
	t.Parallel()
	newest, previous, third := newSigningKey(t), newSigningKey(t), newSigningKey(t)
	body := []byte(testBody)
	ts := time.Unix(1736937000, 0)
	h := signature.DefaultProfile.Headers(signature.Keys{SigningKeys: []ed25519.PrivateKey{newest.private, previous.private}}, "msg_1", ts, body)
	require.Empty(t, h.Get(signature.HeaderSignature), "no shared secret, no HMAC header")
	values := strings.Split(h.Get(signature.HeaderWebhookSignature), " ")
	require.Len(t, values, 2)
	for i, k := range []signingKey{newest, previous} {
		sig, ok := strings.CutPrefix(values[i], "v1a,")
		require.True(t, ok, values[i])
		raw, err := base64.StdEncoding.DecodeString(sig)
		require.NoError(t, err)
		require.True(t, ed25519.Verify(k.private.Public().(ed25519.PublicKey), []byte("msg_1.1736937000."+testBody), raw), "newest first")
	}

	with := func(name, value string) http.Header {
		c := h.Clone()
		c.Set(name, value)
		return c
	}
	tests := []struct {
		name string
		keys []string
		h    http.Header
		body []byte
		now  time.Time
		want error
	}{
		{"newest key", []string{newest.public}, h, body, ts, nil},
		{"previous key", []string{previous.public}, h, body, ts, nil},
		{"receiver holding both", []string{third.public, previous.public}, h, body, ts, nil},
		{"another key", []string{third.public}, h, body, ts, signature.ErrInvalidSignature},
		{"altered body", []string{newest.public}, h, append([]byte{' '}, body...), ts, signature.ErrInvalidSignature},
		{"altered id", []string{newest.public}, with(signature.HeaderWebhookID, "msg_2"), body, ts, signature.ErrInvalidSignature},
		{"v1 label on an ed25519 signature", []string{newest.public}, with(signature.HeaderWebhookSignature, "v1,"+strings.TrimPrefix(values[0], "v1a,")), body, ts, signature.ErrInvalidSignature},
		{"stale", []string{newest.public}, h, body, ts.Add(signature.DefaultTolerance + time.Second), signature.ErrTimestampTooOld},
		{"future", []string{newest.public}, h, body, ts.Add(-signature.DefaultTolerance - time.Second), signature.ErrTimestampTooNew},
		{"missing signature", []string{newest.public}, with(signature.HeaderWebhookSignature, ""), body, ts, signature.ErrMissingHeaders},
		{"not a public key", []string{"whsec_abc"}, h, body, ts, signature.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := signature.VerifyAsymmetric(tt.keys, tt.h, tt.body, tt.now, 0)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
	// A v1a value is no HMAC: a secret verifies nothing here.
	require.ErrorIs(t, signature.VerifyStandard("whsec_"+base64.StdEncoding.EncodeToString(make([]byte, 32)), h, body, ts, 0), signature.ErrInvalidSignature)
}

type signingKey struct {
	key, public string
	private     ed25519.PrivateKey
}

func newSigningKey(t *testing.T) signingKey {
	t.Helper()
	key, err := signature.GenerateSigningKey()
	require.NoError(t, err)
	private, err := signature.ParseSigningKey(key)
	require.NoError(t, err)
	public, err := signature.PublicKey(key)
	require.NoError(t, err)
	return signingKey{key: key, public: public, private: private}
}
