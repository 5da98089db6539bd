package e2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/localpg"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// The tests of this file check that the Deliver activity, which owns the retry schedule,
// spends the schedule's attempts on requests that reached the receiver and were recorded,
// and on nothing else: a worker killed between attempts or during one, and PostgreSQL
// down between attempts, leave a delivery that always fails with exactly its schedule's
// attempts.

// TestScheduleWorkerKilledWhileWaiting SIGKILLs the worker three times while one delivery
// waits between attempts (after its first attempt, a local activity, and after its third
// and fifth, scheduled ones): the receiver, which always answers 500, gets exactly the
// schedule's six attempts, numbered 1..6, and the delivery ends failed.
func TestScheduleWorkerKilledWhileWaiting(t *testing.T) {
	t.Parallel()
	sched := delivery.Schedule{Delays: repeat(2*time.Second, 5), AttemptTimeout: 5 * time.Second}
	s := setupScheduleFaults(t, testenv.PostgresURL(t), sched)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) string {
		w.WriteHeader(http.StatusInternalServerError)
		return "500"
	})
	s.api.createWebhook(t, rc.URL, "*")
	worker := s.startWorker(t, "worker-1")

	began := time.Now()
	deliveryID := s.publishOne(t, "evt-waiting")
	kills := 0
	for _, after := range []int{1, 3, 5} {
		due := s.waitBetweenAttempts(t, "evt-waiting", deliveryID, rc, after)
		worker.kill(t)
		kills++
		t.Logf("kill %d: SIGKILL worker after attempt %d, next try due in %v", kills, after, time.Until(due).Round(time.Millisecond))
		if kills == 2 {
			// This time the try comes due while no worker runs: Temporal keeps it queued.
			require.Eventually(t, func() bool { return time.Now().After(due) }, 30*time.Second, 50*time.Millisecond)
		}
		worker = s.startWorker(t, fmt.Sprintf("worker-%d", kills+1))
	}

	got := s.waitEnded(t, deliveryID, 60*time.Second)
	took := time.Since(began)
	requests := len(rc.got())
	tries := s.deliverTries(t, "evt-waiting")
	t.Logf("RESULT worker killed while waiting: kills %d, requests %d, recorded attempts %d, status %s, "+
		"scheduled Deliver tries %d, %v from publish to failed", kills, requests, got.AttemptCount, got.Status, tries, took.Round(time.Millisecond))
	t.Logf("requests at %v after publish", sinceEach(began, rc.got()))
	require.Equal(t, 3, kills)
	require.Equal(t, delivery.StatusFailed, got.Status)
	require.Equal(t, sched.MaxAttempts(), got.AttemptCount)
	require.Equal(t, []int{1, 2, 3, 4, 5, 6}, s.attemptNumbers(t, deliveryID))
	require.Equal(t, sched.MaxAttempts(), requests, "one request per attempt: no kill cost or added one")
	for _, h := range rc.got() {
		require.Equal(t, deliveryID, h.WebhookID)
	}
}

