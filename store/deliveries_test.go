package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
)

// seedDelivery stores a webhook of survey-1 and publishes an event to it.
func seedDelivery(t *testing.T, st *store.Store) (store.Event, store.EventDelivery) {
	t.Helper()
	ctx := t.Context()
	_, err := st.CreateWebhook(ctx, newWebhook("survey-1", "hook"))
	require.NoError(t, err)
	p, err := st.PublishEvent(ctx, completedEvent(uuid.NewString(), "survey-1"))
	require.NoError(t, err)
	require.True(t, p.Created)
	require.Nil(t, p.Event.DispatchedAt)
	require.Len(t, p.Deliveries, 1)
	return p.Event, p.Deliveries[0]
}

// RecordAttempts stores every column of each attempt as RecordAttempt does, NULLs
// included, and only the attempts whose delivery's count is still their prior one.
func TestRecordAttemptsStoresEachColumn(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	_, first := seedDelivery(t, st)
	p, err := st.PublishEvent(ctx, completedEvent(uuid.NewString(), "survey-1"))
	require.NoError(t, err)
	second := p.Deliveries[0]
	started := time.Date(2026, 12, 5, 10, 0, 0, 123456000, time.UTC)
	next := started.Add(time.Minute)
	status := 503
	answered := store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: first.ID, Trigger: delivery.TriggerManual,
		StartedAt: started, DurationMS: 12.5, RequestURL: "https://receiver.example.com/hooks",
		RequestHeaders: []byte(`{"Webhook-Id":["x"]}`), RequestBody: `{"a":"é <&>"}`,
		ResponseStatus: &status, ResponseHeaders: []byte(`{"Retry-After":["120"]}`), ResponseBody: "busy", Error: "receiver answered 503"}
	unanswered := store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: second.ID, Trigger: delivery.TriggerAuto,
		StartedAt: started, DurationMS: 30000, RequestURL: "https://receiver.example.com/hooks",
		RequestHeaders: []byte(`{}`), Error: "timed out after 30s"}
	stale := unanswered
	stale.ID = uuid.Must(uuid.NewV7())

	recorded, err := st.RecordAttempts(ctx, []store.AttemptRecord{
		{Attempt: answered, Prior: 0, Outcome: store.Outcome{Status: delivery.StatusRetrying, NextAttemptAt: &next, LastStatusCode: &status, LastError: "receiver answered 503"}},
		{Attempt: unanswered, Prior: 0, Outcome: store.Outcome{Status: delivery.StatusFailed, LastError: "timed out after 30s"}},
		{Attempt: stale, Prior: 3, Outcome: store.Outcome{Status: delivery.StatusFailed}},
	})
	require.NoError(t, err)
	require.Equal(t, map[uuid.UUID]bool{answered.ID: true, unanswered.ID: true}, recorded)

	as, err := st.ListAttempts(ctx, first.ID)
	require.NoError(t, err)
	require.Len(t, as, 1)
	got := as[0]
	require.Equal(t, 1, got.Number)
	require.Equal(t, delivery.TriggerManual, got.Trigger)
	require.True(t, started.Equal(got.StartedAt), got.StartedAt)
	require.Equal(t, 12.5, got.DurationMS)
	require.JSONEq(t, `{"Webhook-Id":["x"]}`, string(got.RequestHeaders))
	require.Equal(t, `{"a":"é <&>"}`, got.RequestBody)
	require.Equal(t, 503, *got.ResponseStatus)
	require.JSONEq(t, `{"Retry-After":["120"]}`, string(got.ResponseHeaders))
	require.Equal(t, "busy", got.ResponseBody)
	target, err := st.GetTarget(ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.StatusRetrying, target.Status)
	require.True(t, next.Equal(*target.NextAttemptAt))

	as, err = st.ListAttempts(ctx, second.ID)
	require.NoError(t, err)
	require.Len(t, as, 1)
	require.Nil(t, as[0].ResponseStatus)
	require.Equal(t, "null", string(as[0].ResponseHeaders))
	target, err = st.GetTarget(ctx, second.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.StatusFailed, target.Status)
	require.Nil(t, target.NextAttemptAt)
}
