package workflows_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// scheduleBundle runs the Event workflow in Temporal's time-skipping test environment with
// the real activities, a real database and a real receiver.
type scheduleBundle struct {
	env    *testsuite.TestWorkflowEnvironment
	db     *sqlx.DB
	st     *store.Store
	client *http.Client
	input  delivery.EventInput
	// disable is the activities' delivery.DisablePolicy (the zero value: 410 only).
	disable delivery.DisablePolicy
}

// setupSchedule stores a webhook at the receiver and publishes an event it subscribes to,
// as the delivery service does.
func setupSchedule(t *testing.T, receiver http.HandlerFunc) *scheduleBundle {
	t.Helper()
	db := testenv.Postgres(t)
	st := store.New(db, testenv.Keyring())
	srv := httptest.NewServer(receiver)
	t.Cleanup(srv.Close)

	policy := netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	b := &scheduleBundle{db: db, st: st, client: policy.Client()}
	seedWebhook(t, st, srv.URL)
	eventID := uuid.NewString()
	b.publish(t, store.Event{ID: eventID, AccountID: store.DefaultAccount, EventType: "survey.response.completed", SurveyID: "survey-1",
		Body: []byte(`{"event_id":"` + eventID + `"}`)}, delivery.TriggerAuto)
	return b
}

// schedule is the documented schedule with a short attempt timeout.
var schedule = delivery.Schedule{Delays: delivery.DefaultRetryDelays, AttemptTimeout: 5 * time.Second}

// publish stores ev with its deliveries and makes them the workflow's input, as the delivery
// service does.
func (b *scheduleBundle) publish(t *testing.T, ev store.Event, trigger string) {
	t.Helper()
	p, err := b.st.PublishEvent(t.Context(), ev)
	require.NoError(t, err)
	require.Len(t, p.Deliveries, 1)
	b.input = input(ev, trigger, p.Deliveries)
	b.newRun()
}

func input(ev store.Event, trigger string, ds []store.EventDelivery) delivery.EventInput {
	in := delivery.EventInput{EventID: ev.ID, EventType: ev.EventType, SurveyID: ev.SurveyID, Trigger: trigger, Schedule: schedule}
	for _, d := range ds {
		in.Deliveries = append(in.Deliveries, delivery.Target{DeliveryID: d.ID, WebhookID: d.WebhookID, URL: d.URL, Status: d.Status})
	}
	return in
}

// newRun gives the bundle a fresh test environment, as for another run of the same event's
// workflow (what SignalWithStart starts after the first run closed), whose input lists the
// deliveries as they are now.
func (b *scheduleBundle) restart(t *testing.T) {
	t.Helper()
	ev, err := b.st.GetEvent(t.Context(), b.input.EventID)
	require.NoError(t, err)
	ds, err := b.st.ListEventTargets(t.Context(), ev.ID)
	require.NoError(t, err)
	b.input = input(ev, b.input.Trigger, ds)
	b.newRun()
}

func (b *scheduleBundle) newRun() {
	var suite testsuite.WorkflowTestSuite
	b.env = suite.NewTestWorkflowEnvironment()
	// The test environment runs activities on the workflow's goroutine: on a loaded machine
	// their statements may take longer than the default 1 s deadlock check allows.
	b.env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
	acts := activities.New(b.st, b.client, activities.Config{Schedule: schedule, Disable: b.disable}, nil, activities.WithClock(b.env.Now))
	workflows.Register(b.env, acts)
}

// seedWebhook stores one active webhook of survey-1 at url subscribed to survey responses.
func seedWebhook(t *testing.T, st *store.Store, url string) {
	t.Helper()
	_, err := st.CreateWebhook(t.Context(), store.Webhook{AccountID: store.DefaultAccount, SurveyID: "survey-1",
		Name: "hook", URL: url, Events: []string{"survey.response.*"}, IsActive: true, Secret: "a-secret-of-16-chars"})
	require.NoError(t, err)
}

// attempts returns the only delivery's attempts and their offsets from the first one.
func (b *scheduleBundle) attempts(t *testing.T) (store.Delivery, []store.Attempt, []time.Duration) {
	t.Helper()
	ds, err := b.st.ListEventDeliveries(context.Background(), b.input.EventID)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	as, err := b.st.ListAttempts(context.Background(), ds[0].ID)
	require.NoError(t, err)
	var offsets []time.Duration
	for _, a := range as {
		offsets = append(offsets, a.StartedAt.Sub(as[0].StartedAt).Round(time.Second))
	}
	return ds[0], as, offsets
}

