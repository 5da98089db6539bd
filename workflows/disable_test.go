package workflows_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
)

// theWebhook reads the bundle's one webhook.
func (b *scheduleBundle) theWebhook(t *testing.T) store.Webhook {
	t.Helper()
	hooks, err := b.st.ListWebhooks(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, store.Page{Limit: 2})
	require.NoError(t, err)
	require.Len(t, hooks, 1)
	return hooks[0]
}

// A receiver that always fails: the streak passes the policy's hour at the schedule's fifth
// attempt (+1 h 21 m), which disables the webhook; the sixth attempt (+7 h 21 m) is never
// sent, and the delivery ends failed with the reason. An event that comes while the webhook
// is disabled gets a skipped delivery and sends nothing; once the webhook is on again, a
// retry delivers it, once.
func TestEventDisablesAFailingWebhook(t *testing.T) {
	t.Parallel()
	var calls, healthy atomic.Int32
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if healthy.Load() == 1 {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	b.disable = delivery.DisablePolicy{After: time.Hour, MinFailures: 3, FailingAfter: 2}
	b.newRun()
	res := b.run(t)
	hook := b.theWebhook(t)
	// The streak reached 2 at the second attempt (+1 m): one webhook.failing notice, and the
	// disable at +1 h 21 m its webhook.disabled notice, both in the webhook's account.
	var notices []struct{ ID, EventType string }
	require.NoError(t, b.db.Select(&notices, `SELECT id, event_type AS eventtype FROM events WHERE event_type LIKE 'webhook.%' ORDER BY event_type`))
	require.Len(t, notices, 2)
	require.Equal(t, "webhook.disabled", notices[0].EventType)
	require.Equal(t, "webhook.failing", notices[1].EventType)
	failing, err := b.st.GetEvent(t.Context(), notices[1].ID)
	require.NoError(t, err)
	require.Contains(t, string(failing.Body), `"consecutiveFailures":2`)
	require.Contains(t, string(failing.Body), `"id":"`+hook.ID.String()+`"`)

	d, as, offsets := b.attempts(t)
	require.Equal(t, []time.Duration{0, time.Minute, 6 * time.Minute, 21 * time.Minute, time.Hour + 21*time.Minute}, offsets)
	require.Len(t, as, 5)
	require.Equal(t, int32(5), calls.Load(), "no sixth attempt")
	require.Equal(t, delivery.StatusFailed, d.Status)
	require.Contains(t, d.LastError, "the webhook was disabled: every attempt failed for 1h21m0s (5 attempts since")
	require.Equal(t, delivery.StatusFailed, res.Deliveries[0].Status)
	hook = b.theWebhook(t)
	require.False(t, hook.IsActive)
	require.NotNil(t, hook.DisabledAt)
	require.Contains(t, hook.DisabledReason, "every attempt failed for 1h21m0s")

	// An event while disabled: recorded, skipped, nothing sent.
	eventID := uuid.NewString()
	b.publish(t, store.Event{ID: eventID, AccountID: store.DefaultAccount, EventType: "survey.response.completed", SurveyID: "survey-1",
		Body: []byte(`{"event_id":"` + eventID + `"}`)}, delivery.TriggerAuto)
	require.Equal(t, delivery.StatusSkipped, b.input.Deliveries[0].Status)
	res = b.run(t)
	require.Equal(t, delivery.StatusSkipped, res.Deliveries[0].Status)
	require.Equal(t, int32(5), calls.Load())

	// On again: the disabled reason goes, the streak starts over, and a retry delivers the
	// skipped delivery with one attempt.
	on := true
	hook, err = b.st.UpdateWebhook(t.Context(), hook.Scope(), hook.ID, store.WebhookUpdate{IsActive: &on})
	require.NoError(t, err)
	require.Nil(t, hook.DisabledAt)
	require.Empty(t, hook.DisabledReason)
	health, err := b.st.WebhookHealths(t.Context(), []uuid.UUID{hook.ID})
	require.NoError(t, err)
	require.Zero(t, health[hook.ID].ConsecutiveFailures)
	healthy.Store(1)
	skipped, _, _ := b.attempts(t)
	b.restart(t)
	b.env.RegisterDelayedCallback(func() {
		b.env.SignalWorkflow(delivery.RetrySignal, delivery.RetryRequest{DeliveryID: skipped.ID})
	}, 0)
	res = b.run(t)
	require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
	d, as, _ = b.attempts(t)
	require.Equal(t, delivery.StatusDelivered, d.Status)
	require.Equal(t, []string{"manual"}, triggers(as))
	require.Equal(t, int32(6), calls.Load())
}

// A 410 Gone disables the webhook at once, whatever the policy's threshold.
func TestEvent410DisablesAtOnce(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "this endpoint is gone", http.StatusGone)
	})
	b.disable = delivery.DisablePolicy{After: 24 * time.Hour, MinFailures: 100}
	b.newRun()
	b.run(t)

	d, as, _ := b.attempts(t)
	require.Len(t, as, 1)
	require.Equal(t, delivery.StatusFailed, d.Status)
	hook := b.theWebhook(t)
	require.False(t, hook.IsActive)
	require.Equal(t, "the receiver answered 410 Gone", hook.DisabledReason)
	require.Equal(t, int32(1), calls.Load())
}

// A delivery that ends failed publishes a delivery.exhausted notice to the webhook that
// asks for it, once; with nobody asking, nothing is stored.
func TestEventExhaustedNotice(t *testing.T) {
	t.Parallel()
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad payload", http.StatusBadRequest)
	})
	b.run(t)
	var notices int
	require.NoError(t, b.db.Get(&notices, `SELECT count(*) FROM events WHERE event_type = 'delivery.exhausted'`))
	require.Zero(t, notices, "nobody asked")

	ops, err := b.st.CreateWebhook(t.Context(), store.Webhook{AccountID: store.DefaultAccount, Name: "ops",
		URL: "https://ops.example.com/hooks", Events: []string{"delivery.exhausted"}, IsActive: true, Secret: "a-secret-of-16-chars"})
	require.NoError(t, err)
	eventID := uuid.NewString()
	b.publish(t, store.Event{ID: eventID, AccountID: store.DefaultAccount, EventType: "survey.response.completed", SurveyID: "survey-1",
		Body: []byte(`{"event_id":"` + eventID + `"}`)}, delivery.TriggerAuto)
	b.run(t)
	d, _, _ := b.attempts(t)
	var ids []string
	require.NoError(t, b.db.Select(&ids, `SELECT id FROM events WHERE event_type = 'delivery.exhausted'`))
	require.Len(t, ids, 1)
	notice, err := b.st.GetEvent(t.Context(), ids[0])
	require.NoError(t, err)
	require.Contains(t, string(notice.Body), `"id":"`+d.ID.String()+`"`)
	require.Contains(t, string(notice.Body), `"lastStatusCode":400`)
	targets, err := b.st.ListEventTargets(t.Context(), ids[0])
	require.NoError(t, err)
	require.Len(t, targets, 1)
	require.Equal(t, ops.ID, targets[0].WebhookID, "to the webhook that asked for it")
}
