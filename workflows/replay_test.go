package workflows_test

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// recordedHistories are histories recorded from real runs, by whether the first attempt
// was a local activity (EventInput.LocalFirstAttempt): workflows of both shapes may be in
// flight when a new version is deployed.
var recordedHistories = map[bool]string{
	false: "testdata/event_history.json",
	true:  "testdata/event_history_local.json",
}

// recordedPublishedHistory is recordedHistories' run with the event published with its
// deliveries (EventInput.FannedOut), as the API has started events since PublishEvent.
const recordedPublishedHistory = "testdata/event_history_published.json"

// recordedTestRetryHistory is the second run of a webhook test's workflow, started by a
// forced retry after the first run closed, recorded when such a run still sent the test
// again before the manual attempt (before testOnceChange).
const recordedTestRetryHistory = "testdata/test_event_retry_history.json"

// TestReplayRecordedHistory replays histories recorded from a real run (two webhooks, one
// retried then delivered, one refused with 400 and then retried by a signal) against the
// current workflow code: a change that makes the workflow non-deterministic for histories
// already in flight fails here. Record them again (SURVEYHOOKS_RECORD_HISTORY=1) only when
// such a change is intended and running workflows are handled.
func TestReplayRecordedHistory(t *testing.T) {
	t.Parallel()
	for _, file := range append(slices.Collect(maps.Values(recordedHistories)), recordedPublishedHistory, recordedTestRetryHistory) {
		replayer := worker.NewWorkflowReplayer()
		replayer.RegisterWorkflow(workflows.Event)
		require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, file), file)
	}
}

func TestRecordHistory(t *testing.T) {
	if os.Getenv("SURVEYHOOKS_RECORD_HISTORY") == "" {
		t.Skip("set SURVEYHOOKS_RECORD_HISTORY=1 to record the histories replayed")
	}
	for local, file := range recordedHistories {
		t.Run(file, func(t *testing.T) { recordHistory(t, local, false, file) })
	}
	t.Run(recordedPublishedHistory, func(t *testing.T) { recordHistory(t, true, true, recordedPublishedHistory) })
	t.Run(recordedTestRetryHistory, func(t *testing.T) { recordTestRetryHistory(t, recordedTestRetryHistory) })
}

// recordTestRetryHistory runs a webhook test, then retries its delivery with force once the
// workflow has closed, and writes the history of that second run to file.
func recordTestRetryHistory(t *testing.T, file string) {
	db := testenv.Postgres(t)
	st := store.New(db)
	te := testenv.Temporal(t)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer receiver.Close()
	startRecordingWorker(t, st, te)

	webhookID := uuid.Must(uuid.NewV7())
	_, err := db.Exec(`INSERT INTO webhooks (id, survey_id, name, url, events, secret)
		VALUES ($1, 'survey-1', 'hook', $2, '{*}', 'a-secret-of-16-chars')`, webhookID, receiver.URL)
	require.NoError(t, err)
	eventID := "test-recorded"
	_, err = db.Exec(`INSERT INTO events (id, event_type, survey_id, body, target_webhook_id)
		VALUES ($1, 'webhook.test', 'survey-1', '{}', $2)`, eventID, webhookID)
	require.NoError(t, err)

	ctx := context.Background()
	in := workflows.EventInput{EventID: eventID, EventType: "webhook.test", SurveyID: "survey-1", MaxAttempts: 3, AttemptTimeout: 2 * time.Second, LocalFirstAttempt: true}
	first, err := te.Client.ExecuteWorkflow(ctx, workflows.StartOptions(in, te.TaskQueue), workflows.Event, in)
	require.NoError(t, err)
	var res workflows.EventResult
	require.NoError(t, first.Get(ctx, &res))
	require.Len(t, res.Deliveries, 1)

	second, err := te.Client.SignalWithStartWorkflow(ctx, workflows.ID(eventID), workflows.RetrySignal,
		workflows.RetryRequest{DeliveryID: res.Deliveries[0].DeliveryID, Force: true},
		workflows.StartOptions(in, te.TaskQueue), workflows.Event, in)
	require.NoError(t, err)
	require.NotEqual(t, first.GetRunID(), second.GetRunID())
	require.NoError(t, second.Get(ctx, &res))
	writeHistory(t, te, second.GetID(), second.GetRunID(), file)
}

