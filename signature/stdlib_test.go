package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/signature"
)

// The code between the markers is the "Go, standard library only" section of
// docs/receivers.md; TestReceiversDocInSync keeps the two identical.

// receivers.md:begin
const tolerance = 5 * time.Minute

// verifySignature checks X-Webhook-Signature: one or more space-separated
// "sha256=<hex>" values.
func verifySignature(payload []byte, header, secret string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(payload)
	expected := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), []byte(expected)) {
			return true
		}
	}
	return false
}

// standardKey: whsec_<base64> secrets use the decoded bytes, other secrets
// their own bytes.
func standardKey(secret string) []byte {
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if ok && rest != "" && !strings.ContainsAny(rest, "\r\n") {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return key
		}
	}
	return []byte(secret)
}

// verifyStandard checks webhook-id, webhook-timestamp and webhook-signature.
func verifyStandard(payload []byte, h http.Header, secret string) bool {
	msgID := h.Get("webhook-id")
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if msgID == "" || err != nil {
		return false
	}
	if age := time.Since(time.Unix(ts, 0)); age > tolerance || age < -tolerance {
		return false // too old or too new: a replay or a wrong clock
	}
	mac := hmac.New(sha256.New, standardKey(secret))
	fmt.Fprintf(mac, "%s.%d.", msgID, ts)
	mac.Write(payload)
	expected := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(expected)) {
			return true
		}
	}
	return false
}

// receivers.md:end

func TestStdlibVerifier(t *testing.T) {
	t.Parallel()
	generated, err := signature.GenerateSecret()
	require.NoError(t, err)
	const plain = "user-chosen secret"
	body := []byte(testBody)
	now := time.Now()
	tests := []struct {
		name       string
		signWith   []string
		verifyWith string
		ts         time.Time
		body       []byte
		// The seed scheme carries no timestamp, so only the Standard
		// Webhooks check can refuse a stale or future request.
		wantStandard, wantSignature bool
	}{
		{"generated secret", []string{generated}, generated, now, body, true, true},
		{"user-chosen secret", []string{plain}, plain, now, body, true, true},
		{"rotation, newest", []string{generated, plain}, generated, now, body, true, true},
		{"rotation, previous", []string{generated, plain}, plain, now, body, true, true},
		{"rotation, third secret", []string{generated, plain}, "third", now, body, false, false},
		{"altered body", []string{generated}, generated, now, append(body, ' '), false, false},
		{"stale", []string{generated}, generated, now.Add(-6 * time.Minute), body, false, true},
		{"future", []string{generated}, generated, now.Add(6 * time.Minute), body, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := signature.Headers(tt.signWith, "msg_1", tt.ts, body)
			require.Equal(t, tt.wantStandard, verifyStandard(tt.body, h, tt.verifyWith))
			require.Equal(t, tt.wantSignature, verifySignature(tt.body, h.Get(signature.HeaderSignature), tt.verifyWith))
		})
	}
}