// TestScheduleWorkerKilledDuringAttempt SIGKILLs the worker while the receiver holds a
// request: once during the first attempt (a local activity of the workflow task) and once
// during a scheduled one. Each kill adds exactly one request, the unrecorded one that is
// made again, every request of the delivery carries the delivery's id as webhook-id and
// X-Webhook-Delivery with the same body, and the delivery ends failed with the schedule's
// attempts recorded.
func TestScheduleWorkerKilledDuringAttempt(t *testing.T) {
	t.Parallel()
	// A kill during a scheduled attempt leaves its try to the activity's heartbeat timeout
	// (delivery.HeartbeatTimeout), a kill during the first attempt to the workflow task's
	// timeout; a short attempt timeout keeps the rest of the test short.
	sched := delivery.Schedule{Delays: repeat(time.Second, 3), AttemptTimeout: 2 * time.Second}
	s := setupScheduleFaults(t, testenv.PostgresURL(t), sched)
	// The receiver holds the first request (attempt 1) and the third (attempt 2, after
	// attempt 1 was made again) until the worker that sent it dies; it answers 500 to the
	// others.
	holdAt := map[int]bool{0: true, 2: true}
	held := make(chan string, len(holdAt))
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, nth int) string {
		if !holdAt[nth] {
			w.WriteHeader(http.StatusInternalServerError)
			return "500"
		}
		held <- r.Header.Get("webhook-id")
		select {
		case <-r.Context().Done(): // the worker's connection closed with its process
		case <-time.After(time.Minute):
		}
		return "held"
	})
	s.api.createWebhook(t, rc.URL, "*")
	worker := s.startWorker(t, "worker-1")

	began := time.Now()
	deliveryID := s.publishOne(t, "evt-inflight")
	kills := 0
	var killedAt []time.Time
	for _, wantRecorded := range []int{0, 1} {
		select {
		case id := <-held:
			require.Equal(t, deliveryID, id)
		case <-time.After(90 * time.Second):
			t.Fatalf("no held request after %d kills; receiver got %d requests", kills, len(rc.got()))
		}
		recorded := s.delivery(t, deliveryID).AttemptCount
		require.Equal(t, wantRecorded, recorded)
		worker.kill(t)
		killedAt = append(killedAt, time.Now())
		kills++
		t.Logf("kill %d: SIGKILL worker during attempt %d (%d recorded), %v after publish",
			kills, recorded+1, recorded, time.Since(began).Round(time.Millisecond))
		worker = s.startWorker(t, fmt.Sprintf("worker-%d", kills+1))
	}

	got := s.waitEnded(t, deliveryID, 90*time.Second)
	took := time.Since(began)
	// The receiver records a request once it answered it; a held one, once its connection
	// closed.
	require.Eventually(t, func() bool { return len(rc.got()) >= got.AttemptCount+kills }, 10*time.Second, 10*time.Millisecond)
	hits := rc.got()
	tries := s.deliverTries(t, "evt-inflight")
	t.Logf("RESULT worker killed during attempts: kills %d, requests %d, recorded attempts %d, status %s, "+
		"scheduled Deliver tries %d, %v from publish to failed", kills, len(hits), got.AttemptCount, got.Status, tries, took.Round(time.Millisecond))
	t.Logf("requests at %v after publish", sinceEach(began, hits))
	// The request after a held one makes the cut attempt again.
	for i, nth := range []int{0, 2} {
		for _, h := range hits {
			if h.Nth == nth+1 {
				t.Logf("kill %d: the cut attempt was made again %v after the kill", i+1, h.At.Sub(killedAt[i]).Round(time.Millisecond))
			}
		}
	}
	require.Equal(t, delivery.StatusFailed, got.Status)
	require.Equal(t, sched.MaxAttempts(), got.AttemptCount)
	require.Equal(t, []int{1, 2, 3, 4}, s.attemptNumbers(t, deliveryID))
	require.Equal(t, got.AttemptCount+kills, len(hits), "each kill adds the one request it cut short")
	countDuplicates(t, hits) // the same id in both headers and the same bytes on every request
	for _, h := range hits {
		require.Equal(t, deliveryID, h.WebhookID)
	}
	var recordedIDs []string
	require.NoError(t, s.db.SelectContext(t.Context(), &recordedIDs, `
		SELECT request_headers->'Webhook-Id'->>0 FROM delivery_attempts WHERE delivery_id = $1`, deliveryID))
	require.Equal(t, slices.Repeat([]string{deliveryID}, got.AttemptCount), recordedIDs, "the log shows the id that was sent")
}

