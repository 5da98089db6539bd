package e2e_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// TestOutboxTemporalDown publishes events while Temporal is stopped: each is stored and
// answered 202 at once; once Temporal is started again on the same data, the dispatcher
// starts one workflow per event, oldest first, and every event is delivered once.
func TestOutboxTemporalDown(t *testing.T) {
	t.Parallel()
	const events = 30
	st := store.New(testenv.Postgres(t), testenv.Keyring())
	opts := temporalOptions(t)
	server := startTemporal(t, opts)
	tc := dialTemporal(t, opts.FrontendAddr)

	queue := uniqueQueue("outbox")
	acts := activities.New(st, loopbackPolicy.Client(), activities.Config{
		Schedule: delivery.Schedule{Delays: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, AttemptTimeout: 2 * time.Second},
	}, testLogger(t, slog.LevelError))
	w := worker.New(tc, queue, worker.Options{})
	workflows.Register(w, acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	d := delivery.New(st, tc, delivery.Config{
		TaskQueue: queue,
		Schedule:  delivery.Schedule{Delays: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, AttemptTimeout: 2 * time.Second},
		Outbox:    delivery.OutboxConfig{Interval: 200 * time.Millisecond, Grace: 500 * time.Millisecond},
	}, testLogger(t, slog.LevelError))
	runOutbox(t, d)
	api := startAPI(t, st, d)
	rc := okReceiver(t)
	api.createWebhook(t, rc.URL, "*")

	// Up: published and started at once.
	status, out := api.publish(t, "outbox-before", "survey.response.completed")
	require.Equal(t, http.StatusCreated, status, out)
	require.Equal(t, "dispatched", out["status"])
	waitSettled(t, st, 1, 30*time.Second)

	require.NoError(t, server.Stop())
	var ids []string
	var took []time.Duration
	for i := range events {
		id := fmt.Sprintf("outbox-%02d", i)
		began := time.Now()
		status, out := api.publish(t, id, "survey.response.completed")
		took = append(took, time.Since(began))
		require.Equal(t, http.StatusAccepted, status, out)
		require.Equal(t, "queued", out["status"])
		ids = append(ids, id)
	}
	// The first start waits for Temporal until it gives up; the dispatcher then knows
	// Temporal is down and the next requests do not wait at all.
	require.Less(t, took[0], 6*time.Second, "the API's start timeout is 5 s")
	rest := slices.Max(took[1:])
	require.Less(t, rest, time.Second, "once Temporal is known down, publishing does not wait for it")
	t.Logf("publish with Temporal down: first answer in %v, the %d others in at most %v",
		took[0].Round(time.Millisecond), events-1, rest.Round(time.Millisecond))
	// Stored, waiting for Temporal.
	var queued int
	require.NoError(t, st.DB().GetContext(t.Context(), &queued, `SELECT count(*) FROM events WHERE dispatched_at IS NULL`))
	require.Equal(t, events, queued)
	require.Len(t, rc.got(), 1, "nothing but the first event was delivered")

	// Same data, same port.
	restarted := time.Now()
	startTemporal(t, opts)
	counts := waitSettled(t, st, events+1, 120*time.Second)
	t.Logf("all %d queued events delivered %v after Temporal came back", events, time.Since(restarted).Round(time.Millisecond))
	require.Equal(t, events+1, counts[delivery.StatusDelivered])

	// Temporal is known up again: publishing starts the workflow at once.
	require.Eventually(t, func() bool {
		status, out := api.publish(t, "outbox-after", "survey.response.completed")
		return status == http.StatusCreated || (status == http.StatusOK && out["status"] == "dispatched")
	}, 10*time.Second, 100*time.Millisecond)
	waitSettled(t, st, events+2, 30*time.Second)

	// Exactly one delivery per event at the receiver (which records a request just after
	// answering it, so possibly after the database says delivered).
	require.Eventually(t, func() bool { return distinctOK(rc.got()) == events+2 }, 10*time.Second, 10*time.Millisecond)
	hits := rc.got()
	dup := countDuplicates(t, hits)
	require.Equal(t, events+2, dup.delivered)
	require.Zero(t, dup.extra2xx)
	require.Len(t, hits, events+2)

	// One workflow per event, started in the order the events were created.
	var started []time.Time
	for _, id := range ids {
		desc, err := tc.DescribeWorkflowExecution(t.Context(), delivery.WorkflowID(id), "")
		require.NoError(t, err)
		started = append(started, desc.GetWorkflowExecutionInfo().GetStartTime().AsTime())
	}
	require.True(t, slices.IsSortedFunc(started, func(a, b time.Time) int { return a.Compare(b) }),
		"workflows started in creation order: %v", started)
	runsPerEvent(t, tc, append(ids, "outbox-before", "outbox-after"))

	var undispatched int
	require.NoError(t, st.DB().GetContext(t.Context(), &undispatched, `SELECT count(*) FROM events WHERE dispatched_at IS NULL`))
	require.Zero(t, undispatched)
	t.Logf("RESULT outbox: published %d while down, delivered %d, duplicates %d, lost %d",
		events, dup.delivered-2, dup.extra2xx, events+2-dup.delivered)
}
