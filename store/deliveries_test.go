package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
)

// seedFanOut stores a webhook of survey-1 and an event, and fans the event out to it.
func seedFanOut(t *testing.T, st *store.Store) (store.Event, store.Subscription) {
	t.Helper()
	ctx := t.Context()
	hook, err := st.CreateWebhook(ctx, newWebhook("survey-1", "hook"))
	require.NoError(t, err)
	ev, created, err := st.InsertEvent(ctx, store.Event{ID: uuid.NewString(), EventType: "survey.response.completed", SurveyID: "survey-1", Body: []byte(`{}`)})
	require.NoError(t, err)
	require.True(t, created)
	require.Nil(t, ev.DispatchedAt)
	subs, err := st.FanOut(ctx, ev.ID, func(context.Context, store.Event) ([]uuid.UUID, error) { return []uuid.UUID{hook.ID}, nil })
	require.NoError(t, err)
	require.Len(t, subs, 1)
	return ev, subs[0]
}

func TestFanOutOnceAndMarksDispatched(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	ev, sub := seedFanOut(t, st)

	got, err := st.GetEvent(ctx, ev.ID)
	require.NoError(t, err)
	require.NotNil(t, got.FannedOutAt)
	require.NotNil(t, got.DispatchedAt, "a fanned-out event's workflow runs: it is dispatched")

	// Later calls (a later run of the workflow) keep the first fan-out, whatever pick says.
	other, err := st.CreateWebhook(ctx, newWebhook("survey-1", "other"))
	require.NoError(t, err)
	for range 3 {
		subs, err := st.FanOut(ctx, ev.ID, func(context.Context, store.Event) ([]uuid.UUID, error) { return []uuid.UUID{other.ID}, nil })
		require.NoError(t, err)
		require.Equal(t, []store.Subscription{sub}, subs)
	}
}

func TestFanOutConcurrentCallsMakeOneSetOfDeliveries(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	var hooks []uuid.UUID
	for _, name := range []string{"a", "b", "c"} {
		h, err := st.CreateWebhook(ctx, newWebhook("survey-1", name))
		require.NoError(t, err)
		hooks = append(hooks, h.ID)
	}
	ev, _, err := st.InsertEvent(ctx, store.Event{ID: "concurrent", EventType: "survey.response.completed", SurveyID: "survey-1", Body: []byte(`{}`)})
	require.NoError(t, err)

	var wg sync.WaitGroup
	results := make([][]store.Subscription, 8)
	for i := range results {
		wg.Go(func() {
			subs, err := st.FanOut(ctx, ev.ID, func(context.Context, store.Event) ([]uuid.UUID, error) { return hooks, nil })
			require.NoError(t, err)
			results[i] = subs
		})
	}
	wg.Wait()
	for _, subs := range results {
		require.Len(t, subs, 3)
		require.Equal(t, results[0], subs)
	}
}

func TestFanOutOfMissingEvent(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	_, err := st.FanOut(t.Context(), "no-such-event", func(context.Context, store.Event) ([]uuid.UUID, error) { return nil, nil })
	require.ErrorIs(t, err, store.ErrNotFound)
}

func attemptOf(deliveryID uuid.UUID, code int) store.Attempt {
	return store.Attempt{DeliveryID: deliveryID, Trigger: store.TriggerAuto, StartedAt: time.Now(),
		RequestURL: "https://receiver.example.com/hooks", RequestHeaders: []byte(`{"A":["b"]}`),
		ResponseStatus: &code, ResponseHeaders: []byte(`{}`)}
}

func retrying(number int) store.Outcome {
	next := time.Now().Add(time.Minute)
	return store.Outcome{Status: store.StatusRetrying, NextAttemptAt: &next, LastError: "receiver answered 500"}
}

func TestRecordAttemptNumbersFromTheCurrentCount(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	_, sub := seedFanOut(t, st)

	var decided []int
	decide := func(n int) store.Outcome { decided = append(decided, n); return retrying(n) }
	n, out, err := st.RecordAttempt(ctx, attemptOf(sub.DeliveryID, 500), 0, decide)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, store.StatusRetrying, out.Status)

	// A caller that read the count before attempt 1 was recorded (a manual attempt racing
	// the schedule) gets the next number, decided again for that number.
	decided = nil
	n, _, err = st.RecordAttempt(ctx, attemptOf(sub.DeliveryID, 500), 0, decide)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []int{1, 2}, decided)

	n, out, err = st.RecordAttempt(ctx, attemptOf(sub.DeliveryID, 200), 2, func(int) store.Outcome {
		return store.Outcome{Status: store.StatusDelivered}
	})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, store.StatusDelivered, out.Status)

	as, err := st.ListAttempts(ctx, sub.DeliveryID)
	require.NoError(t, err)
	require.Len(t, as, 3)
	for i, a := range as {
		require.Equal(t, i+1, a.Number)
		require.JSONEq(t, `{"A":["b"]}`, string(a.RequestHeaders))
	}
	target, err := st.GetTarget(ctx, sub.DeliveryID)
	require.NoError(t, err)
	require.Equal(t, 3, target.AttemptCount)
	require.Equal(t, store.StatusDelivered, target.Status)
}

func TestRecordAttemptConcurrentAttemptsGetDistinctNumbers(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	_, sub := seedFanOut(t, st)

	var wg sync.WaitGroup
	numbers := make([]int, 10)
	for i := range numbers {
		wg.Go(func() {
			n, _, err := st.RecordAttempt(ctx, attemptOf(sub.DeliveryID, 500), 0, retrying)
			require.NoError(t, err)
			numbers[i] = n
		})
	}
	wg.Wait()
	require.ElementsMatch(t, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, numbers)
}

func TestRecordAttemptOfDeletedDelivery(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	_, sub := seedFanOut(t, st)
	_, err := db.Exec(`DELETE FROM webhooks WHERE id = $1`, sub.WebhookID)
	require.NoError(t, err)

	_, _, err = st.RecordAttempt(ctx, attemptOf(sub.DeliveryID, 500), 0, retrying)
	require.ErrorIs(t, err, store.ErrNotFound)
}
