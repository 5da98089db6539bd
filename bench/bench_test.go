package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/bench"
	"github.com/surveyhooks/surveyhooks/console"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

const (
	testKey       = "bench-test-key"
	testTaskQueue = "bench-test"
	// testRecoveryRate paces the recoveries the API starts.
	testRecoveryRate = 200
)

// testWiring wires the stack from the packages as cmd/surveyhooks does, on the given
// schedule. These tests do not run in parallel: the backoff scenario empties the SDK's
// workflow cache, which every worker of the process shares.
func testWiring(delays []time.Duration, timeout time.Duration) bench.Wiring {
	policy := netguard.Policy{AllowHTTP: true, Allowed: bench.Loopback}
	return bench.Wiring{
		Worker: func(tc client.Client, st *store.Store) worker.Worker {
			w := worker.New(tc, testTaskQueue, worker.Options{WorkflowPanicPolicy: worker.FailWorkflow})
			workflows.Register(w, activities.New(st, policy.Client(), activities.Config{Schedule: delivery.Schedule{Delays: delays, AttemptTimeout: timeout}}, slog.New(slog.DiscardHandler)))
			workflows.RegisterRecovery(w, delivery.NewRecoverer(delivery.New(st, tc, delivery.Config{TaskQueue: testTaskQueue,
				Schedule: delivery.Schedule{Delays: delays, AttemptTimeout: timeout}}, nil)))
			return w
		},
		API: func(tc client.Client, st *store.Store) (http.Handler, *delivery.Service) {
			d := delivery.New(st, tc, delivery.Config{TaskQueue: testTaskQueue, Schedule: delivery.Schedule{Delays: delays, AttemptTimeout: timeout},
				RecoveryRate: testRecoveryRate}, nil)
			// The bench measures delivery, not the API's rate limit.
			srv := api.New(api.Config{APIKeys: []string{testKey}, URLPolicy: policy, RateLimit: -1}, st, d, nil)
			// The console, as serve mounts it, for the list scenario's screens.
			c, err := console.New(console.Config{API: srv.Handler(), Store: st})
			if err != nil {
				panic(fmt.Sprintf("console with the default brand: %v", err))
			}
			mux := http.NewServeMux()
			mux.Handle(console.Prefix, c.Handler())
			mux.Handle("/", srv.Handler())
			return mux, d
		},
		TaskQueue: testTaskQueue,
		APIKey:    testKey,
		Keys:      testenv.Keyring(),
	}
}

// TestRun runs every throughput scenario and the list scenario on a tiny load with retries
// and checks that every delivery is accounted for, signed and timed.
func TestRun(t *testing.T) {
	delays := []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}
	opts := bench.Options{
		Scenarios:      []string{bench.ScenarioOurs, bench.ScenarioBare, bench.ScenarioBareSA, bench.ScenarioRaw, bench.ScenarioList},
		Count:          40,
		Concurrency:    8,
		FanOut:         2,
		FailRate:       0.2,
		RetryDelays:    delays,
		AttemptTimeout: 5 * time.Second,
		ListAttempts:   1000,
		ListAccounts:   20,
		DatabaseURL:    testenv.PostgresURL(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, opts, testWiring(delays, opts.AttemptTimeout))
	require.NoError(t, err)

	require.Len(t, rep.Scenarios, 4)
	for i, name := range []string{bench.ScenarioOurs, bench.ScenarioBare, bench.ScenarioBareSA, bench.ScenarioRaw} {
		res := rep.Scenarios[i]
		require.Equal(t, name, res.Scenario)
		if name == bench.ScenarioRaw {
			require.GreaterOrEqual(t, res.Events, opts.Count, "raw publishes at least -count events")
		} else {
			require.Equal(t, opts.Count, res.Events, name)
		}
		require.Equal(t, res.Events*opts.FanOut, res.Deliveries, name)
		require.Equal(t, res.Deliveries, res.Delivered+res.Failed, name)
		require.Equal(t, res.Delivered, res.Receiver.Count, name)
		require.Zero(t, res.PublishErrors, "%s: %s", name, res.FirstError)
		require.Zero(t, res.BadSignatures, name)
		require.Zero(t, res.Duplicates, name)
		require.Positive(t, res.Refused, "%s: the receiver refuses a fifth of the requests", name)
		require.Equal(t, res.Delivered+res.Refused, res.Requests, "%s: every request is a delivery or a refusal", name)
		require.Positive(t, res.DeliveriesPerSec, name)
		require.Positive(t, res.CPUSeconds, name)
		require.Positive(t, res.Receiver.P50, name)
		require.LessOrEqual(t, res.Receiver.P50, res.Receiver.Max, name)
		require.Positive(t, res.PeakRSSBytes, name)
	}
	ours := rep.Scenarios[0]
	require.NotNil(t, ours.DeliveredStatus)
	require.Equal(t, ours.Delivered, ours.DeliveredStatus.Count)
	require.NotNil(t, rep.Ratios)
	require.Positive(t, rep.Ratios.OursToBare)
	require.Positive(t, rep.Ratios.OursToBareSA)
	require.Positive(t, rep.Ratios.OursToRaw)

	require.NotNil(t, rep.List)
	require.Equal(t, 20, rep.List.Accounts)
	require.Equal(t, 200, rep.List.Webhooks)
	require.Equal(t, 100, rep.List.Events)
	require.Equal(t, 200, rep.List.Deliveries, "two deliveries per event")
	require.Equal(t, 1000, rep.List.AttemptRows)
	require.Len(t, rep.List.Queries, 16, "twelve API routes and four console screens")
	for _, q := range rep.List.Queries {
		require.Equal(t, 500, q.Latency.Count, q.Name)
		require.Positive(t, q.Over, q.Name)
	}
	require.Equal(t, 100, rep.List.Queries[0].Over, "the large account has half the deliveries")

	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "ours/bare")
	require.Contains(t, out.String(), "one delivery with its 5 attempts")
	t.Log("\n" + out.String())
}

