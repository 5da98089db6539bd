package api_test

import (
	"fmt"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
)

// refusingReceiver answers 400 until answer is called, then 200; got counts its requests
// by webhook-id.
func refusingReceiver(t *testing.T) (rc *receiver, got func() map[string]int, answer func()) {
	var mu sync.Mutex
	refusing := true
	counts := map[string]int{}
	rc = newReceiver(t)
	rc.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		counts[r.Header.Get(signature.HeaderWebhookID)]++
		if refusing {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	got = func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(counts)
	}
	answer = func() {
		mu.Lock()
		defer mu.Unlock()
		refusing = false
	}
	return rc, got, answer
}

// A recovery of a webhook's failed deliveries: the receiver refused ten events, then
// answers again; a recovery since before them retries each once, at its bounded pace (4 a
// batch, 8 a second), shows its progress while it runs, answers a second identical
// request with the same recovery, and delivers each event exactly once more.
func TestEngineRecoveryRetriesFailedDeliveries(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc, got, answer := refusingReceiver(t)
	hookID, _ := e.createWebhook(t, rc.URL, []string{"*"}, "")
	hook := "/api/surveys/survey-1/webhooks/" + hookID
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	const events = 10
	for i := range events {
		id := fmt.Sprintf("evt-recover-%d", i)
		e.publish(t, id)
		require.Equal(t, "failed", e.deliveriesOf(t, id, 1)[0]["status"])
	}
	answer()

	body := map[string]any{"since": since}
	status, counted := e.do(t, http.MethodPost, hook+"/recover", map[string]any{"since": since, "dryRun": true})
	require.Equal(t, http.StatusOK, status, counted)
	require.Equal(t, map[string]any{"matched": float64(events), "dryRun": true}, counted, "counted, nothing started")
	require.Len(t, got(), events, "a dry run sends nothing")
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
	require.Len(t, got(), events)
	for webhookID, n := range got() {
		require.Equal(t, 2, n, "delivery %s: refused once, delivered once", webhookID)
	}

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
	status, out = e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks/"+otherID+"/recover", map[string]any{"since": since, "dryRun": true})
	require.Equal(t, http.StatusOK, status, "an inactive webhook's deliveries can be counted: %v", out)
	require.Equal(t, 0.0, out["matched"])
	status, out = e.do(t, http.MethodPost, hook+"/recover", map[string]any{"since": since, "dryRun": nil})
	require.Equal(t, http.StatusBadRequest, status, out)
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

// A retry by filter across an account: a dry run counts what the filter picks and starts
// nothing; the retry then goes as a recovery, skips the deliveries of a webhook that is off,
// answers a second identical request with the same id, and delivers each picked delivery
// once more. Another account's key does not see it; bad filters change nothing.
func TestEngineAccountRetryByFilter(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc, got, answer := refusingReceiver(t)
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	// Two webhooks of survey-1 (one turned off below) and one of survey-2.
	on, _ := e.createWebhook(t, rc.URL+"/on", []string{"*"}, "")
	off, _ := e.createWebhook(t, rc.URL+"/off", []string{"*"}, "")
	status, out := e.do(t, http.MethodPost, "/api/surveys/survey-2/webhooks",
		map[string]any{"name": "s2", "url": rc.URL + "/s2", "events": []string{"*"}})
	require.Equal(t, http.StatusCreated, status, out)
	publishTo := func(id, survey, eventType string) {
		status, out := e.do(t, http.MethodPost, "/api/events", map[string]any{"event_id": id, "event_type": eventType, "survey_id": survey,
			"data": map[string]any{"survey": map[string]any{"id": survey, "title": "NPS"},
				"response": map[string]any{"id": "r-1", "answers": []any{map[string]any{"questionId": "q1", "value": 9}}}}})
		require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status, out)
	}
	for i := range 4 {
		publishTo(fmt.Sprintf("evt-bulk-%d", i), "survey-1", "survey.response.completed")
		e.deliveriesOf(t, fmt.Sprintf("evt-bulk-%d", i), 2)
	}
	publishTo("evt-bulk-s2", "survey-2", "survey.response.completed")
	e.deliveriesOf(t, "evt-bulk-s2", 1)
	publishTo("evt-bulk-updated", "survey-1", "survey.response.updated")
	e.deliveriesOf(t, "evt-bulk-updated", 2)
	status, out = e.do(t, http.MethodPatch, "/api/surveys/survey-1/webhooks/"+off, map[string]any{"isActive": false})
	require.Equal(t, http.StatusOK, status, out)
	answer()

	retry := "/api/accounts/default/deliveries/retry"
	filter := map[string]any{"since": since, "surveyId": "survey-1", "eventType": "survey.response.completed"}
	dry := map[string]any{"dryRun": true}
	for k, v := range filter {
		dry[k] = v
	}
	status, out = e.do(t, http.MethodPost, retry, dry)
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, map[string]any{"matched": 8.0, "dryRun": true}, out, "4 events to 2 webhooks; not survey-2, not the other type")
	status, out = e.do(t, http.MethodPost, retry, map[string]any{"since": since, "dryRun": true})
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, 11.0, out["matched"], "the whole account")
	require.Len(t, got(), 11, "a dry run sends nothing")

	status, first := e.do(t, http.MethodPost, retry, filter)
	require.Equal(t, http.StatusAccepted, status, first)
	id := first["id"].(string)
	status, again := e.do(t, http.MethodPost, retry, filter)
	require.Equal(t, http.StatusAccepted, status, again)
	require.Equal(t, id, again["id"], "the same request while it runs is the same retry")
	recovery := "/api/accounts/default/recoveries/" + id
	var progress map[string]any
	require.Eventually(t, func() bool {
		status, progress = e.do(t, http.MethodGet, recovery, nil)
		require.Equal(t, http.StatusOK, status, progress)
		return progress["status"] != "running"
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, "completed", progress["status"])
	require.Equal(t, []any{8.0, 4.0, 4.0}, []any{progress["matched"], progress["retried"], progress["skipped"]},
		"the off webhook's four are skipped")
	require.Eventually(t, func() bool {
		_, progress = e.do(t, http.MethodGet, recovery, nil)
		return progress["delivered"] == 4.0
	}, 30*time.Second, 100*time.Millisecond)
	for webhookID, n := range got() {
		want := 1
		for i := range 4 {
			for _, d := range e.deliveriesOf(t, fmt.Sprintf("evt-bulk-%d", i), 2) {
				if d["id"] == webhookID && d["webhookId"] == on {
					want = 2 // refused, then retried once
				}
			}
		}
		require.Equal(t, want, n, "delivery %s", webhookID)
	}

	// Another account does not reach it; a webhook's path does not either.
	status, out = e.do(t, http.MethodPost, "/api/accounts/acct-other/keys", map[string]any{"name": "other"})
	require.Equal(t, http.StatusCreated, status, out)
	key := out["key"].(string)
	st, _ := e.request(t, key, http.MethodGet, "/api/accounts/acct-other/recoveries/"+id, nil)
	require.Equal(t, http.StatusNotFound, st)
	st, _ = e.request(t, key, http.MethodGet, recovery, nil)
	require.Equal(t, http.StatusNotFound, st)
	status, _ = e.do(t, http.MethodGet, "/api/surveys/survey-1/webhooks/"+on+"/recoveries/"+id, nil)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = e.do(t, http.MethodGet, "/api/accounts/default/recoveries/recovery-account-default-x", nil)
	require.Equal(t, http.StatusNotFound, status)

	for _, bad := range []map[string]any{
		{},
		{"since": since, "surveyId": "a b"},
		{"since": since, "eventType": "survey.*"},
		{"since": since, "eventType": nil},
		{"since": since, "dryRun": "yes"},
		{"since": since, "statuses": []string{"pending"}},
		{"since": since, "webhookId": on},
	} {
		status, out := e.do(t, http.MethodPost, retry, bad)
		require.Equal(t, http.StatusBadRequest, status, "%v: %v", bad, out)
	}
}
