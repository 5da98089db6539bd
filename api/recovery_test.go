package api_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
)

// A recovery of a webhook's failed deliveries: the receiver refused ten events, then
// answers again; a recovery since before them retries each once, at its bounded pace (4 a
// batch, 8 a second), shows its progress while it runs, answers a second identical
// request with the same recovery, and delivers each event exactly once more.
func TestEngineRecoveryRetriesFailedDeliveries(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	var mu sync.Mutex
	refusing := true
	got := map[string]int{}
	rc := newReceiver(t)
	rc.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got[r.Header.Get(signature.HeaderWebhookID)]++
		if refusing {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	hookID, _ := e.createWebhook(t, rc.URL, []string{"*"}, "")
	hook := "/api/surveys/survey-1/webhooks/" + hookID
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	const events = 10
	for i := range events {
		id := fmt.Sprintf("evt-recover-%d", i)
		e.publish(t, id)
		require.Equal(t, "failed", e.deliveriesOf(t, id, 1)[0]["status"])
	}
	mu.Lock()
	refusing = false
	mu.Unlock()

	body := map[string]any{"since": since}
	status, first := e.do(t, http.MethodPost, hook+"/recover", body)
	require.Equal(t, http.StatusAccepted, status, first)
	id := first["id"].(string)
	require.Equal(t, "running", first["status"])
	status, again := e.do(t, http.MethodPost, hook+"/recover", body)
	require.Equal(t, http.StatusAccepted, status, again)
	require.Equal(t, id, again["id"], "the same request while it runs is the same recovery")

	var progress map[string]any
	sawRunning := false
	require.Eventually(t, func() bool {
		status, progress = e.do(t, http.MethodGet, hook+"/recoveries/"+id, nil)
		require.Equal(t, http.StatusOK, status, progress)
		if progress["status"] == "running" && progress["matched"] == float64(events) {
			sawRunning = true
		}
		return progress["status"] != "running"
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, true, progress["finished"])
	require.True(t, sawRunning, "progress shows while it runs")
	require.Equal(t, "completed", progress["status"])
	require.Equal(t, []any{float64(events), float64(events), 0.0}, []any{progress["matched"], progress["retried"], progress["skipped"]})

	for i := range events {
		id := fmt.Sprintf("evt-recover-%d", i)
		require.Eventually(t, func() bool {
			return e.deliveriesOf(t, id, 1)[0]["status"] == "delivered"
		}, 30*time.Second, 50*time.Millisecond)
	}
	// The outcomes of its retries: all delivered.
	status, progress = e.do(t, http.MethodGet, hook+"/recoveries/"+id, nil)
	require.Equal(t, http.StatusOK, status, progress)
	require.Equal(t, []any{float64(events), 0.0}, []any{progress["delivered"], progress["failed"]})
	mu.Lock()
	require.Len(t, got, events)
	for webhookID, n := range got {
		require.Equal(t, 2, n, "delivery %s: refused once, delivered once", webhookID)
	}
	mu.Unlock()

	// A finished recovery cannot be stopped.
	status, out := e.do(t, http.MethodDelete, hook+"/recoveries/"+id, nil)
	require.Equal(t, http.StatusConflict, status, out)

	// Another webhook's path does not reach the recovery; bad requests change nothing.
	otherID, _ := e.createWebhook(t, rc.URL+"/other", []string{"*"}, "")
	status, _ = e.do(t, http.MethodGet, "/api/surveys/survey-1/webhooks/"+otherID+"/recoveries/"+id, nil)
	require.Equal(t, http.StatusNotFound, status)
	for _, bad := range []map[string]any{
		{},
		{"since": "yesterday"},
		{"since": since, "until": since},
		{"since": since, "statuses": []string{"delivered"}},
		{"since": since, "statuses": []string{}},
		{"since": since, "extra": 1},
	} {
		status, out := e.do(t, http.MethodPost, hook+"/recover", bad)
		require.Equal(t, http.StatusBadRequest, status, "%v: %v", bad, out)
	}
	status, out = e.do(t, http.MethodPatch, "/api/surveys/survey-1/webhooks/"+otherID, map[string]any{"isActive": false})
	require.Equal(t, http.StatusOK, status, out)
	status, out = e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks/"+otherID+"/recover", body)
	require.Equal(t, http.StatusConflict, status, out)
}

// A running recovery stops when cancelled: it asks for no more retries and shows why.
func TestEngineRecoveryCancel(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t, http.StatusBadRequest)
	hookID, _ := e.createWebhook(t, rc.URL, []string{"*"}, "")
	hook := "/api/surveys/survey-1/webhooks/" + hookID
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	// 40 refused deliveries: at 8 a second the recovery takes 5 s.
	const events = 40
	for i := range events {
		e.publish(t, fmt.Sprintf("evt-cancel-%d", i))
	}
	for i := range events {
		e.deliveriesOf(t, fmt.Sprintf("evt-cancel-%d", i), 1)
	}
	status, out := e.do(t, http.MethodPost, hook+"/recover", map[string]any{"since": since})
	require.Equal(t, http.StatusAccepted, status, out)
	id := out["id"].(string)
	status, out = e.do(t, http.MethodDelete, hook+"/recoveries/"+id, nil)
	require.Equal(t, http.StatusAccepted, status, out)
	require.Equal(t, "canceling", out["status"])
	require.Eventually(t, func() bool {
		_, out = e.do(t, http.MethodGet, hook+"/recoveries/"+id, nil)
		return out["status"] != "running"
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, "canceled", out["status"], out)
	require.Equal(t, "cancelled", out["error"])
	require.Less(t, out["retried"], float64(events), "it stopped before the end")
}
