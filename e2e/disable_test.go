package e2e_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// notice is a request the operator's receiver got.
type notice struct {
	header http.Header
	body   []byte
}

// TestDisableAndRecover runs a worker process with a short auto-disable threshold. A webhook
// whose receiver fails every attempt is disabled once its failures have lasted the
// threshold: the API shows why, the operator's webhook gets a signed webhook.disabled
// notice, its waiting retries stop and later events are recorded as skipped. A receiver
// that answers 410 disables its webhook at its first attempt. Turned on again and
// recovered, every failed and skipped delivery of the window is delivered exactly once.
func TestDisableAndRecover(t *testing.T) {
	t.Parallel()
	s := startWorkerStack(t, testenv.PostgresURL(t), delivery.Schedule{Delays: repeat(time.Second, 5), AttemptTimeout: 2 * time.Second},
		"SURVEYHOOKS_DISABLE_AFTER=4s", "SURVEYHOOKS_DISABLE_MIN_FAILURES=4", "SURVEYHOOKS_FAILING_AFTER=3",
		"SURVEYHOOKS_NOTICE_ACCOUNT=ops")
	s.startWorker(t, "worker-1")
	began := time.Now()

	var mu sync.Mutex
	var notices []notice
	ops := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		notices = append(notices, notice{header: r.Header.Clone(), body: body})
		mu.Unlock()
	}))
	t.Cleanup(ops.Close)
	noticesOf := func(eventType string) []notice {
		mu.Lock()
		defer mu.Unlock()
		var out []notice
		for _, n := range notices {
			var ev struct {
				Type string `json:"event_type"`
			}
			if json.Unmarshal(n.body, &ev) == nil && ev.Type == eventType {
				out = append(out, n)
			}
		}
		return out
	}
	status, out := s.api.do(t, http.MethodPost, "/api/accounts/ops/webhooks",
		map[string]any{"name": "operator", "url": ops.URL, "events": []string{"webhook.*"}})
	require.Equal(t, http.StatusCreated, status, out)
	opsSecret := out["secret"].(string)

	var healthy atomic.Bool
	failing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) string {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return "200"
		}
		w.WriteHeader(http.StatusInternalServerError)
		return "500"
	})
	hookID := s.api.createWebhook(t, failing.URL, "survey.response.completed")
	hook := "/api/surveys/" + surveyID + "/webhooks/" + hookID
	gone := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) string {
		w.WriteHeader(http.StatusGone)
		return "410"
	})
	goneID := s.api.createWebhook(t, gone.URL, "survey.response.updated")

	// Sustained failure: three events, retried every second, for longer than 4 s.
	for _, id := range []string{"down-1", "down-2", "down-3"} {
		status, out := s.api.publish(t, id, "survey.response.completed")
		require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status, out)
		time.Sleep(time.Second)
	}
	require.Eventually(t, func() bool {
		_, out = s.api.do(t, http.MethodGet, hook, nil)
		return out["isActive"] == false
	}, 30*time.Second, 100*time.Millisecond)
	disabled := out["disabled"].(map[string]any)
	require.Contains(t, disabled["reason"], "every attempt failed for")
	t.Logf("disabled %v after the first event: %s", time.Since(began).Round(100*time.Millisecond), disabled["reason"])
	health := out["health"].(map[string]any)
	require.GreaterOrEqual(t, health["consecutiveFailures"], 4.0)

	// The operator hears of it, signed as any event.
	require.Eventually(t, func() bool { return len(noticesOf("webhook.disabled")) == 1 }, 30*time.Second, 100*time.Millisecond)
	n := noticesOf("webhook.disabled")[0]
	require.NoError(t, signature.VerifyStandard(opsSecret, n.header, n.body, time.Now(), 5*time.Minute))
	require.Contains(t, string(n.body), hookID)
	require.NotEmpty(t, noticesOf("webhook.failing"), "the streak crossed 3 before it was disabled")

	// Its waiting retries stop; later events are kept as skipped.
	sentAtDisable := len(failing.got())
	status, out = s.api.publish(t, "while-off-1", "survey.response.completed")
	require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status, out)
	status, out = s.api.publish(t, "while-off-2", "survey.response.completed")
	require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status, out)
	time.Sleep(3 * time.Second) // three retry delays: nothing more may arrive
	require.Len(t, failing.got(), sentAtDisable, "nothing sent while disabled")
	var statuses map[string]string
	readStatuses := func() {
		var rows []struct {
			EventID string `db:"event_id"`
			Status  string `db:"status"`
		}
		require.NoError(t, s.db.SelectContext(t.Context(), &rows,
			`SELECT event_id, status FROM deliveries WHERE webhook_id = $1`, hookID))
		statuses = map[string]string{}
		for _, r := range rows {
			statuses[r.EventID] = r.Status
		}
	}
	readStatuses()
	require.Equal(t, map[string]string{"down-1": "failed", "down-2": "failed", "down-3": "failed",
		"while-off-1": "skipped", "while-off-2": "skipped"}, statuses)

	// 410 Gone disables at once.
	status, out = s.api.publish(t, "gone-1", "survey.response.updated")
	require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status, out)
	require.Eventually(t, func() bool {
		_, out = s.api.do(t, http.MethodGet, "/api/surveys/"+surveyID+"/webhooks/"+goneID, nil)
		return out["isActive"] == false
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, "the receiver answered 410 Gone", out["disabled"].(map[string]any)["reason"])
	require.Len(t, gone.got(), 1, "one attempt")

	// On again, and recovered: each delivery of the window arrives once.
	healthy.Store(true)
	status, out = s.api.do(t, http.MethodPatch, hook, map[string]any{"isActive": true})
	require.Equal(t, http.StatusOK, status, out)
	before := len(failing.got())
	status, out = s.api.do(t, http.MethodPost, hook+"/recover", map[string]any{"since": began.Add(-time.Minute).UTC().Format(time.RFC3339Nano)})
	require.Equal(t, http.StatusAccepted, status, out)
	recovery := hook + "/recoveries/" + out["id"].(string)
	require.Eventually(t, func() bool {
		_, out = s.api.do(t, http.MethodGet, recovery, nil)
		return out["finished"] == true && out["delivered"] == 5.0
	}, 60*time.Second, 200*time.Millisecond, "%v", out)
	require.Equal(t, 5.0, out["matched"])
	require.Equal(t, 0.0, out["failed"])
	readStatuses()
	for id, st := range statuses {
		require.Equal(t, "delivered", st, id)
	}
	after := failing.got()[before:]
	require.Len(t, after, 5, "one request per recovered delivery")
	seen := map[string]bool{}
	for _, h := range after {
		require.Equal(t, "200", h.Answer)
		require.False(t, seen[h.WebhookID], "%s twice", h.EventID)
		seen[h.WebhookID] = true
	}
}