func (b *scheduleBundle) run(t *testing.T) delivery.EventResult {
	t.Helper()
	b.env.ExecuteWorkflow(workflows.Event, b.input)
	require.True(t, b.env.IsWorkflowCompleted())
	require.NoError(t, b.env.GetWorkflowError())
	var res delivery.EventResult
	require.NoError(t, b.env.GetWorkflowResult(&res))
	return res
}

func TestEventAlways500FollowsTheSchedule(t *testing.T) {
	t.Parallel()
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	})
	res := b.run(t)

	d, as, offsets := b.attempts(t)
	require.Equal(t, []time.Duration{0, time.Minute, 6 * time.Minute, 21 * time.Minute,
		time.Hour + 21*time.Minute, 7*time.Hour + 21*time.Minute}, offsets)
	require.Equal(t, delivery.StatusFailed, d.Status)
	require.Equal(t, 6, d.AttemptCount)
	require.Nil(t, d.NextAttemptAt)
	for i, a := range as {
		require.Equal(t, i+1, a.Number)
		require.Equal(t, delivery.TriggerAuto, a.Trigger)
		require.Equal(t, 500, *a.ResponseStatus)
	}
	require.Equal(t, delivery.StatusFailed, res.Deliveries[0].Status)
}

func TestEventFirst2xxStopsTheAttempts(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	res := b.run(t)

	d, _, offsets := b.attempts(t)
	require.Equal(t, []time.Duration{0, time.Minute, 6 * time.Minute}, offsets)
	require.Equal(t, delivery.StatusDelivered, d.Status)
	require.NotNil(t, d.DeliveredAt)
	require.Equal(t, int32(3), calls.Load())
	require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
}

func TestEvent400StopsAfterOneAttempt(t *testing.T) {
	t.Parallel()
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad payload", http.StatusBadRequest)
	})
	b.run(t)

	d, as, _ := b.attempts(t)
	require.Len(t, as, 1)
	require.Equal(t, delivery.StatusFailed, d.Status)
	require.Contains(t, d.LastError, "400")
	require.Contains(t, as[0].ResponseBody, "bad payload")
}

func TestEvent429HonorsRetryAfter(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			// Longer than the schedule's 1 m: honoured.
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		case 2:
			// Longer than the schedule's longest delay (6 h): capped at 6 h.
			w.Header().Set("Retry-After", "86400")
			w.WriteHeader(http.StatusTooManyRequests)
		case 3:
			// Shorter than the schedule's 15 m: the schedule wins.
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	b.run(t)

	d, _, offsets := b.attempts(t)
	require.Equal(t, []time.Duration{0, 2 * time.Minute, 6*time.Hour + 2*time.Minute, 6*time.Hour + 17*time.Minute}, offsets)
	require.Equal(t, delivery.StatusDelivered, d.Status)
}

func TestEventRetrySignalDuringWaitAttemptsAtOnce(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	})
	// Attempt 3 is at +6 m; attempt 4 would be at +21 m. Ask at +11 m.
	b.env.RegisterDelayedCallback(func() {
		ds, err := b.st.ListEventDeliveries(context.Background(), b.input.EventID)
		require.NoError(t, err)
		require.Equal(t, delivery.StatusRetrying, ds[0].Status)
		require.Equal(t, 3, ds[0].AttemptCount)
		b.env.SignalWorkflow(delivery.RetrySignal, delivery.RetryRequest{DeliveryID: ds[0].ID})
	}, 11*time.Minute)
	b.run(t)

	d, as, offsets := b.attempts(t)
	// The manual attempt takes slot 4; the schedule goes on from there: +1 h, then +6 h.
	require.Equal(t, []time.Duration{0, time.Minute, 6 * time.Minute, 11 * time.Minute,
		time.Hour + 11*time.Minute, 7*time.Hour + 11*time.Minute}, offsets)
	require.Equal(t, []string{"auto", "auto", "auto", "manual", "auto", "auto"}, triggers(as))
	require.Equal(t, delivery.StatusFailed, d.Status)
	require.Equal(t, int32(6), calls.Load())
}

func TestEventRetrySignalAfterFinalFailureGivesOneMoreAttempt(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "no such hook", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	// The 404 fails the delivery at once and the workflow closes.
	res := b.run(t)
	require.Equal(t, delivery.StatusFailed, res.Deliveries[0].Status)
	d, _, _ := b.attempts(t)
	require.Equal(t, delivery.StatusFailed, d.Status)

	// The API's SignalWithStart starts a new run with the signal waiting for it.
	b.restart(t)
	b.env.RegisterDelayedCallback(func() {
		b.env.SignalWorkflow(delivery.RetrySignal, delivery.RetryRequest{DeliveryID: d.ID})
	}, 0)
	res = b.run(t)

	d, as, _ := b.attempts(t)
	require.Equal(t, delivery.StatusDelivered, d.Status)
	require.Equal(t, []string{"auto", "manual"}, triggers(as))
	require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
	require.Equal(t, int32(2), calls.Load())
}

