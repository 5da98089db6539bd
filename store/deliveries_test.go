package store_test

import (
	"sync"
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
	p, err := st.PublishEvent(ctx, store.Event{ID: uuid.NewString(), EventType: "survey.response.completed", SurveyID: "survey-1", Body: []byte(`{}`)})
	require.NoError(t, err)
	require.True(t, p.Created)
	require.Nil(t, p.Event.DispatchedAt)
	require.Len(t, p.Deliveries, 1)
	return p.Event, p.Deliveries[0]
}

func attemptOf(deliveryID uuid.UUID, code int) store.Attempt {
	return store.Attempt{DeliveryID: deliveryID, Trigger: delivery.TriggerAuto, StartedAt: time.Now(),
		RequestURL: "https://receiver.example.com/hooks", RequestHeaders: []byte(`{"A":["b"]}`),
		ResponseStatus: &code, ResponseHeaders: []byte(`{}`)}
}

func retrying(number int) store.Outcome {
	next := time.Now().Add(time.Minute)
	return store.Outcome{Status: delivery.StatusRetrying, NextAttemptAt: &next, LastError: "receiver answered 500"}
}

func TestRecordAttemptNumbersFromTheCurrentCount(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	_, sub := seedDelivery(t, st)

	var decided []int
	decide := func(n int) store.Outcome { decided = append(decided, n); return retrying(n) }
	n, out, err := st.RecordAttempt(ctx, attemptOf(sub.ID, 500), 0, decide)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, delivery.StatusRetrying, out.Status)

	// A caller that read the count before attempt 1 was recorded (a manual attempt racing
	// the schedule) gets the next number, decided again for that number.
	decided = nil
	n, _, err = st.RecordAttempt(ctx, attemptOf(sub.ID, 500), 0, decide)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []int{1, 2}, decided)

	n, out, err = st.RecordAttempt(ctx, attemptOf(sub.ID, 200), 2, func(int) store.Outcome {
		return store.Outcome{Status: delivery.StatusDelivered}
	})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, delivery.StatusDelivered, out.Status)

	as, err := st.ListAttempts(ctx, sub.ID)
	require.NoError(t, err)
	require.Len(t, as, 3)
	for i, a := range as {
		require.Equal(t, i+1, a.Number)
		require.JSONEq(t, `{"A":["b"]}`, string(a.RequestHeaders))
	}
	target, err := st.GetTarget(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, 3, target.AttemptCount)
	require.Equal(t, delivery.StatusDelivered, target.Status)
}

func TestRecordAttemptConcurrentAttemptsGetDistinctNumbers(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	_, sub := seedDelivery(t, st)

	var wg sync.WaitGroup
	numbers := make([]int, 10)
	for i := range numbers {
		wg.Go(func() {
			n, _, err := st.RecordAttempt(ctx, attemptOf(sub.ID, 500), 0, retrying)
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
	_, sub := seedDelivery(t, st)
	_, err := db.Exec(`DELETE FROM webhooks WHERE id = $1`, sub.WebhookID)
	require.NoError(t, err)

	_, _, err = st.RecordAttempt(ctx, attemptOf(sub.ID, 500), 0, retrying)
	require.ErrorIs(t, err, store.ErrNotFound)
}
