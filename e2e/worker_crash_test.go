package e2e_test

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// TestWorkerCrash publishes a few hundred events, SIGKILLs the worker process while
// deliveries are in flight and in backoff, and starts it again: every delivery arrives at
// least once, and a delivery that arrives twice carries the same webhook-id both times.
func TestWorkerCrash(t *testing.T) {
	t.Parallel()
	const (
		events      = 300
		attemptTime = 2 * time.Second
	)
	s := startWorkerStack(t, testenv.PostgresURL(t),
		delivery.Schedule{Delays: []time.Duration{30 * time.Second, time.Second, time.Second, time.Second}, AttemptTimeout: attemptTime})
	api, st := s.api, s.st

	// About 30% of the deliveries fail their first attempt (500) and wait 30 s for the
	// second (the schedule's first delay), so that over a hundred are in backoff when the
	// worker dies; every request takes a little while, so that some are in flight too.
	respond := func(w http.ResponseWriter, r *http.Request, nth int) string {
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		if nth == 0 && failsFirst(r.Header.Get("webhook-id")) {
			w.WriteHeader(http.StatusInternalServerError)
			return "500"
		}
		w.WriteHeader(http.StatusOK)
		return "200"
	}
	all, completed := newReceiver(t, respond), newReceiver(t, respond)
	api.createWebhook(t, all.URL, "*")
	api.createWebhook(t, completed.URL, "survey.response.completed")
	// Every other event is a completed response: fan-out 2, the others fan-out 1.
	wantDeliveries := events + events/2

	// A burst: every event's workflow is started before the worker takes them on (a worker
	// keeps up with the API otherwise, and few deliveries would be under way at any time).
	began := time.Now()
	accepted := publishAll(t, api, events, 8)
	t.Logf("published %d events in %v: %v", events, time.Since(began).Round(time.Millisecond), accepted)
	worker := s.startWorker(t, "worker-1")

	// Kill the worker once it is well into the burst, with over a hundred deliveries in
	// flight or in backoff.
	require.Eventually(t, func() bool {
		counts := deliveryCounts(t, st)
		return counts[delivery.StatusPending]+counts[delivery.StatusRetrying] >= 100 &&
			distinctOK(all.got(), completed.got()) >= wantDeliveries/5
	}, 90*time.Second, 10*time.Millisecond)
	worker.kill(t)
	killedAt := time.Now()
	atKill := deliveryCounts(t, st)
	arrivedAtKill := distinctOK(all.got(), completed.got())
	t.Logf("SIGKILL worker: %d of %d deliveries had arrived; database: %v", arrivedAtKill, wantDeliveries, atKill)
	t.Logf("at the kill: %d deliveries in flight or not started, %d in backoff",
		atKill[delivery.StatusPending], atKill[delivery.StatusRetrying])

	s.startWorker(t, "worker-2")
	counts := waitSettled(t, st, wantDeliveries, 150*time.Second)
	t.Logf("all deliveries settled %v after the kill", time.Since(killedAt).Round(time.Millisecond))
	require.Equal(t, wantDeliveries, counts[delivery.StatusDelivered], "every delivery is delivered: %v", counts)

	// The receivers got every delivery the database has, and nothing else.
	var rows []struct {
		ID       uuid.UUID `db:"id"`
		EventID  string    `db:"event_id"`
		URL      string    `db:"url"`
		Attempts int       `db:"attempt_count"`
	}
	require.NoError(t, s.db.SelectContext(t.Context(), &rows, `
		SELECT d.id, d.event_id, w.url, d.attempt_count FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id`))
	require.Len(t, rows, wantDeliveries)
	// A receiver records a request just after answering it, so possibly after the
	// database says delivered.
	require.Eventually(t, func() bool {
		return distinctOK(all.got(), completed.got()) >= wantDeliveries
	}, 10*time.Second, 10*time.Millisecond)
	hitsAll, hitsCompleted := all.got(), completed.got()
	arrived := map[string]hit{}
	for _, h := range append(hitsAll, hitsCompleted...) {
		if h.Answer == "200" {
			arrived[h.WebhookID] = h
		}
	}
	missing := 0
	for _, r := range rows {
		h, ok := arrived[r.ID.String()]
		if !ok {
			missing++
			continue
		}
		require.Equal(t, r.EventID, h.EventID, "delivery %s carries its own event", r.ID)
		require.LessOrEqual(t, r.Attempts, 5)
	}
	require.Zero(t, missing, "deliveries that never arrived")
	require.Len(t, arrived, wantDeliveries, "no delivery the database does not know")

	dupAll, dupCompleted := countDuplicates(t, hitsAll), countDuplicates(t, hitsCompleted)
	require.Equal(t, events, dupAll.delivered)
	require.Equal(t, events/2, dupCompleted.delivered)
	extra := dupAll.extra2xx + dupCompleted.extra2xx
	for _, h := range append(hitsAll, hitsCompleted...) {
		if h.Nth > 0 && h.Answer == "200" && seenOK(hitsAll, hitsCompleted, h) {
			t.Logf("duplicate: webhook-id %s (event %s) arrived again with the same id and body", h.WebhookID, h.EventID)
		}
	}
	t.Logf("RESULT worker crash: events %d, deliveries %d, requests %d, delivered %d, duplicates %d, lost %d",
		events, wantDeliveries, dupAll.requests+dupCompleted.requests, dupAll.delivered+dupCompleted.delivered, extra, missing)
}

// failsFirst picks about 30% of the deliveries, by id, to fail their first attempt.
func failsFirst(webhookID string) bool {
	h := fnv.New32a()
	h.Write([]byte(webhookID))
	return h.Sum32()%10 < 3
}

// distinctOK counts the deliveries answered 200 at least once.
func distinctOK(lists ...[]hit) int {
	ok := map[string]bool{}
	for _, hits := range lists {
		for _, h := range hits {
			if h.Answer == "200" {
				ok[h.WebhookID] = true
			}
		}
	}
	return len(ok)
}

// seenOK reports whether a request of h's delivery before h was answered 200: h is then a
// duplicate.
func seenOK(a, b []hit, h hit) bool {
	for _, hits := range [][]hit{a, b} {
		for _, o := range hits {
			if o.WebhookID == h.WebhookID && o.Nth < h.Nth && o.Answer == "200" {
				return true
			}
		}
	}
	return false
}

// publishAll publishes n events (every other one a completed response, the others
// updated) from workers goroutines, requires each to be accepted and counts the answers
// by status.
func publishAll(t *testing.T, api *apiClient, n, workers int) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var errs []error
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				eventType := "survey.response.updated"
				if i%2 == 0 {
					eventType = "survey.response.completed"
				}
				status, err := api.tryPublish(t.Context(), fmt.Sprintf("evt-%04d", i), eventType)
				if err == nil && status != http.StatusCreated && status != http.StatusAccepted {
					err = fmt.Errorf("event %d: status %d", i, status)
				}
				mu.Lock()
				statuses[status]++
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	require.Empty(t, errs)
	return statuses
}
