package retention_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/retention"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

const maxAge = 30 * 24 * time.Hour

type bundle struct {
	db    *sqlx.DB
	te    *testenv.TemporalEnv
	now   time.Time
	old   time.Time // well past the retention
	young time.Time // well within it
}

// setup gives a test its own database, and a Temporal server with a worker running the
// retention workflow.
func setup(t *testing.T) *bundle {
	t.Helper()
	db := testenv.Postgres(t)
	st := store.New(db, testenv.Keyring())
	te := testenv.Temporal(t)
	te.StartWorker(t, func(r worker.Registry) { retention.Register(r, retention.NewActivities(st, nil)) })
	b := &bundle{db: db, te: te, now: time.Now()}
	b.old = b.now.Add(-maxAge - 10*24*time.Hour)
	b.young = b.now.Add(-time.Hour)
	return b
}

// event inserts an event created at created, dispatched unless dispatched is false.
func (b *bundle) event(t *testing.T, created time.Time, dispatched bool) string {
	t.Helper()
	id := "ev-" + uuid.NewString()
	var dispatchedAt *time.Time
	if dispatched {
		dispatchedAt = &created
	}
	_, err := b.db.Exec(`INSERT INTO events (id, account_id, event_type, survey_id, body, created_at, dispatched_at)
		VALUES ($1, 'default', 'survey.response.completed', 'survey-1', '{}', $2, $3)`, id, created, dispatchedAt)
	require.NoError(t, err)
	return id
}

// delivery inserts a delivery of event with status, last changed at updated, and one
// attempt started at each of attempts.
func (b *bundle) delivery(t *testing.T, eventID, status string, updated time.Time, attempts ...time.Time) uuid.UUID {
	t.Helper()
	// Each delivery gets its own webhook: an event has one delivery per webhook.
	webhook := uuid.New()
	_, err := b.db.Exec(`INSERT INTO webhooks (id, account_id, survey_id, name, url, events, secret_sealed)
		VALUES ($1, 'default', 'survey-1', 'hook', 'https://example.com/hook', '{*}', '\x01')`, webhook)
	require.NoError(t, err)
	id := uuid.New()
	_, err = b.db.Exec(`INSERT INTO deliveries (id, account_id, event_id, webhook_id, status, attempt_count, created_at, updated_at)
		VALUES ($1, 'default', $2, $3, $4, $5, $6, $6)`, id, eventID, webhook, status, len(attempts), updated)
	require.NoError(t, err)
	for i, started := range attempts {
		_, err := b.db.Exec(`INSERT INTO delivery_attempts (id, delivery_id, number, trigger, started_at,
			duration_ms, request_url, request_headers, request_body)
			VALUES ($1, $2, $3, 'auto', $4, 12.5, 'https://example.com/hook', '{}', '{}')`,
			uuid.New(), id, i+1, started)
		require.NoError(t, err)
	}
	return id
}

func (b *bundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Get(&n, query, args...))
	return n
}

func (b *bundle) eventExists(t *testing.T, id string) bool {
	return b.count(t, `SELECT count(*) FROM events WHERE id = $1`, id) == 1
}

func (b *bundle) attemptsOf(t *testing.T, deliveryID uuid.UUID) int {
	return b.count(t, `SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1`, deliveryID)
}

func (b *bundle) deliveryExists(t *testing.T, id uuid.UUID) bool {
	return b.count(t, `SELECT count(*) FROM deliveries WHERE id = $1`, id) == 1
}

// run executes the retention workflow on the test's worker and returns its result.
func (b *bundle) run(t *testing.T, in retention.Input) retention.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	run, err := b.te.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: b.te.TaskQueue},
		retention.WorkflowName, in)
	require.NoError(t, err)
	var res retention.Result
	require.NoError(t, run.Get(ctx, &res))
	return res
}

func TestRetentionDeletesOldHistoryAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// Finished long ago: everything goes.
	finished := b.event(t, b.old, true)
	delivered := b.delivery(t, finished, delivery.StatusDelivered, b.old, b.old, b.old.Add(time.Minute))
	failed := b.delivery(t, finished, delivery.StatusFailed, b.old, b.old)
	// Old, no subscriber at all: goes.
	noDeliveries := b.event(t, b.old, true)
	// Old but still retrying (a long custom schedule): all of it stays.
	retrying := b.event(t, b.old, true)
	retryingDelivery := b.delivery(t, retrying, delivery.StatusRetrying, b.old, b.old)
	// Old but never attempted yet: stays.
	pending := b.event(t, b.old, true)
	pendingDelivery := b.delivery(t, pending, delivery.StatusPending, b.old)
	// Failed long ago, retried by hand yesterday: the old attempt goes, the rest stays.
	retried := b.event(t, b.old, true)
	retriedDelivery := b.delivery(t, retried, delivery.StatusFailed, b.young, b.old, b.young)
	// Two deliveries, one finished long ago, one changed yesterday: the old attempt goes,
	// both deliveries and the event stay.
	mixed := b.event(t, b.old, true)
	mixedOld := b.delivery(t, mixed, delivery.StatusDelivered, b.old, b.old)
	mixedYoung := b.delivery(t, mixed, delivery.StatusFailed, b.young, b.young)
	// Young: stays.
	young := b.event(t, b.young, true)
	youngDelivery := b.delivery(t, young, delivery.StatusDelivered, b.young, b.young)
	// Old but still in the outbox (Temporal was away): stays, it has not been sent yet.
	queued := b.event(t, b.old, false)

	res := b.run(t, retention.Input{MaxAge: maxAge})
	require.Equal(t, retention.Result{Attempts: 5, Deliveries: 2, Events: 2}, res)

	require.False(t, b.eventExists(t, finished))
	require.False(t, b.deliveryExists(t, delivered))
	require.False(t, b.deliveryExists(t, failed))
	require.False(t, b.eventExists(t, noDeliveries))

	for _, id := range []string{retrying, pending, retried, mixed, young, queued} {
		require.True(t, b.eventExists(t, id), "event %s", id)
	}
	for _, id := range []uuid.UUID{retryingDelivery, pendingDelivery, retriedDelivery, mixedOld, mixedYoung, youngDelivery} {
		require.True(t, b.deliveryExists(t, id), "delivery %s", id)
	}
	require.Equal(t, 1, b.attemptsOf(t, retryingDelivery), "attempts of an unfinished delivery stay")
	require.Equal(t, 1, b.attemptsOf(t, retriedDelivery), "only the old attempt goes")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM delivery_attempts WHERE delivery_id = $1 AND started_at > $2`,
		retriedDelivery, b.now.Add(-maxAge)))
	require.Equal(t, 0, b.attemptsOf(t, mixedOld))
	require.Equal(t, 1, b.attemptsOf(t, mixedYoung))
	require.Equal(t, 1, b.attemptsOf(t, youngDelivery))

	// A second run finds nothing more.
	require.Equal(t, retention.Result{}, b.run(t, retention.Input{MaxAge: maxAge}))
}

func TestRetentionDeletesEverythingInSmallBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const events = 25
	for i := range events {
		ev := b.event(t, b.old.Add(time.Duration(i)*time.Minute), true)
		b.delivery(t, ev, delivery.StatusDelivered, b.old, b.old, b.old.Add(time.Second))
	}
	young := b.event(t, b.young, true)
	b.delivery(t, young, delivery.StatusDelivered, b.young, b.young)

	// 7 does not divide 25 or 50: the last batch of each kind is a short one.
	res := b.run(t, retention.Input{MaxAge: maxAge, BatchSize: 7})
	require.Equal(t, retention.Result{Attempts: 2 * events, Deliveries: events, Events: events}, res)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM events`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM deliveries`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM delivery_attempts`))
	require.True(t, b.eventExists(t, young))
}

