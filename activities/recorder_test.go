package activities

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// setupStore returns a store over a fresh database.
func setupStore(t *testing.T) (*store.Store, *sqlx.DB) {
	t.Helper()
	db := testenv.Postgres(t)
	return store.New(db, testenv.Keyring()), db
}

func attemptOf(deliveryID uuid.UUID, code int) store.Attempt {
	return store.Attempt{DeliveryID: deliveryID, Trigger: delivery.TriggerAuto, StartedAt: time.Now(),
		RequestURL: "https://receiver.example.com/hooks", RequestHeaders: []byte(`{"A":["b"]}`),
		ResponseStatus: &code, ResponseHeaders: []byte(`{}`)}
}

func retrying(int) store.Outcome {
	next := time.Now().Add(time.Minute)
	return store.Outcome{Status: delivery.StatusRetrying, NextAttemptAt: &next, LastError: "receiver answered 500"}
}

// seedDeliveries stores n events of survey-1, each fanned out to one webhook, and returns
// their deliveries.
func seedDeliveries(t *testing.T, st *store.Store, n int) []uuid.UUID {
	t.Helper()
	ctx := t.Context()
	_, err := st.CreateWebhook(ctx, store.Webhook{AccountID: store.DefaultAccount, SurveyID: "survey-1", Name: "hook", URL: "https://receiver.example.com/hooks",
		Events: []string{"survey.response.completed"}, IsActive: true, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	require.NoError(t, err)
	ids := make([]uuid.UUID, n)
	for i := range ids {
		p, err := st.PublishEvent(ctx, store.Event{ID: fmt.Sprintf("event-%d", i), AccountID: store.DefaultAccount, EventType: "survey.response.completed", SurveyID: "survey-1", Body: []byte(`{}`)})
		require.NoError(t, err)
		require.Len(t, p.Deliveries, 1)
		ids[i] = p.Deliveries[0].ID
	}
	return ids
}

// batchRecorder records attempts from goroutines and collects the batch sizes the
// recorder reports.
type batchRecorder struct {
	t   *testing.T
	rec *recorder
	wg  sync.WaitGroup

	mu      sync.Mutex
	sizes   []int
	numbers map[uuid.UUID][]int
	errs    map[uuid.UUID]error
}

func newBatchRecorder(t *testing.T, st *store.Store) *batchRecorder {
	r := &batchRecorder{t: t, rec: newRecorder(st), numbers: map[uuid.UUID][]int{}, errs: map[uuid.UUID]error{}}
	r.rec.observe = func(size int) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.sizes = append(r.sizes, size)
	}
	return r
}

// record starts recording an attempt of delivery answered 500, from count 0.
func (r *batchRecorder) record(delivery uuid.UUID, trigger string) {
	r.wg.Go(func() {
		a := attemptOf(delivery, 500)
		a.Trigger = trigger
		n, _, _, err := r.rec.record(context.Background(), a, 0, retrying)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.errs[delivery] = err
			return
		}
		r.numbers[delivery] = append(r.numbers[delivery], n)
	})
}

func (r *batchRecorder) batchSizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.sizes...)
}

// occupyFlushers locks two deliveries' rows and records an attempt of each, so that both
// of the recorder's attempt statements wait for the lock: whatever is recorded next queues up.
// The returned function releases the lock.
func (r *batchRecorder) occupyFlushers(db *sqlx.DB, first, second uuid.UUID) func() {
	r.t.Helper()
	lock, err := db.BeginTxx(r.t.Context(), nil)
	require.NoError(r.t, err)
	r.t.Cleanup(func() { _ = lock.Rollback() })
	_, err = lock.ExecContext(r.t.Context(), `SELECT id FROM deliveries WHERE id = ANY ($1) FOR UPDATE`,
		[]string{first.String(), second.String()})
	require.NoError(r.t, err)
	// One at a time: each must be a statement of its own.
	for i, d := range []uuid.UUID{first, second} {
		r.record(d, delivery.TriggerAuto)
		require.Eventually(r.t, func() bool { return len(r.batchSizes()) == i+1 }, 10*time.Second, time.Millisecond)
	}
	return func() { require.NoError(r.t, lock.Rollback()) }
}