// TestRunBackoff leaves a few deliveries waiting for their next attempt and reads memory.
func TestRunBackoff(t *testing.T) {
	delays := []time.Duration{time.Hour}
	opts := bench.Options{
		Scenarios:      []string{bench.ScenarioBackoff},
		Count:          20,
		Concurrency:    4,
		RetryDelays:    delays,
		AttemptTimeout: 5 * time.Second,
		DatabaseURL:    testenv.PostgresURL(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, opts, testWiring(delays, opts.AttemptTimeout))
	require.NoError(t, err)
	require.NotNil(t, rep.Backoff)
	require.Equal(t, 20, rep.Backoff.Deliveries)
	for _, m := range []bench.Memory{rep.Backoff.Before, rep.Backoff.Waiting, rep.Backoff.Settled, rep.Backoff.WorkerStopped} {
		require.Positive(t, m.RSSBytes)
		require.Positive(t, m.HeapInuseBytes)
		require.Positive(t, m.Goroutines)
	}
}

// TestRunRefusesBadOptions checks the options before anything starts.
func TestRunRefusesBadOptions(t *testing.T) {
	t.Parallel()
	w := testWiring(nil, time.Second)
	for name, opts := range map[string]bench.Options{
		"unknown scenario":         {Scenarios: []string{"nope"}},
		"fail rate above 1":        {FailRate: 2, RetryDelays: []time.Duration{time.Second}},
		"fail rate, no retries":    {FailRate: 0.5},
		"backoff with short delay": {Scenarios: []string{bench.ScenarioBackoff}, RetryDelays: []time.Duration{time.Second}},
		"list with one account":    {Scenarios: []string{bench.ScenarioList}, ListAccounts: 1},
	} {
		_, err := bench.Run(context.Background(), opts, w)
		require.Error(t, err, name)
	}
	_, err := bench.Run(context.Background(), bench.Options{}, bench.Wiring{})
	require.ErrorContains(t, err, "wiring")
}

// TestRunIsolationAndRecovery runs the isolation scenario on a tiny load (an endpoint that
// hangs for the 1 s attempt timeout beside a healthy one) and recovers 300 failed
// deliveries: every healthy delivery arrives, and every recovered one once, at no more than
// the bounded rate.
func TestRunIsolationAndRecovery(t *testing.T) {
	delays := []time.Duration{time.Minute}
	opts := bench.Options{
		Scenarios:      []string{bench.ScenarioIsolation, bench.ScenarioRecovery},
		Count:          300,
		Rate:           20,
		Duration:       2 * time.Second,
		Concurrency:    8,
		RetryDelays:    delays,
		AttemptTimeout: time.Second,
		RecoveryRate:   testRecoveryRate,
		DatabaseURL:    testenv.PostgresURL(t),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, opts, testWiring(delays, opts.AttemptTimeout))
	require.NoError(t, err)

	require.NotNil(t, rep.Isolation)
	require.Len(t, rep.Isolation.Phases, 2)
	for _, p := range rep.Isolation.Phases {
		require.Positive(t, p.HealthyEvents, p.Name)
		require.Equal(t, p.HealthyEvents, p.HealthyArrived, p.Name)
		require.Positive(t, p.Receiver.P99, p.Name)
	}
	require.Zero(t, rep.Isolation.Phases[0].HangingEvents)
	require.Positive(t, rep.Isolation.Phases[1].HangingEvents)
	require.Positive(t, rep.Isolation.Phases[1].HangingRequests)
	require.Positive(t, rep.Isolation.P99Ratio)

	rec := rep.Recovery
	require.NotNil(t, rec)
	require.Equal(t, 300, rec.Matched)
	require.Equal(t, 300, rec.Delivered)
	require.Zero(t, rec.Failed)
	require.Equal(t, 300, rec.Arrived)
	require.Zero(t, rec.Duplicates)
	require.True(t, rec.SameID)
	require.NotEmpty(t, rec.Samples)
	require.LessOrEqual(t, rec.Rate, 1.2*testRecoveryRate, "the recovery keeps to its rate")

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "isolation:")
	require.Contains(t, text.String(), "recovery: 300 failed deliveries")
}
