package e2e_test

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// TestThrottle runs three worker processes. A webhook with rateLimit 5/s and burst 5 gets
// 200 deliveries at once: no one-second window at its receiver sees more than 10 (the rate
// plus the burst), and each delivery arrives with one attempt: waiting for its turn costs
// none. Another webhook's receiver answers its first request 429 with Retry-After: 10: the
// webhook's deliveries published during the pause arrive when it ends, not before, each with
// one attempt, and the one answered 429 is attempted again once, on the schedule.
func TestThrottle(t *testing.T) {
	t.Parallel()
	const events = 200
	s := startWorkerStack(t, testenv.PostgresURL(t), delivery.Schedule{Delays: repeat(2*time.Second, 3), AttemptTimeout: 5 * time.Second})
	for i := range 3 {
		s.startWorker(t, fmt.Sprintf("worker-%d", i+1))
	}

	limited := okReceiver(t)
	status, hook := s.api.do(t, http.MethodPost, "/api/surveys/"+surveyID+"/webhooks", map[string]any{
		"name": "limited", "url": limited.URL, "events": []string{"survey.response.completed"},
		"rateLimit": map[string]any{"perSecond": 5, "burst": 5}})
	require.Equal(t, http.StatusCreated, status, hook)
	require.Equal(t, map[string]any{"perSecond": 5.0, "burst": 5.0}, hook["rateLimit"])

	var mu sync.Mutex
	var pausedAt time.Time
	pausing := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) string {
		mu.Lock()
		first := pausedAt.IsZero()
		if first {
			pausedAt = time.Now()
		}
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "10")
			w.WriteHeader(http.StatusTooManyRequests)
			return "429"
		}
		w.WriteHeader(http.StatusOK)
		return "200"
	})
	s.api.createWebhook(t, pausing.URL, "survey.response.updated")

	began := time.Now()
	accepted := publishAllOf(t, s.api, events, 8, "survey.response.completed", "limited")
	t.Logf("published %d events in %v: %v", events, time.Since(began).Round(time.Millisecond), accepted)

	// The pause: the first event is answered 429, then three more are published at once.
	s.api.publish(t, "paused-0", "survey.response.updated")
	require.Eventually(t, func() bool { return len(pausing.got()) == 1 }, 30*time.Second, 10*time.Millisecond)
	for i := 1; i <= 3; i++ {
		status, out := s.api.publish(t, "paused-"+strconv.Itoa(i), "survey.response.updated")
		require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status, out)
	}

	counts := waitSettled(t, s.st, events+4, 120*time.Second)
	require.Equal(t, events+4, counts[delivery.StatusDelivered], "%v", counts)

	hits := limited.got()
	require.Len(t, hits, events, "one request per delivery")
	var at []time.Time
	for _, h := range hits {
		require.Zero(t, h.Nth, "delivery %s arrived more than once", h.WebhookID)
		at = append(at, h.At)
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	most := 0
	for i := range at {
		j := i
		for j < len(at) && at[j].Sub(at[i]) < time.Second {
			j++
		}
		most = max(most, j-i)
	}
	span := at[len(at)-1].Sub(at[0])
	t.Logf("rate limit 5/s, burst 5: %d deliveries over %v (%.2f/s); the busiest one-second window held %d",
		len(at), span.Round(time.Millisecond), float64(len(at)-5)/span.Seconds(), most)
	require.LessOrEqual(t, most, 10, "no one-second window sees more than the rate plus the burst")
	require.GreaterOrEqual(t, span, 38*time.Second, "200 requests at 5/s after a burst of 5 take 39 s")
	var attempts []int
	require.NoError(t, s.db.SelectContext(t.Context(), &attempts, `
		SELECT d.attempt_count FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE w.name = 'limited'`))
	require.Len(t, attempts, events)
	for _, n := range attempts {
		require.Equal(t, 1, n, "waiting for a turn costs no attempt")
	}

	paused := pausing.got()
	require.Len(t, paused, 5, "paused-0 twice (429, then 200), the three others once")
	for _, h := range paused[1:] {
		require.GreaterOrEqual(t, h.At.Sub(pausedAt), 10*time.Second, "%s arrived during the pause", h.EventID)
		require.Equal(t, "200", h.Answer)
	}
	var pausedAttempts []struct {
		EventID  string `db:"event_id"`
		Attempts int    `db:"attempt_count"`
	}
	require.NoError(t, s.db.SelectContext(t.Context(), &pausedAttempts, `
		SELECT d.event_id, d.attempt_count FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE w.name = 'e2e' ORDER BY d.event_id`))
	require.Len(t, pausedAttempts, 4)
	for _, d := range pausedAttempts {
		want := 1
		if d.EventID == "paused-0" {
			want = 2 // the 429, then the schedule's next attempt, no sooner than Retry-After
		}
		require.Equal(t, want, d.Attempts, "%s", d.EventID)
	}
}

// publishAllOf publishes n events of eventType from workers goroutines, with ids prefix-i.
func publishAllOf(t *testing.T, api *apiClient, n, workers int, eventType, prefix string) map[int]int {
	t.Helper()
	statuses := map[int]int{}
	next := make(chan int)
	type result struct {
		status int
		err    error
	}
	results := make(chan result, n)
	for range workers {
		go func() {
			for i := range next {
				status, err := api.tryPublish(t.Context(), fmt.Sprintf("%s-%04d", prefix, i), eventType)
				results <- result{status, err}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	for range n {
		r := <-results
		require.NoError(t, r.err)
		require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, r.status)
		statuses[r.status]++
	}
	return statuses
}