// busyBatch seeds n deliveries and occupies the recorder's attempt statements with the first
// two: what the test records next queues up until release.
func busyBatch(t *testing.T, n int) (st *store.Store, db *sqlx.DB, deliveries []uuid.UUID, r *batchRecorder, release func()) {
	t.Helper()
	st, db = setupStore(t)
	deliveries = seedDeliveries(t, st, n)
	r = newBatchRecorder(t, st)
	release = r.occupyFlushers(db, deliveries[0], deliveries[1])
	return st, db, deliveries, r, release
}

// waitQueued waits until n attempts wait for a batch.
func (r *batchRecorder) waitQueued(n int) {
	r.t.Helper()
	require.Eventually(r.t, func() bool { return r.rec.queue.Queued() == n }, 10*time.Second, time.Millisecond)
}

// Attempts that come while the recorder's attempt statements are busy are recorded together,
// in one statement, each numbered and stored as if alone.
func TestRecordAttemptBatchesConcurrentAttempts(t *testing.T) {
	t.Parallel()
	st, db, deliveries, r, release := busyBatch(t, 12)
	for _, d := range deliveries[2:] {
		r.record(d, delivery.TriggerAuto)
	}
	r.waitQueued(10)
	release()
	r.wg.Wait()

	require.Equal(t, []int{1, 1, 10}, r.batchSizes())
	require.Empty(t, r.errs)
	for _, d := range deliveries {
		require.Equal(t, []int{1}, r.numbers[d], d)
		as, err := st.ListAttempts(t.Context(), d)
		require.NoError(t, err)
		require.Len(t, as, 1)
		a := as[0]
		require.Equal(t, 1, a.Number)
		require.Equal(t, delivery.TriggerAuto, a.Trigger)
		require.Equal(t, "https://receiver.example.com/hooks", a.RequestURL)
		require.JSONEq(t, `{"A":["b"]}`, string(a.RequestHeaders))
		require.JSONEq(t, `{}`, string(a.ResponseHeaders))
		require.Equal(t, 500, *a.ResponseStatus)
		target, err := st.GetTarget(t.Context(), d)
		require.NoError(t, err)
		require.Equal(t, 1, target.AttemptCount)
		require.Equal(t, delivery.StatusRetrying, target.Status)
	}
	var next int
	require.NoError(t, db.GetContext(t.Context(), &next,
		`SELECT count(*) FROM deliveries WHERE next_attempt_at > now() AND last_error = 'receiver answered 500'`))
	require.Equal(t, 12, next, "every delivery has the outcome of its attempt")
}

// Two attempts of one delivery from the same count in one batch: the statement stores one,
// and the other is numbered again under the delivery's lock.
func TestRecordAttemptBatchWithTwoAttemptsOfOneDelivery(t *testing.T) {
	t.Parallel()
	st, _, deliveries, r, release := busyBatch(t, 4)
	r.record(deliveries[2], delivery.TriggerAuto)
	r.record(deliveries[2], delivery.TriggerManual)
	r.record(deliveries[3], delivery.TriggerAuto)
	r.waitQueued(3)
	release()
	r.wg.Wait()

	require.Equal(t, []int{1, 1, 3}, r.batchSizes()[:3])
	require.Empty(t, r.errs)
	require.ElementsMatch(t, []int{1, 2}, r.numbers[deliveries[2]])
	require.Equal(t, []int{1}, r.numbers[deliveries[3]])
	as, err := st.ListAttempts(t.Context(), deliveries[2])
	require.NoError(t, err)
	require.Len(t, as, 2)
	require.ElementsMatch(t, []string{delivery.TriggerAuto, delivery.TriggerManual}, []string{as[0].Trigger, as[1].Trigger})
}

