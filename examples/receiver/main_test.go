package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/signature"
)

const eventBody = `{"event_id":"evt_1","event_type":"survey.response.completed","timestamp":"2025-01-15T10:30:00Z",
 "data":{"survey":{"id":"s1","title":"NPS"},
         "response":{"id":"r1","answers":[{"q":"q1","value":9}]}}}`

// syncBuffer is a bytes.Buffer safe for the server goroutines and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func post(t *testing.T, client *http.Client, url string, h http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header = h
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestDedupForgetsOldest(t *testing.T) {
	t.Parallel()
	d := newDedup(2)
	require.True(t, d.add("a"))
	require.True(t, d.add("b"))
	require.False(t, d.add("a"))
	require.True(t, d.add("c"), "evicts a")
	require.False(t, d.add("b"))
	require.False(t, d.add("c"))
	require.True(t, d.add("a"), "a was forgotten")
	require.Len(t, d.ids, 2)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	secret, err := signature.GenerateSecret()
	require.NoError(t, err)
	const previous = "previous secret"
	var out syncBuffer
	srv := httptest.NewServer(newHandler(secret, []signature.Option{signature.WithSecrets(previous)}, newDedup(100), &out))
	t.Cleanup(srv.Close)
	headers := func(secrets []string, msgID string) http.Header {
		return signature.Headers(secrets, msgID, time.Now(), []byte(eventBody))
	}

	code, body := post(t, srv.Client(), srv.URL, headers([]string{secret}, "msg_1"), eventBody)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "OK\n", body)
	require.Equal(t,
		`2025-01-15T10:30:00Z survey.response.completed event_id=evt_1 message_id=msg_1 `+
			`data={"survey":{"id":"s1","title":"NPS"},"response":{"id":"r1","answers":[{"q":"q1","value":9}]}}`+"\n",
		out.String())

	// A retry of the same message is acknowledged but not printed again.
	code, body = post(t, srv.Client(), srv.URL, headers([]string{secret}, "msg_1"), eventBody)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "duplicate\n", body)
	require.Equal(t, 1, strings.Count(out.String(), "\n"))

	// The previous secret still works during a rotation.
	code, _ = post(t, srv.Client(), srv.URL, headers([]string{previous}, "msg_2"), eventBody)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, out.String(), "message_id=msg_2")

	code, _ = post(t, srv.Client(), srv.URL, headers([]string{"not the secret"}, "msg_3"), eventBody)
	require.Equal(t, http.StatusUnauthorized, code)

	// X-Webhook-Signature alone is refused: no webhook-id, no replay check.
	seedOnly := http.Header{signature.HeaderSignature: {signature.Sign(secret, []byte(eventBody))}}
	code, _ = post(t, srv.Client(), srv.URL, seedOnly, eventBody)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Equal(t, 2, strings.Count(out.String(), "\n"))
}

func TestRun(t *testing.T) {
	t.Parallel()
	secret, err := signature.GenerateSecret()
	require.NoError(t, err)
	env := map[string]string{"WEBHOOK_SECRET": secret}
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, &stdout, &stderr)
	}()

	urlRE := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/webhook)`)
	var url string
	require.Eventually(t, func() bool {
		m := urlRE.FindStringSubmatch(stderr.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "no listen line in %q", stderr.String())

	h := signature.Headers([]string{secret}, "msg_run", time.Now(), []byte(eventBody))
	code, _ := post(t, http.DefaultClient, url, h, eventBody)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, stdout.String(), "survey.response.completed event_id=evt_1 message_id=msg_run")
	require.NotContains(t, stderr.String(), secret, "the secret is never logged")

	code, _ = post(t, http.DefaultClient, strings.TrimSuffix(url, "/webhook")+"/other", h, eventBody)
	require.Equal(t, http.StatusNotFound, code)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunNeedsSecret(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(t.Context(), nil, func(string) string { return "" }, &out, &out)
	require.ErrorContains(t, err, "WEBHOOK_SECRET")
}
