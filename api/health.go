package api

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/surveyhooks/surveyhooks/store"
)

// healthResponse is a webhook's health, as GET and list show it: the current streak of
// failed attempts, and the last success and failure.
type healthResponse struct {
	ConsecutiveFailures int              `json:"consecutiveFailures"`
	FailingSince        *time.Time       `json:"failingSince"`
	LastSuccessAt       *time.Time       `json:"lastSuccessAt"`
	LastFailure         *failureResponse `json:"lastFailure"`
}

// failureResponse is a webhook's last failed attempt: when, the status it got (null: no
// answer) and what went wrong.
type failureResponse struct {
	At     time.Time `json:"at"`
	Status *int      `json:"status"`
	Error  string    `json:"error"`
}

func newHealthResponse(h store.Health) *healthResponse {
	resp := &healthResponse{ConsecutiveFailures: h.ConsecutiveFailures, FailingSince: utc(h.FailingSince), LastSuccessAt: utc(h.LastSuccessAt)}
	if h.LastFailureAt != nil {
		resp.LastFailure = &failureResponse{At: h.LastFailureAt.UTC(), Status: h.LastFailureStatus, Error: h.LastFailureError}
	}
	return resp
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// withHealth shows each webhook with its health, read in one statement.
func (s *Server) withHealth(ctx context.Context, hooks []store.Webhook) ([]webhookResponse, error) {
	ids := make([]uuid.UUID, len(hooks))
	for i, h := range hooks {
		ids[i] = h.ID
	}
	health, err := s.store.WebhookHealths(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]webhookResponse, len(hooks))
	for i, h := range hooks {
		out[i] = newWebhookResponse(h)
		out[i].Health = newHealthResponse(health[h.ID])
	}
	return out, nil
}

// statsWindows are the windows GET .../stats offers, each with the width of its buckets.
var statsWindows = map[string]struct {
	step    time.Duration
	buckets int
}{
	"24h": {time.Hour, 24},
	"7d":  {6 * time.Hour, 28},
	"30d": {24 * time.Hour, 30},
}

// statsResponse is a webhook's attempts over a window, in buckets of step, oldest first,
// with their totals.
type statsResponse struct {
	Window  string        `json:"window"`
	Step    string        `json:"step"`
	Totals  statsBucket   `json:"totals"`
	Buckets []statsBucket `json:"buckets"`
}

// statsBucket counts attempts that started in [start, start+step). The latencies are
// estimates: the upper bound of the latency class where the share is reached (0 with no
// attempt).
type statsBucket struct {
	Start     *time.Time `json:"start,omitempty"`
	Attempts  int        `json:"attempts"`
	Successes int        `json:"successes"`
	Failures  int        `json:"failures"`
	P50MS     float64    `json:"p50Ms"`
	P95MS     float64    `json:"p95Ms"`
	P99MS     float64    `json:"p99Ms"`
}

func newStatsBucket(b store.StatsBucket) statsBucket {
	return statsBucket{Attempts: b.Attempts, Successes: b.Successes, Failures: b.Failures,
		P50MS: b.LatencyPercentile(0.50), P95MS: b.LatencyPercentile(0.95), P99MS: b.LatencyPercentile(0.99)}
}

func (s *Server) handleWebhookStats(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	window := r.URL.Query().Get("window")
	if window == "" {
		window = "24h"
	}
	shape, ok := statsWindows[window]
	if !ok {
		s.writeError(w, r, invalidFields([]FieldError{{Field: "window", Message: "must be 24h, 7d or 30d"}}))
		return
	}
	if _, err := s.store.GetWebhook(r.Context(), scope, id); err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	buckets, err := s.store.WebhookStats(r.Context(), id, time.Now(), shape.step, shape.buckets)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := statsResponse{Window: window, Step: shape.step.String(), Buckets: make([]statsBucket, len(buckets))}
	total := store.StatsBucket{LatencyCounts: make([]int, len(store.LatencyBounds)+1)}
	for i, b := range buckets {
		resp.Buckets[i] = newStatsBucket(b)
		start := b.Start.UTC()
		resp.Buckets[i].Start = &start
		total.Attempts += b.Attempts
		total.Successes += b.Successes
		total.Failures += b.Failures
		for c, n := range b.LatencyCounts {
			total.LatencyCounts[c] += n
		}
	}
	resp.Totals = newStatsBucket(total)
	s.writeJSON(w, r, http.StatusOK, resp)
}
