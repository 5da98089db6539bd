package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEveryAPIAnswerIsNoStore checks the Cache-Control of answers that carry no secret:
// lists, event types, refusals and errors all stay out of caches, as the secret routes do.
func TestEveryAPIAnswerIsNoStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", validCreateBody)

	for _, tc := range []struct {
		name, method, path string
		edit               []func(*http.Request)
		status             int
	}{
		{"webhook list", http.MethodGet, webhooksPath, nil, http.StatusOK},
		{"webhook", http.MethodGet, webhooksPath + "/" + created.ID.String(), nil, http.StatusOK},
		{"event types", http.MethodGet, "/api/event-types", nil, http.StatusOK},
		{"unknown event", http.MethodGet, "/api/events/nope", nil, http.StatusNotFound},
		{"no key", http.MethodGet, webhooksPath, []func(*http.Request){withHeader("Authorization", "")}, http.StatusUnauthorized},
		{"unknown route", http.MethodGet, "/api/nope", nil, http.StatusNotFound},
		{"method not allowed", http.MethodPut, webhooksPath, nil, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := b.do(t, tc.method, tc.path, "", tc.edit...)
			require.Equal(t, tc.status, resp.status, string(resp.body))
			require.Equal(t, "no-store", resp.header.Get("Cache-Control"))
		})
	}
}

// TestLoggedPathIsBounded sends a 500,000-byte path without a key: the 401 is logged with
// the path cut short, so that such requests cannot grow the logs by their own size.
func TestLoggedPathIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	long := "/api/surveys/" + strings.Repeat("A", 500_000) + "/webhooks"

	resp := b.do(t, http.MethodGet, long, "", withHeader("Authorization", ""))
	require.Equal(t, http.StatusUnauthorized, resp.status)
	// The log line is written after the answer; wait until it is there.
	require.Eventually(t, func() bool { return strings.Contains(b.logs.String(), `"status":401`) },
		5*time.Second, 10*time.Millisecond)
	logs := b.logs.String()
	require.Less(t, len(logs), 2_000, "log: %.300s", logs)
	require.Contains(t, logs, "/api/surveys/AAAA")
	require.Contains(t, logs, "…(500022 bytes)")
}
