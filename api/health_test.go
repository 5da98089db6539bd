package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
)

// A webhook's health and stats follow its attempts through the real engine: two refused
// deliveries make a streak of two with the last status, a delivered one ends it, and the
// hour's bucket counts all three.
func TestEngineWebhookHealthAndStats(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t, http.StatusBadRequest, http.StatusNotFound, http.StatusOK)
	hookID, _ := e.createWebhook(t, rc.URL, []string{"*"}, "")
	hook := "/api/surveys/survey-1/webhooks/" + hookID

	status, out := e.do(t, http.MethodGet, hook, nil)
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, map[string]any{"consecutiveFailures": 0.0, "failingSince": nil, "lastSuccessAt": nil, "lastFailure": nil}, out["health"])

	for i := range 2 {
		id := fmt.Sprintf("evt-health-%d", i)
		e.publish(t, id)
		e.deliveriesOf(t, id, 1)
	}
	status, out = e.do(t, http.MethodGet, hook, nil)
	require.Equal(t, http.StatusOK, status, out)
	health := out["health"].(map[string]any)
	require.Equal(t, 2.0, health["consecutiveFailures"])
	require.NotNil(t, health["failingSince"])
	require.Nil(t, health["lastSuccessAt"])
	last := health["lastFailure"].(map[string]any)
	require.Equal(t, 404.0, last["status"])
	require.Contains(t, last["error"], "404")

	e.publish(t, "evt-health-ok")
	e.deliveriesOf(t, "evt-health-ok", 1)
	status, out = e.do(t, http.MethodGet, "/api/surveys/survey-1/webhooks", nil)
	require.Equal(t, http.StatusOK, status, out)
	health = out["data"].([]any)[0].(map[string]any)["health"].(map[string]any)
	require.Equal(t, 0.0, health["consecutiveFailures"])
	require.Nil(t, health["failingSince"])
	require.NotNil(t, health["lastSuccessAt"])
	require.Equal(t, 404.0, health["lastFailure"].(map[string]any)["status"], "the last failure stays shown")

	status, out = e.do(t, http.MethodGet, hook+"/stats", nil)
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, "24h", out["window"])
	require.Equal(t, "1h0m0s", out["step"])
	buckets := out["buckets"].([]any)
	require.Len(t, buckets, 24)
	now := buckets[23].(map[string]any)
	require.Equal(t, []any{3.0, 1.0, 2.0}, []any{now["attempts"], now["successes"], now["failures"]})
	start, err := time.Parse(time.RFC3339, now["start"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Truncate(time.Hour), start, time.Hour)
	require.Positive(t, now["p50Ms"])
	totals := out["totals"].(map[string]any)
	require.Equal(t, 3.0, totals["attempts"])
	require.NotContains(t, totals, "start")

	for window, n := range map[string]int{"7d": 28, "30d": 30} {
		status, out = e.do(t, http.MethodGet, hook+"/stats?window="+window, nil)
		require.Equal(t, http.StatusOK, status, out)
		require.Len(t, out["buckets"], n)
		require.Equal(t, 3.0, out["totals"].(map[string]any)["attempts"])
	}
	status, out = e.do(t, http.MethodGet, hook+"/stats?window=1y", nil)
	require.Equal(t, http.StatusBadRequest, status, out)
	status, _ = e.do(t, http.MethodGet, "/api/surveys/survey-2/webhooks/"+hookID+"/stats", nil)
	require.Equal(t, http.StatusNotFound, status, "another survey's path does not reach the webhook")
}

