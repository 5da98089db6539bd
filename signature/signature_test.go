package signature_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/signature"
)

// testBody is a payload in the shape surveyhooks sends, with non-ASCII text
// so that any re-encoding of the body would break the signatures.
const testBody = `{"event_id":"evt_1","event_type":"survey.response.completed","timestamp":"2025-01-15T10:30:00Z",` +
	`"data":{"survey":{"id":"s1","title":"Zufriedenheit – Café"},"response":{"id":"r1","answers":[{"q":"q1","value":9}]}}}`

func TestSignKnownVector(t *testing.T) {
	t.Parallel()
	// RFC 4231 test case 2 for HMAC-SHA256.
	got := signature.Sign("Jefe", []byte("what do ya want for nothing?"))
	require.Equal(t, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", got)
}

func TestGenerateSecret(t *testing.T) {
	t.Parallel()
	a, err := signature.GenerateSecret()
	require.NoError(t, err)
	b, err := signature.GenerateSecret()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	for _, s := range []string{a, b} {
		rest, ok := strings.CutPrefix(s, signature.SecretPrefix)
		require.True(t, ok, s)
		key, err := base64.StdEncoding.DecodeString(rest)
		require.NoError(t, err)
		require.Len(t, key, 32)
		_, err = standardwebhooks.NewWebhook(s)
		require.NoError(t, err)
	}
}

func TestSignStandardMatchesOfficialSign(t *testing.T) {
	t.Parallel()
	generated, err := signature.GenerateSecret()
	require.NoError(t, err)
	ts := time.Unix(1736937000, 0)
	tests := []struct {
		name   string
		secret string
		wh     func(t *testing.T, secret string) *standardwebhooks.Webhook
	}{
		{"generated whsec secret", generated, officialWebhook},
		{"user-chosen secret", "my own secret, not base64!", officialWebhookRaw},
		// A whsec_ prefix alone does not make a key: the rest must be base64.
		{"whsec prefix without base64", "whsec_not base64?", officialWebhookRaw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, err := tt.wh(t, tt.secret).Sign("msg_1", ts, []byte(testBody))
			require.NoError(t, err)
			require.Equal(t, want, signature.SignStandard(tt.secret, "msg_1", ts, []byte(testBody)))
		})
	}
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	body := []byte(testBody)
	sig := signature.Sign("s3cret", body)
	tests := []struct {
		name   string
		secret string
		header string
		body   []byte
		want   error
	}{
		{"valid", "s3cret", sig, body, nil},
		{"upper-case hex", "s3cret", "sha256=" + strings.ToUpper(strings.TrimPrefix(sig, "sha256=")), body, nil},
		{"wrong secret", "other", sig, body, signature.ErrInvalidSignature},
		{"altered body", "s3cret", sig, []byte(strings.Replace(testBody, "9", "1", 1)), signature.ErrInvalidSignature},
		{"empty header", "s3cret", "", body, signature.ErrMissingSignature},
		{"blank header", "s3cret", "  ", body, signature.ErrMissingSignature},
		{"no prefix", "s3cret", strings.TrimPrefix(sig, "sha256="), body, signature.ErrInvalidSignature},
		{"truncated", "s3cret", sig[:len(sig)-2], body, signature.ErrInvalidSignature},
		{"not hex", "s3cret", "sha256=" + strings.Repeat("zz", 32), body, signature.ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := signature.Verify(tt.secret, tt.header, tt.body)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestHeadersVerifyStandard(t *testing.T) {
	t.Parallel()
	generated, err := signature.GenerateSecret()
	require.NoError(t, err)
	ts := time.Unix(1736937000, 0)
	body := []byte(testBody)
	h := signature.Headers([]string{generated}, "msg_1", ts, body)
	require.Equal(t, "1736937000", h.Get(signature.HeaderWebhookTimestamp))
	require.Equal(t, "msg_1", h.Get(signature.HeaderWebhookID))
	require.Equal(t, signature.Sign(generated, body), h.Get(signature.HeaderSignature))

	without := func(name string) http.Header {
		c := h.Clone()
		c.Del(name)
		return c
	}
	with := func(name, value string) http.Header {
		c := h.Clone()
		c.Set(name, value)
		return c
	}
	tests := []struct {
		name      string
		secret    string
		h         http.Header
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error
	}{
		{"valid", generated, h, body, ts, 0, nil},
		{"at the tolerance edge", generated, h, body, ts.Add(signature.DefaultTolerance), 0, nil},
		{"stale", generated, h, body, ts.Add(signature.DefaultTolerance + time.Second), 0, signature.ErrTimestampTooOld},
		{"future", generated, h, body, ts.Add(-signature.DefaultTolerance - time.Second), 0, signature.ErrTimestampTooNew},
		{"custom tolerance", generated, h, body, ts.Add(time.Minute), 30 * time.Second, signature.ErrTimestampTooOld},
		{"wrong secret", "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key of thirty-two bytes!")), h, body, ts, 0, signature.ErrInvalidSignature},
		{"plain secret is not the generated one", strings.TrimPrefix(generated, "whsec_"), h, body, ts, 0, signature.ErrInvalidSignature},
		{"altered body", generated, h, append([]byte{' '}, body...), ts, 0, signature.ErrInvalidSignature},
		{"altered id", generated, with(signature.HeaderWebhookID, "msg_2"), body, ts, 0, signature.ErrInvalidSignature},
		{"altered timestamp", generated, with(signature.HeaderWebhookTimestamp, "1736937001"), body, ts, 0, signature.ErrInvalidSignature},
		{"timestamp not a number", generated, with(signature.HeaderWebhookTimestamp, "soon"), body, ts, 0, signature.ErrInvalidSignature},
		{"other version only", generated, with(signature.HeaderWebhookSignature, "v1a,"+strings.TrimPrefix(h.Get(signature.HeaderWebhookSignature), "v1,")), body, ts, 0, signature.ErrInvalidSignature},
		{"missing id", generated, without(signature.HeaderWebhookID), body, ts, 0, signature.ErrMissingHeaders},
		{"missing timestamp", generated, without(signature.HeaderWebhookTimestamp), body, ts, 0, signature.ErrMissingHeaders},
		{"missing signature", generated, without(signature.HeaderWebhookSignature), body, ts, 0, signature.ErrMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := signature.VerifyStandard(tt.secret, tt.h, tt.body, tt.now, tt.tolerance)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestHeadersWithoutSecrets(t *testing.T) {
	t.Parallel()
	h := signature.Headers(nil, "msg_1", time.Unix(1, 0), []byte("{}"))
	require.Empty(t, h.Get(signature.HeaderSignature))
	require.Empty(t, h.Get(signature.HeaderWebhookSignature))
	require.ErrorIs(t, signature.VerifyStandard("x", h, []byte("{}"), time.Unix(1, 0), 0), signature.ErrMissingHeaders)
}

// TestHeadersOfficialLibrary checks that the official Standard Webhooks Go
// library verifies what Headers produces, with the key rule of the package
// documentation: NewWebhook for generated secrets, NewWebhookRaw for others.
func TestHeadersOfficialLibrary(t *testing.T) {
	t.Parallel()
	generated, err := signature.GenerateSecret()
	require.NoError(t, err)
	const plain = "user-chosen secret 123"
	body := []byte(testBody)
	// The official Verify compares with time.Now, so sign "now".
	now := time.Now()

	t.Run("generated secret", func(t *testing.T) {
		t.Parallel()
		h := signature.Headers([]string{generated}, "msg_gen", now, body)
		require.NoError(t, officialWebhook(t, generated).Verify(body, h))
		require.ErrorIs(t, officialWebhook(t, generated).Verify([]byte(testBody+" "), h), standardwebhooks.ErrNoMatchingSignature)
	})
	t.Run("user-chosen secret", func(t *testing.T) {
		t.Parallel()
		h := signature.Headers([]string{plain}, "msg_plain", now, body)
		require.NoError(t, officialWebhookRaw(t, plain).Verify(body, h))
		require.ErrorIs(t, officialWebhookRaw(t, "another secret").Verify(body, h), standardwebhooks.ErrNoMatchingSignature)
	})
	t.Run("stale and future timestamps", func(t *testing.T) {
		t.Parallel()
		stale := signature.Headers([]string{generated}, "msg_old", now.Add(-10*time.Minute), body)
		require.ErrorIs(t, officialWebhook(t, generated).Verify(body, stale), standardwebhooks.ErrMessageTooOld)
		future := signature.Headers([]string{generated}, "msg_new", now.Add(10*time.Minute), body)
		require.ErrorIs(t, officialWebhook(t, generated).Verify(body, future), standardwebhooks.ErrMessageTooNew)
	})
	t.Run("rotation overlap", func(t *testing.T) {
		t.Parallel()
		h := signature.Headers([]string{generated, plain}, "msg_rot", now, body)
		require.NoError(t, officialWebhook(t, generated).Verify(body, h))
		require.NoError(t, officialWebhookRaw(t, plain).Verify(body, h))
		third, err := signature.GenerateSecret()
		require.NoError(t, err)
		require.ErrorIs(t, officialWebhook(t, third).Verify(body, h), standardwebhooks.ErrNoMatchingSignature)
	})
}

func TestRotationOverlap(t *testing.T) {
	t.Parallel()
	newest, err := signature.GenerateSecret()
	require.NoError(t, err)
	const previous = "the previous secret"
	third, err := signature.GenerateSecret()
	require.NoError(t, err)
	body := []byte(testBody)
	ts := time.Unix(1736937000, 0)
	h := signature.Headers([]string{newest, previous}, "msg_rot", ts, body)

	sig := h.Get(signature.HeaderSignature)
	require.Equal(t, signature.Sign(newest, body)+" "+signature.Sign(previous, body), sig, "newest first, one space")
	require.Equal(t,
		signature.SignStandard(newest, "msg_rot", ts, body)+" "+signature.SignStandard(previous, "msg_rot", ts, body),
		h.Get(signature.HeaderWebhookSignature))

	for _, secret := range []string{newest, previous} {
		require.NoError(t, signature.Verify(secret, sig, body))
		require.NoError(t, signature.VerifyStandard(secret, h, body, ts, 0))
	}
	require.ErrorIs(t, signature.Verify(third, sig, body), signature.ErrInvalidSignature)
	require.ErrorIs(t, signature.VerifyStandard(third, h, body, ts, 0), signature.ErrInvalidSignature)
}

func officialWebhook(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	return wh
}

func officialWebhookRaw(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhookRaw([]byte(secret))
	require.NoError(t, err)
	return wh
}
