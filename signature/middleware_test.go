package signature_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/signature"
)

// echoHandler answers with the event type from the context and the raw body
// it can still read, and counts its calls.
func echoHandler(t *testing.T, calls *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		ev, ok := signature.EventFromContext(r.Context())
		if !ok {
			t.Error("no event in context")
			return
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"event_type": ev.EventType, "event_id": ev.EventID, "body": string(raw)})
	})
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	secret, err := signature.GenerateSecret()
	require.NoError(t, err)
	const previous = "previous secret"
	ts := time.Unix(1736937000, 0)
	clock := signature.WithClock(func() time.Time { return ts })
	body := []byte(testBody)
	valid := signature.Headers([]string{secret}, "msg_1", ts, body)
	seedOnly := valid.Clone()
	for _, name := range []string{signature.HeaderWebhookID, signature.HeaderWebhookTimestamp, signature.HeaderWebhookSignature} {
		seedOnly.Del(name)
	}
	// A request captured an hour ago, replayed without its Standard Webhooks headers.
	staleSeed := signature.Headers([]string{secret}, "msg_1", ts.Add(-time.Hour), body)
	for _, name := range []string{signature.HeaderWebhookID, signature.HeaderWebhookTimestamp, signature.HeaderWebhookSignature} {
		staleSeed.Del(name)
	}
	badStandard := valid.Clone()
	badStandard.Set(signature.HeaderWebhookSignature, signature.SignStandard("other", "msg_1", ts, body))
	signedBody := func(b string) http.Header { return signature.Headers([]string{secret}, "msg_1", ts, []byte(b)) }

	tests := []struct {
		name     string
		opts     []signature.Option
		h        http.Header
		body     string
		chunked  bool
		wantCode int
		wantErr  string
	}{
		{"valid", nil, valid, testBody, false, http.StatusOK, ""},
		{"X-Webhook-Signature only", nil, seedOnly, testBody, false, http.StatusUnauthorized, "invalid_signature"},
		{"X-Webhook-Signature only, untimestamped allowed", []signature.Option{signature.WithUntimestamped()}, seedOnly, testBody, false, http.StatusOK, ""},
		{"standard headers take precedence", []signature.Option{signature.WithUntimestamped()}, badStandard, testBody, false, http.StatusUnauthorized, "invalid_signature"},
		{"stale standard headers cannot be dropped", nil, staleSeed, testBody, false, http.StatusUnauthorized, "invalid_signature"},
		{"no signature", nil, http.Header{}, testBody, false, http.StatusUnauthorized, "invalid_signature"},
		{"wrong secret", nil, signature.Headers([]string{"other"}, "msg_1", ts, body), testBody, false, http.StatusUnauthorized, "invalid_signature"},
		{"altered body", nil, valid, strings.Replace(testBody, "evt_1", "evt_2", 1), false, http.StatusUnauthorized, "invalid_signature"},
		{"stale", nil, signature.Headers([]string{secret}, "msg_1", ts.Add(-time.Hour), body), testBody, false, http.StatusUnauthorized, "invalid_signature"},
		{"within custom tolerance", []signature.Option{signature.WithTolerance(2 * time.Hour)}, signature.Headers([]string{secret}, "msg_1", ts.Add(-time.Hour), body), testBody, false, http.StatusOK, ""},
		{"previous secret refused", nil, signature.Headers([]string{previous}, "msg_1", ts, body), testBody, false, http.StatusUnauthorized, "invalid_signature"},
		{"previous secret accepted while rotating", []signature.Option{signature.WithSecrets(previous)}, signature.Headers([]string{previous}, "msg_1", ts, body), testBody, false, http.StatusOK, ""},
		{"too large", []signature.Option{signature.WithMaxBodyBytes(64)}, valid, testBody, false, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"too large, chunked", []signature.Option{signature.WithMaxBodyBytes(64)}, valid, testBody, true, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"not JSON", nil, signedBody("hello"), "hello", false, http.StatusBadRequest, "invalid_event"},
		{"JSON but not an event", nil, signedBody(`{"event":"response.completed"}`), `{"event":"response.completed"}`, false, http.StatusBadRequest, "invalid_event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			opts := append([]signature.Option{clock}, tt.opts...)
			handler := signature.Middleware(secret, opts...)(echoHandler(t, &calls))
			req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(tt.body))
			req.Header = tt.h.Clone()
			if tt.chunked {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)

			require.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
			var got map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
			if tt.wantErr != "" {
				require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				require.Equal(t, tt.wantErr, got["code"])
				require.NotEmpty(t, got["message"])
				require.Zero(t, calls.Load(), "next must not run")
				return
			}
			require.Equal(t, int32(1), calls.Load())
			require.Equal(t, "survey.response.completed", got["event_type"])
			require.Equal(t, "evt_1", got["event_id"])
			require.Equal(t, tt.body, got["body"], "next reads the raw body")
		})
	}
}

// TestMiddlewareServer sends real HTTP requests through a server, the way
// surveyhooks does, including a request with no Content-Length.
func TestMiddlewareServer(t *testing.T) {
	t.Parallel()
	secret, err := signature.GenerateSecret()
	require.NoError(t, err)
	var calls atomic.Int32
	srv := httptest.NewServer(signature.Middleware(secret, signature.WithMaxBodyBytes(1024))(echoHandler(t, &calls)))
	t.Cleanup(srv.Close)

	post := func(t *testing.T, body io.Reader, h http.Header) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, body)
		require.NoError(t, err)
		req.Header = h
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}

	h := signature.Headers([]string{secret}, "msg_1", time.Now(), []byte(testBody))
	resp := post(t, strings.NewReader(testBody), h)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	big := `{"event_id":"e","event_type":"t","data":"` + strings.Repeat("x", 2048) + `"}`
	hBig := signature.Headers([]string{secret}, "msg_2", time.Now(), []byte(big))
	// io.MultiReader hides the length, so the request is sent chunked.
	resp = post(t, io.MultiReader(strings.NewReader(big)), hBig)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	resp = post(t, strings.NewReader(testBody), http.Header{})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, int32(1), calls.Load())
}

func TestEventFromContextEmpty(t *testing.T) {
	t.Parallel()
	ev, ok := signature.EventFromContext(t.Context())
	require.False(t, ok)
	require.Nil(t, ev)
}