// recordHistory records a run of an event to two webhooks: stored alone and fanned out by
// the workflow, or published with its deliveries.
func recordHistory(t *testing.T, local, published bool, file string) {
	db := testenv.Postgres(t)
	st := store.New(db)
	te := testenv.Temporal(t)
	var calls atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer flaky.Close()
	var refusals atomic.Int32
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refusals.Add(1) == 1 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer refusing.Close()

	startRecordingWorker(t, st, te)

	for _, url := range []string{flaky.URL, refusing.URL} {
		_, err := db.Exec(`INSERT INTO webhooks (id, survey_id, name, url, events, secret)
			VALUES ($1, 'survey-1', 'hook', $2, '{*}', 'a-secret-of-16-chars')`, uuid.Must(uuid.NewV7()), url)
		require.NoError(t, err)
	}
	ctx := context.Background()
	eventID := "evt-recorded-" + strconv.FormatBool(local)
	in := workflows.EventInput{EventID: eventID, EventType: "survey.response.completed", SurveyID: "survey-1", MaxAttempts: 3, AttemptTimeout: 2 * time.Second, LocalFirstAttempt: local}
	if published {
		in.EventID = "evt-recorded-published"
		p, err := st.PublishEvent(ctx, store.Event{ID: in.EventID, EventType: in.EventType, SurveyID: in.SurveyID, Body: []byte(`{}`)})
		require.NoError(t, err)
		require.Len(t, p.Deliveries, 2)
		in.FannedOut, in.Deliveries = true, p.Subscriptions()
		eventID = in.EventID
	} else {
		_, err := db.Exec(`INSERT INTO events (id, event_type, survey_id, body) VALUES ($1, 'survey.response.completed', 'survey-1', '{}')`, eventID)
		require.NoError(t, err)
	}
	run, err := te.Client.ExecuteWorkflow(ctx, workflows.StartOptions(in, te.TaskQueue), workflows.Event, in)
	require.NoError(t, err)
	// Once the 400 has failed its delivery, ask for a retry while the other still waits.
	require.Eventually(t, func() bool {
		ds, err := st.ListEventDeliveries(ctx, eventID)
		require.NoError(t, err)
		for _, d := range ds {
			if d.Status == store.StatusFailed {
				require.NoError(t, te.Client.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.RetrySignal, workflows.RetryRequest{DeliveryID: d.ID}))
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond)
	var res workflows.EventResult
	require.NoError(t, run.Get(ctx, &res))
	for _, d := range res.Deliveries {
		require.Equal(t, store.StatusDelivered, d.Status)
	}

	writeHistory(t, te, run.GetID(), run.GetRunID(), file)
}

// startRecordingWorker runs the workflows being recorded, with short retry delays, against
// receivers on loopback.
func startRecordingWorker(t *testing.T, st *store.Store, te *testenv.TemporalEnv) {
	policy := netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	acts := activities.New(st, policy.Client(), activities.Config{
		Schedule: activities.Schedule{Delays: []time.Duration{300 * time.Millisecond, time.Second}}, AttemptTimeout: 2 * time.Second,
	}, nil)
	te.StartWorker(t, func(r worker.Registry) { workflows.Register(r, acts) })
}

// writeHistory writes the history of a workflow run to file, as JSON.
func writeHistory(t *testing.T, te *testenv.TemporalEnv, workflowID, runID, file string) {
	t.Helper()
	history := &historypb.History{}
	iter := te.Client.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		event, err := iter.Next()
		require.NoError(t, err)
		history.Events = append(history.Events, event)
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(history)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll("testdata", 0o755))
	require.NoError(t, os.WriteFile(file, b, 0o644))
}