func triggers(as []store.Attempt) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Trigger)
	}
	return out
}

// Tries that never reach the receiver or are never recorded (PostgreSQL down, a worker
// killed) cost no attempt of the schedule: Deliver fails without recording anything many
// more times than the schedule has attempts, then works, and the delivery gets through.
func TestEventOutlastsFailuresThatRecordNothing(t *testing.T) {
	t.Parallel()
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	var calls atomic.Int32
	// More than the schedule's attempts, but within the 10 tries the test environment
	// allows a policy without a cap (a real server has no such limit).
	failures := int32(schedule.MaxAttempts() + 3)
	b.env.OnActivity("Deliver", mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.DeliverInput) (activities.DeliverResult, error) {
			if calls.Add(1) <= failures {
				return activities.DeliverResult{}, errors.New("load delivery: connection refused")
			}
			return activities.DeliverResult{Status: delivery.StatusDelivered, Attempts: 1}, nil
		})
	res := b.run(t)
	require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
	require.Equal(t, failures+1, calls.Load())
}

// A retry of a webhook test whose workflow has closed starts a new run: it makes the one
// manual attempt asked for, and does not send the test again on its own.
func TestTestEventRetryAfterCloseMakesOneAttempt(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	var webhookID uuid.UUID
	require.NoError(t, b.db.Get(&webhookID, `SELECT id FROM webhooks`))
	eventID := "test-" + uuid.NewString()
	b.publish(t, store.Event{ID: eventID, AccountID: store.DefaultAccount, EventType: "webhook.test", SurveyID: "survey-1",
		Body: []byte(`{"event_id":"` + eventID + `"}`), TargetWebhookID: &webhookID}, delivery.TriggerTest)

	res := b.run(t)
	require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
	d, as, _ := b.attempts(t)
	require.Equal(t, []string{"test"}, triggers(as))

	b.restart(t)
	b.env.RegisterDelayedCallback(func() {
		b.env.SignalWorkflow(delivery.RetrySignal, delivery.RetryRequest{DeliveryID: d.ID, Force: true})
	}, 0)
	res = b.run(t)

	_, as, _ = b.attempts(t)
	require.Equal(t, []string{"test", "manual"}, triggers(as))
	require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
	require.Equal(t, int32(2), calls.Load())
}

// A pause the receiver asked for holds the schedule's first attempt until it ends, on the
// schedule's activity: the delivery is made once, as attempt 1, when the pause is over.
func TestEventHeldByAPause(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	start := b.env.Now()
	require.NoError(t, b.st.PauseWebhook(t.Context(), b.input.Deliveries[0].WebhookID, start.Add(10*time.Second)))
	res := b.run(t)

	d, as, _ := b.attempts(t)
	require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
	require.Equal(t, 1, d.AttemptCount, "the wait cost no attempt")
	require.Len(t, as, 1)
	require.Equal(t, delivery.TriggerAuto, as[0].Trigger)
	require.GreaterOrEqual(t, as[0].StartedAt.Sub(start), 10*time.Second, "not before the pause ended")
	require.Less(t, as[0].StartedAt.Sub(start), 15*time.Second, "soon after it")
	require.Equal(t, int32(1), calls.Load())
}

// An attempt past the webhook's rate limit waits for its turn and goes then: a manual
// retry keeps its trigger through the wait.
func TestEventHeldByTheRateLimit(t *testing.T) {
	t.Parallel()
	b := setupSchedule(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	hookID := b.input.Deliveries[0].WebhookID
	one := 1.0
	scope := store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}
	_, err := b.st.UpdateWebhook(t.Context(), scope, hookID, store.WebhookUpdate{RateLimit: &store.RateLimit{PerSecond: one / 30, Burst: 1}})
	require.NoError(t, err)
	// Another request took the slot: the next one is 30 s away.
	start := b.env.Now()
	wait, err := b.st.TakeSlot(t.Context(), hookID, store.RateLimit{PerSecond: one / 30, Burst: 1}, start)
	require.NoError(t, err)
	require.Zero(t, wait)
	b.input.Trigger = delivery.TriggerManual
	res := b.run(t)

	d, as, _ := b.attempts(t)
	require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
	require.Equal(t, 1, d.AttemptCount)
	require.Equal(t, delivery.TriggerManual, as[0].Trigger, "held in the workflow, the retry keeps its trigger")
	require.InDelta(t, 30, as[0].StartedAt.Sub(start).Seconds(), 1, "at its turn")
}