// TestScheduleOutlivesPostgresOutage stops surveyhooks' PostgreSQL while a delivery waits
// for its second attempt and keeps it down until Deliver has failed on it four times:
// meanwhile nothing reaches the receiver, and afterwards the delivery still gets all six
// attempts of its schedule. Its scheduled Deliver activity takes more Temporal tries than
// the schedule has attempts: the retry policy has no attempt cap, so failed tries cannot
// end a delivery early.
func TestScheduleOutlivesPostgresOutage(t *testing.T) {
	t.Parallel()
	// Failed tries follow the workflow's retry policy, 1 s doubling with each Temporal
	// try: the fifth failure would come 32 s after the fourth.
	const failures = 4
	cluster, pgURL := ownPostgres(t)
	migrate, err := sqlx.Open(store.DriverName, pgURL)
	require.NoError(t, err)
	require.NoError(t, store.Migrate(t.Context(), migrate.DB, testenv.Keyring()))
	require.NoError(t, migrate.Close())
	sched := delivery.Schedule{Delays: repeat(2*time.Second, 5), AttemptTimeout: 5 * time.Second}
	s := setupScheduleFaults(t, pgURL, sched)
	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) string {
		w.WriteHeader(http.StatusInternalServerError)
		return "500"
	})
	s.api.createWebhook(t, rc.URL, "*")
	worker := s.startWorker(t, "worker")

	began := time.Now()
	deliveryID := s.publishOne(t, "evt-outage")
	s.waitBetweenAttempts(t, "evt-outage", deliveryID, rc, 1)
	stopCtx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.Stop(stopCtx))
	down := time.Now()
	before := len(rc.got())
	t.Logf("PostgreSQL stopped (pg_ctl stop -m fast) after attempt 1, %v after publish", down.Sub(began).Round(time.Millisecond))

	var failed []deliverFailure
	require.Eventually(t, func() bool {
		failed = databaseFailures(t, worker)
		return len(failed) >= failures
	}, 60*time.Second, 100*time.Millisecond, "Deliver fails on the database while it is down")
	require.Equal(t, before, len(rc.got()), "nothing is sent while the delivery cannot be read")
	_, err = localpg.Start(t.Context(), localpg.Options{DataDir: cluster.DataDir, Port: cluster.Port})
	require.NoError(t, err)
	up := time.Now()
	outage := up.Sub(down)
	for _, f := range failed {
		t.Logf("outage: Deliver try %d failed %v after the stop: %s", f.Attempt, f.At.Sub(down).Round(time.Millisecond), f.Error)
	}
	t.Logf("PostgreSQL back after %v, %d failed Deliver tries", outage.Round(time.Millisecond), len(failed))

	require.Eventually(t, func() bool { return len(rc.got()) > before }, 60*time.Second, 50*time.Millisecond)
	resumed := time.Since(up)
	got := s.waitEnded(t, deliveryID, 60*time.Second)
	took := time.Since(began)
	requests := len(rc.got())
	tries := s.deliverTries(t, "evt-outage")
	failed = databaseFailures(t, worker)
	t.Logf("RESULT postgres outage while waiting: outage %v, failed Deliver tries %d, next request %v after PostgreSQL came back, "+
		"requests %d, recorded attempts %d, status %s, scheduled Deliver tries %d, %v from publish to failed",
		outage.Round(time.Millisecond), len(failed), resumed.Round(time.Millisecond), requests, got.AttemptCount, got.Status, tries, took.Round(time.Millisecond))
	require.Equal(t, delivery.StatusFailed, got.Status)
	require.Equal(t, sched.MaxAttempts(), got.AttemptCount)
	require.Equal(t, []int{1, 2, 3, 4, 5, 6}, s.attemptNumbers(t, deliveryID))
	require.Equal(t, sched.MaxAttempts(), requests, "the failed tries cost no attempt")
	// One try found attempt 2 not due, the outage failed some, and five made attempts 2..6.
	require.GreaterOrEqual(t, tries, 1+len(failed)+sched.MaxAttempts()-1)
	require.Greater(t, tries, 6)
}

// scheduleFaults is one test's worker stack, with the reads its checks make.
type scheduleFaults struct {
	*workerStack
}

func setupScheduleFaults(t *testing.T, pgURL string, sched delivery.Schedule) *scheduleFaults {
	t.Helper()
	return &scheduleFaults{startWorkerStack(t, pgURL, sched)}
}

// publishOne publishes an event to the stack's one webhook and returns its delivery's id.
func (s *scheduleFaults) publishOne(t *testing.T, eventID string) string {
	t.Helper()
	status, out := s.api.publish(t, eventID, "survey.response.completed")
	require.Equal(t, http.StatusCreated, status, out)
	var id string
	require.NoError(t, s.db.GetContext(t.Context(), &id, `SELECT id::text FROM deliveries WHERE event_id = $1`, eventID))
	return id
}

// deliveryState is what the tests read of a delivery.
type deliveryState struct {
	Status       string `db:"status"`
	AttemptCount int    `db:"attempt_count"`
}

func (s *scheduleFaults) delivery(t *testing.T, id string) deliveryState {
	t.Helper()
	var d deliveryState
	require.NoError(t, s.db.GetContext(t.Context(), &d, `SELECT status, attempt_count FROM deliveries WHERE id = $1`, id))
	return d
}

// waitEnded waits until the delivery is delivered or failed and returns it.
func (s *scheduleFaults) waitEnded(t *testing.T, id string, timeout time.Duration) deliveryState {
	t.Helper()
	var d deliveryState
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		d = s.delivery(t, id)
		assert.Contains(c, []string{delivery.StatusDelivered, delivery.StatusFailed}, d.Status, "delivery %s: %+v", id, d)
	}, timeout, 50*time.Millisecond)
	return d
}

