package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Health is a webhook's health as its attempts are recorded: the current streak of failed
// attempts and the last success and failure. A webhook with no attempt yet has the zero
// Health.
type Health struct {
	WebhookID uuid.UUID `db:"webhook_id"`
	// ConsecutiveFailures counts the failed attempts since the last successful one.
	ConsecutiveFailures int `db:"consecutive_failures"`
	// FailingSince is when the first of them started; nil when there is none.
	FailingSince  *time.Time `db:"failing_since"`
	LastSuccessAt *time.Time `db:"last_success_at"`
	LastFailureAt *time.Time `db:"last_failure_at"`
	// LastFailureStatus is the last failed attempt's response status; nil when it got none.
	LastFailureStatus *int   `db:"last_failure_status"`
	LastFailureError  string `db:"last_failure_error"`
}

const webhookHealthQuery = `
SELECT webhook_id, consecutive_failures, failing_since, last_success_at, last_failure_at,
	last_failure_status, last_failure_error
FROM webhook_health WHERE webhook_id = ANY ($1::uuid[])`

// WebhookHealths returns the health of each of the webhooks, by id; a webhook with no
// attempt recorded has the zero Health with its id.
func (s *Store) WebhookHealths(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]Health, error) {
	rows := []Health{}
	if err := s.q.SelectContext(ctx, &rows, webhookHealthQuery, ids); err != nil {
		return nil, fmt.Errorf("read the health of %d webhooks: %w", len(ids), mapError(err))
	}
	out := make(map[uuid.UUID]Health, len(ids))
	for _, id := range ids {
		out[id] = Health{WebhookID: id}
	}
	for _, h := range rows {
		out[h.WebhookID] = h
	}
	return out, nil
}

// StatsBucket counts a webhook's attempts that started in [Start, Start+step).
type StatsBucket struct {
	Start     time.Time
	Attempts  int
	Successes int
	Failures  int
	// LatencyCounts counts the attempts by latency class (LatencyBounds).
	LatencyCounts []int
}

// LatencyPercentile estimates the latency, in milliseconds, under which a share p (0..1)
// of the bucket's attempts finished: the upper bound of the class where that share is
// reached (the last bound for the class past it). It is 0 with no attempt.
func (b StatsBucket) LatencyPercentile(p float64) float64 {
	total := 0
	for _, n := range b.LatencyCounts {
		total += n
	}
	if total == 0 {
		return 0
	}
	seen := 0
	for i, n := range b.LatencyCounts {
		seen += n
		if float64(seen) >= p*float64(total) {
			return LatencyBounds[min(i, len(LatencyBounds)-1)]
		}
	}
	return LatencyBounds[len(LatencyBounds)-1]
}

const webhookStatsQuery = `
SELECT bucket, attempts, successes, failures, latency_counts
FROM webhook_stats WHERE webhook_id = $1 AND bucket >= $2 AND bucket < $3
ORDER BY bucket`

// WebhookStats returns n buckets of step each, ending with the one that holds until, oldest
// first, every one present (an empty one counts nothing). step is a whole number of hours,
// the resolution attempts are counted at.
func (s *Store) WebhookStats(ctx context.Context, webhookID uuid.UUID, until time.Time, step time.Duration, n int) ([]StatsBucket, error) {
	if step < time.Hour || step%time.Hour != 0 || n < 1 {
		return nil, fmt.Errorf("stats of webhook %s: a step of whole hours and at least one bucket, not %s and %d", webhookID, step, n)
	}
	end := until.UTC().Truncate(step).Add(step)
	start := end.Add(-time.Duration(n) * step)
	var rows []struct {
		Bucket        time.Time     `db:"bucket"`
		Attempts      int           `db:"attempts"`
		Successes     int           `db:"successes"`
		Failures      int           `db:"failures"`
		LatencyCounts pq.Int64Array `db:"latency_counts"`
	}
	if err := s.q.SelectContext(ctx, &rows, webhookStatsQuery, webhookID, start, end); err != nil {
		return nil, fmt.Errorf("stats of webhook %s: %w", webhookID, mapError(err))
	}
	out := make([]StatsBucket, n)
	for i := range out {
		out[i] = StatsBucket{Start: start.Add(time.Duration(i) * step), LatencyCounts: make([]int, len(LatencyBounds)+1)}
	}
	for _, r := range rows {
		b := &out[int(r.Bucket.Sub(start)/step)]
		b.Attempts += r.Attempts
		b.Successes += r.Successes
		b.Failures += r.Failures
		for i, c := range r.LatencyCounts {
			if i < len(b.LatencyCounts) {
				b.LatencyCounts[i] += int(c)
			}
		}
	}
	return out, nil
}
