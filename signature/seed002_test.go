package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/signature"
)

// The two functions below are the Go snippet of seed 002 (Popsee's webhook
// documentation), copied verbatim except for the header name
// (X-Popsee-Signature -> X-Webhook-Signature) and gofmt's layout. They are
// an independent verifier: if they accept Sign's output, receivers who
// followed that documentation need only change the header name.

func verifyWebhook(payload []byte, signature, secret string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(payload)
	expected := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(expected), []byte(signature))
}

func webhookHandler(w http.ResponseWriter, r *http.Request) {
	payload, _ := io.ReadAll(r.Body)
	signature := r.Header.Get("X-Webhook-Signature")
	if !verifyWebhook(payload, signature, os.Getenv("WEBHOOK_SECRET")) {
		http.Error(w, "Invalid signature", http.StatusUnauthorized)
		return
	}
	// Process webhook...
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("OK"))
}

// TestSeed002GoSnippet is not parallel: the snippet reads its secret from the
// environment.
func TestSeed002GoSnippet(t *testing.T) {
	secret, err := signature.GenerateSecret()
	require.NoError(t, err)
	t.Setenv("WEBHOOK_SECRET", secret)
	srv := httptest.NewServer(http.HandlerFunc(webhookHandler))
	t.Cleanup(srv.Close)

	post := func(t *testing.T, h http.Header, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(body))
		require.NoError(t, err)
		req.Header = h
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	h := signature.Headers([]string{secret}, "msg_1", time.Now(), []byte(testBody))

	require.Equal(t, http.StatusOK, post(t, h, testBody))
	require.Equal(t, http.StatusUnauthorized, post(t, h, testBody+" "), "altered body")
	other := signature.Headers([]string{"another secret"}, "msg_1", time.Now(), []byte(testBody))
	require.Equal(t, http.StatusUnauthorized, post(t, other, testBody), "wrong secret")
	// The snippet compares one value, so it cannot read the two-value header
	// of a rotation overlap: receivers must split it (docs/receivers.md).
	rotating := signature.Headers([]string{secret, "previous"}, "msg_1", time.Now(), []byte(testBody))
	require.Equal(t, http.StatusUnauthorized, post(t, rotating, testBody))
}