// A row the database refuses fails its own call only: the others of its batch are recorded.
func TestRecordAttemptBatchIsolatesARefusedRow(t *testing.T) {
	t.Parallel()
	st, _, deliveries, r, release := busyBatch(t, 5)
	r.record(deliveries[2], delivery.TriggerAuto)
	r.record(deliveries[3], "bogus") // refused by the trigger column's CHECK
	r.record(deliveries[4], delivery.TriggerAuto)
	r.waitQueued(3)
	release()
	r.wg.Wait()

	require.Equal(t, []int{1, 1, 3}, r.batchSizes())
	require.Len(t, r.errs, 1)
	require.ErrorContains(t, r.errs[deliveries[3]], "record attempt of delivery "+deliveries[3].String())
	for _, d := range []uuid.UUID{deliveries[0], deliveries[1], deliveries[2], deliveries[4]} {
		require.Equal(t, []int{1}, r.numbers[d], d)
	}
	target, err := st.GetTarget(t.Context(), deliveries[3])
	require.NoError(t, err)
	require.Zero(t, target.AttemptCount, "a refused attempt changes nothing")
	as, err := st.ListAttempts(t.Context(), deliveries[3])
	require.NoError(t, err)
	require.Empty(t, as)
}

func TestRecordAttemptNumbersFromTheCurrentCount(t *testing.T) {
	t.Parallel()
	st, _ := setupStore(t)
	rec := newRecorder(st)
	ctx := t.Context()
	d := seedDeliveries(t, st, 1)[0]

	var decided []int
	decide := func(n int) store.Outcome { decided = append(decided, n); return retrying(n) }
	n, out, _, err := rec.record(ctx, attemptOf(d, 500), 0, decide)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, delivery.StatusRetrying, out.Status)

	// A caller that read the count before attempt 1 was recorded (a manual attempt racing
	// the schedule) gets the next number, decided again for that number.
	decided = nil
	n, _, _, err = rec.record(ctx, attemptOf(d, 500), 0, decide)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []int{1, 2}, decided)

	n, out, _, err = rec.record(ctx, attemptOf(d, 200), 2, func(int) store.Outcome {
		return store.Outcome{Status: delivery.StatusDelivered}
	})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, delivery.StatusDelivered, out.Status)

	as, err := st.ListAttempts(ctx, d)
	require.NoError(t, err)
	require.Len(t, as, 3)
	for i, a := range as {
		require.Equal(t, i+1, a.Number)
		require.JSONEq(t, `{"A":["b"]}`, string(a.RequestHeaders))
	}
	target, err := st.GetTarget(ctx, d)
	require.NoError(t, err)
	require.Equal(t, 3, target.AttemptCount)
	require.Equal(t, delivery.StatusDelivered, target.Status)
	require.NotNil(t, target.Webhook.ID)
}

func TestRecordAttemptConcurrentAttemptsGetDistinctNumbers(t *testing.T) {
	t.Parallel()
	st, _ := setupStore(t)
	rec := newRecorder(st)
	d := seedDeliveries(t, st, 1)[0]

	var wg sync.WaitGroup
	numbers := make([]int, 10)
	for i := range numbers {
		wg.Go(func() {
			n, _, _, err := rec.record(t.Context(), attemptOf(d, 500), 0, retrying)
			require.NoError(t, err)
			numbers[i] = n
		})
	}
	wg.Wait()
	require.ElementsMatch(t, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, numbers)
}

func TestRecordAttemptOfDeletedDelivery(t *testing.T) {
	t.Parallel()
	st, db := setupStore(t)
	d := seedDeliveries(t, st, 1)[0]
	_, err := db.Exec(`DELETE FROM webhooks`)
	require.NoError(t, err)

	_, _, _, err = newRecorder(st).record(t.Context(), attemptOf(d, 500), 0, retrying)
	require.ErrorIs(t, err, store.ErrNotFound)
}