// A 410 Gone disables the webhook, as the API shows; an event while it is disabled is a
// skipped delivery that sends nothing; turned on again, a retry of the skipped delivery
// delivers it.
func TestEngineGoneDisablesTheWebhook(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t, http.StatusGone, http.StatusOK)
	hookID, _ := e.createWebhook(t, rc.URL, []string{"*"}, "")
	hook := "/api/surveys/survey-1/webhooks/" + hookID
	// The account's notices go to the webhooks that ask for them, not to "*".
	notices, everything := newReceiver(t), newReceiver(t)
	status, out := e.do(t, http.MethodPost, "/api/accounts/default/webhooks",
		map[string]any{"name": "ops", "url": notices.URL, "events": []string{"webhook.disabled"}})
	require.Equal(t, http.StatusCreated, status, out)
	noticeSecret := out["secret"].(string)
	status, out = e.do(t, http.MethodPost, "/api/accounts/default/webhooks",
		map[string]any{"name": "all", "url": everything.URL, "events": []string{"*"}})
	require.Equal(t, http.StatusCreated, status, out)
	status, out = e.do(t, http.MethodGet, hook, nil)
	require.Equal(t, http.StatusOK, status, out)
	require.Nil(t, out["disabled"])

	e.publish(t, "evt-gone")
	require.Equal(t, "failed", deliveryTo(e.deliveriesOf(t, "evt-gone", 2), hookID)["status"])
	// The attempt is recorded first, then the webhook turned off.
	require.Eventually(t, func() bool {
		status, out = e.do(t, http.MethodGet, hook, nil)
		require.Equal(t, http.StatusOK, status, out)
		return out["isActive"] == false
	}, 10*time.Second, 20*time.Millisecond)
	disabled := out["disabled"].(map[string]any)
	require.Equal(t, "the receiver answered 410 Gone", disabled["reason"])
	require.NotEmpty(t, disabled["at"])

	// The webhook.disabled notice, signed like any event, through the outbox.
	require.Eventually(t, func() bool { return len(notices.got()) == 1 }, 30*time.Second, 50*time.Millisecond)
	notice := notices.got()[0]
	require.NoError(t, signature.VerifyStandard(noticeSecret, notice.header, notice.body, time.Now(), 5*time.Minute))
	var sent struct {
		Type string `json:"event_type"`
		Data struct {
			Webhook struct{ ID, AccountID, URL string } `json:"webhook"`
			Reason  string                              `json:"reason"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(notice.body, &sent))
	require.Equal(t, "webhook.disabled", sent.Type)
	require.Equal(t, hookID, sent.Data.Webhook.ID)
	require.Equal(t, "default", sent.Data.Webhook.AccountID)
	require.Equal(t, rc.URL, sent.Data.Webhook.URL)
	require.Equal(t, "the receiver answered 410 Gone", sent.Data.Reason)
	require.Len(t, everything.got(), 1, "only evt-gone, not the notice")

	e.publish(t, "evt-while-disabled")
	skipped := deliveryTo(e.deliveriesOf(t, "evt-while-disabled", 2), hookID)
	require.Equal(t, "skipped", skipped["status"])
	status, out = e.do(t, http.MethodGet, hook+"/deliveries?status=skipped", nil)
	require.Equal(t, http.StatusOK, status, out)
	require.Len(t, out["data"], 1)
	require.Len(t, rc.got(), 1, "nothing sent while disabled")
	status, _ = e.do(t, http.MethodPost, hook+"/deliveries/"+skipped["id"].(string)+"/retry", nil)
	require.Equal(t, http.StatusConflict, status, "no retry while the webhook is off")

	status, out = e.do(t, http.MethodPatch, hook, map[string]any{"isActive": true})
	require.Equal(t, http.StatusOK, status, out)
	require.Nil(t, out["disabled"])
	status, out = e.do(t, http.MethodPost, hook+"/deliveries/"+skipped["id"].(string)+"/retry", nil)
	require.Equal(t, http.StatusAccepted, status, out)
	require.Eventually(t, func() bool {
		_, out := e.do(t, http.MethodGet, hook+"/deliveries/"+skipped["id"].(string), nil)
		return out["status"] == "delivered"
	}, 30*time.Second, 50*time.Millisecond)
	require.Len(t, rc.got(), 2, "the skipped delivery, once")
}

// deliveryTo is the delivery of ds to the webhook.
func deliveryTo(ds []map[string]any, webhookID string) map[string]any {
	for _, d := range ds {
		if d["webhookId"] == webhookID {
			return d
		}
	}
	return nil
}