func TestEnsureScheduleCreatesOnceAndRunsRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := b.event(t, b.old, true)
	b.delivery(t, old, delivery.StatusDelivered, b.old, b.old)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opts := retention.ScheduleOptions{TaskQueue: b.te.TaskQueue, Input: retention.Input{MaxAge: maxAge}}
	// Two workers starting: the first creates the schedule, the second leaves it as it is.
	require.NoError(t, retention.EnsureSchedule(ctx, b.te.Client, opts))
	require.NoError(t, retention.EnsureSchedule(ctx, b.te.Client, opts))

	handle := b.te.Client.ScheduleClient().GetHandle(ctx, retention.ScheduleID)
	desc, err := handle.Describe(ctx)
	require.NoError(t, err)
	// An unset update time reads as the Unix epoch.
	require.False(t, desc.Info.LastUpdateAt.After(desc.Info.CreatedAt), "an identical schedule is not updated")
	require.Equal(t, []client.ScheduleIntervalSpec{{Every: time.Hour}}, desc.Schedule.Spec.Intervals)
	require.Equal(t, retention.Input{MaxAge: maxAge, BatchSize: retention.DefaultBatchSize}, scheduledInput(t, desc))

	// The schedule's ID is unique in the namespace: listing finds exactly one.
	require.Eventually(t, func() bool {
		ids, err := scheduleIDs(ctx, b.te.Client)
		return err == nil && len(ids) == 1
	}, 30*time.Second, 100*time.Millisecond)

	// A worker started with another retention updates the schedule.
	opts.Input.MaxAge = 2 * maxAge
	require.NoError(t, retention.EnsureSchedule(ctx, b.te.Client, opts))
	desc, err = handle.Describe(ctx)
	require.NoError(t, err)
	require.True(t, desc.Info.LastUpdateAt.After(desc.Info.CreatedAt))
	require.Equal(t, 2*maxAge, scheduledInput(t, desc).MaxAge)
	ids, err := scheduleIDs(ctx, b.te.Client)
	require.NoError(t, err)
	require.Equal(t, []string{retention.ScheduleID}, ids)

	// Back to the standard retention and run it now: the schedule's workflow deletes.
	opts.Input.MaxAge = maxAge
	require.NoError(t, retention.EnsureSchedule(ctx, b.te.Client, opts))
	require.NoError(t, handle.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var started string
	require.Eventually(t, func() bool {
		desc, err := handle.Describe(ctx)
		if err != nil || len(desc.Info.RecentActions) == 0 {
			return false
		}
		started = desc.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		return true
	}, 30*time.Second, 100*time.Millisecond)
	var res retention.Result
	require.NoError(t, b.te.Client.GetWorkflow(ctx, started, "").Get(ctx, &res))
	require.Equal(t, retention.Result{Attempts: 1, Deliveries: 1, Events: 1}, res)
	require.False(t, b.eventExists(t, old))

	// Retention switched off: the schedule goes, and deleting again is no error.
	require.NoError(t, retention.DeleteSchedule(ctx, b.te.Client))
	require.NoError(t, retention.DeleteSchedule(ctx, b.te.Client))
	_, err = handle.Describe(ctx)
	require.Error(t, err)
}

// scheduledInput decodes the input the schedule starts its workflow with.
func scheduledInput(t *testing.T, desc *client.ScheduleDescription) retention.Input {
	t.Helper()
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok, "action is %T", desc.Schedule.Action)
	require.Equal(t, retention.WorkflowName, action.Workflow)
	require.Len(t, action.Args, 1)
	payload, ok := action.Args[0].(*commonpb.Payload)
	require.True(t, ok, "argument is %T", action.Args[0])
	var in retention.Input
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(payload, &in))
	return in
}

// scheduleIDs lists the namespace's schedules (through visibility, which lags a little).
func scheduleIDs(ctx context.Context, c client.Client) ([]string, error) {
	iter, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return nil, err
	}
	var ids []string
	for iter.HasNext() {
		entry, err := iter.Next()
		if err != nil {
			return nil, err
		}
		ids = append(ids, entry.ID)
	}
	return ids, nil
}

// Webhook stats go by the hour, in batches: the hours before the cutoff, not the later ones.
func TestRetentionDeletesOldStatsHours(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ev := b.event(t, b.young, true)
	b.delivery(t, ev, delivery.StatusDelivered, b.young)
	var webhook uuid.UUID
	require.NoError(t, b.db.Get(&webhook, `SELECT webhook_id FROM deliveries`))
	const oldHours = 9
	hours := []time.Time{b.young.Truncate(time.Hour), b.now.Add(-maxAge + time.Hour).Truncate(time.Hour)}
	for i := range oldHours {
		hours = append(hours, b.old.Truncate(time.Hour).Add(time.Duration(i)*time.Hour))
	}
	for _, h := range hours {
		_, err := b.db.Exec(`INSERT INTO webhook_stats (webhook_id, bucket, attempts, successes, failures, latency_counts)
			VALUES ($1, $2, 1, 1, 0, '{1}')`, webhook, h)
		require.NoError(t, err)
	}
	res := b.run(t, retention.Input{MaxAge: maxAge, BatchSize: 4})
	require.Equal(t, retention.Result{StatsHours: oldHours}, res)
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM webhook_stats WHERE bucket >= $1`, b.now.Add(-maxAge-time.Hour)))
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM webhook_stats`))
}