// attemptNumbers lists the numbers of the delivery's recorded attempts, in order.
func (s *scheduleFaults) attemptNumbers(t *testing.T, id string) []int {
	t.Helper()
	var numbers []int
	require.NoError(t, s.db.SelectContext(t.Context(), &numbers,
		`SELECT number FROM delivery_attempts WHERE delivery_id = $1 ORDER BY number`, id))
	return numbers
}

// waitBetweenAttempts waits until the delivery has made attempts attempts, each recorded
// and each seen by rc, and its scheduled Deliver activity waits for its next try with
// more than half a second to go, so that a kill or a stop now falls between attempts. It
// returns when the next try is due.
func (s *scheduleFaults) waitBetweenAttempts(t *testing.T, eventID, deliveryID string, rc *receiver, attempts int) time.Time {
	t.Helper()
	var due time.Time
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, attempts, s.delivery(t, deliveryID).AttemptCount)
		assert.Len(c, rc.got(), attempts)
		a, err := pendingDeliver(t.Context(), s.tc, eventID)
		if !assert.NoError(c, err) || !assert.NotNil(c, a, "no scheduled Deliver activity yet") {
			return
		}
		assert.Equal(c, enumspb.PENDING_ACTIVITY_STATE_SCHEDULED, a.GetState())
		if assert.NotNil(c, a.GetNextAttemptScheduleTime(), "the activity is not in backoff") {
			due = a.GetNextAttemptScheduleTime().AsTime()
			assert.Greater(c, time.Until(due), 500*time.Millisecond)
		}
	}, 60*time.Second, 20*time.Millisecond)
	return due
}

// pendingDeliver returns the event workflow's scheduled Deliver activity, nil when none is
// pending (the first attempt is a local activity, which Temporal does not list).
func pendingDeliver(ctx context.Context, tc client.Client, eventID string) (*workflowpb.PendingActivityInfo, error) {
	resp, err := tc.DescribeWorkflowExecution(ctx, delivery.WorkflowID(eventID), "")
	if err != nil {
		return nil, err
	}
	for _, a := range resp.GetPendingActivities() {
		if a.GetActivityType().GetName() == "Deliver" {
			return a, nil
		}
	}
	return nil, nil
}

// deliverTries returns how many Temporal tries the event's scheduled Deliver activity took:
// the attempt of its last start in the history (Temporal records only the last try's).
func (s *scheduleFaults) deliverTries(t *testing.T, eventID string) int {
	t.Helper()
	tries := 0
	it := s.tc.GetWorkflowHistory(t.Context(), delivery.WorkflowID(eventID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		if started := e.GetActivityTaskStartedEventAttributes(); started != nil {
			tries = max(tries, int(started.GetAttempt()))
		}
	}
	return tries
}

// deliverFailure is a failed try of the Deliver activity as the worker logged it.
type deliverFailure struct {
	At      time.Time `json:"time"`
	Attempt int       `json:"Attempt"`
	Error   string    `json:"Error"`
}

// databaseFailures reads the worker's log for the Deliver tries that failed before they
// could read the delivery: the Temporal SDK logs every failed try of an activity.
func databaseFailures(t *testing.T, p *proc) []deliverFailure {
	t.Helper()
	f, err := os.Open(p.log)
	require.NoError(t, err)
	defer f.Close()
	var failures []deliverFailure
	lines := bufio.NewScanner(f)
	lines.Buffer(nil, 1<<20)
	for lines.Scan() {
		var rec struct {
			deliverFailure
			Msg          string `json:"msg"`
			ActivityType string `json:"ActivityType"`
		}
		if json.Unmarshal(lines.Bytes(), &rec) != nil {
			continue // a line cut short by the scan racing the writer
		}
		if rec.Msg == "Activity error." && rec.ActivityType == "Deliver" && strings.HasPrefix(rec.Error, "load delivery") {
			failures = append(failures, rec.deliverFailure)
		}
	}
	require.NoError(t, lines.Err())
	return failures
}

// sinceEach lists when each request arrived, from began.
func sinceEach(began time.Time, hits []hit) []time.Duration {
	at := make([]time.Duration, 0, len(hits))
	for _, h := range hits {
		at = append(at, h.At.Sub(began).Round(10*time.Millisecond))
	}
	slices.Sort(at)
	return at
}

// repeat returns n copies of d: a schedule of n+1 attempts.
func repeat(d time.Duration, n int) []time.Duration {
	return slices.Repeat([]time.Duration{d}, n)
}
