// Package bench measures surveyhooks end to end on one machine and puts the figures next to
// the two limits that bound them: a bare Temporal workflow with one HTTP activity on the same
// server and worker, and a raw HMAC + POST loop with no Temporal at all.
//
// Run starts its own stack as `surveyhooks dev` does (PostgreSQL from the local binaries in a
// temporary folder unless a database URL is given, an in-process Temporal server on SQLite
// files, the worker and the REST API over loopback HTTP) and a local receiver, then publishes
// events through the real API and times them until the receiver has them and the database
// says delivered. Every scenario runs in the same process against the same store, so the
// ratios between them hold even on a noisy machine where the absolute figures do not.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/keyring"
	"github.com/surveyhooks/surveyhooks/store"
)

// Scenario names.
const (
	// ScenarioOurs is the full path: POST /api/events, the event workflow, the Deliver
	// activity (sign, POST, record the attempt), until the delivery is recorded delivered.
	ScenarioOurs = "ours"
	// ScenarioBare is a workflow with one HTTP activity per webhook (HMAC + POST, no
	// database) on the same server and worker.
	ScenarioBare = "bare"
	// ScenarioBareSA is bare plus what ours does for the Web UI: the same search
	// attributes and upserts, summaries and details. Between bare and ours, it tells the
	// cost of Temporal's visibility writes from the cost of the rest (API, database).
	ScenarioBareSA = "bare-sa"
	// ScenarioRaw is HMAC + POST from a loop over a pooled transport, no Temporal.
	ScenarioRaw = "raw"
	// ScenarioList times the delivery lists through the API over the tables of
	// Options.ListAccounts accounts with ten webhooks each and Options.ListAttempts attempt
	// rows.
	ScenarioList = "list"
	// ScenarioBackoff measures memory before and after Options.Count deliveries are left
	// waiting for their next attempt. It needs a first retry delay of a minute or more.
	ScenarioBackoff = "backoff"
)

// DefaultScenarios are the throughput scenarios, in the order they run.
var DefaultScenarios = []string{ScenarioOurs, ScenarioBare, ScenarioRaw}

// Defaults for the zero values of Options.
const (
	DefaultCount        = 2000
	DefaultConcurrency  = 64
	DefaultFanOut       = 1
	DefaultPayloadBytes = 1024
	DefaultListAttempts = 1_000_000
	DefaultListAccounts = 10_000
	// rawMinEvents: the raw loop does tens of thousands of deliveries a second, so it gets
	// at least this many events, or its run would be over before it warmed up.
	rawMinEvents = 20_000
)

// Options configure a run. The zero value runs DefaultScenarios with the defaults above.
type Options struct {
	// Scenarios to run: ours, bare, bare-sa, raw, list, backoff. The throughput ones (ours,
	// bare, bare-sa, raw) run first, in the order given; then list; backoff always last.
	Scenarios []string
	// Count is how many events each throughput scenario publishes (raw publishes at least
	// 20,000), and how many deliveries the backoff scenario leaves waiting.
	Count int
	// Duration, when set, publishes for that long instead of Count events.
	Duration time.Duration
	// Concurrency bounds the requests in flight from the publishers.
	Concurrency int
	// Rate publishes at this many events per second; 0 publishes as fast as Concurrency
	// allows. Latencies are then measured from the intended send time, so that a backlog
	// shows as latency instead of hiding (no coordinated omission).
	Rate float64
	// HalfRate runs each throughput scenario once more at half the events/s it reached (the
	// median over the rounds): the latency of a system that is not saturated.
	HalfRate bool
	// Rounds runs the throughput scenarios this many times, interleaved (ours, bare, raw,
	// ours, bare, raw, ...), and compares their medians: on a shared machine one pass of
	// each moves with whatever else runs. Default 1.
	Rounds int
	// FanOut is the number of webhooks each event goes to.
	FanOut int
	// PayloadBytes is the approximate size of the body each webhook receives.
	PayloadBytes int
	// FailRate is the fraction of requests the receiver answers 500, to exercise retries.
	FailRate float64
	// ReceiverLatency is how long the receiver takes to answer each request.
	ReceiverLatency time.Duration
	// RetryDelays and AttemptTimeout must be what Wiring's worker was built with: bare and
	// raw retry on the same schedule, and the harness knows how long to wait.
	RetryDelays    []time.Duration
	AttemptTimeout time.Duration
	// BareLocal runs the bare scenarios' HTTP activity as a local activity.
	BareLocal bool
	// DatabaseURL is a migrated-or-empty PostgreSQL database to use (it is migrated, and
	// the bench's rows stay in it); "" starts a throwaway cluster from the local binaries.
	DatabaseURL string
	// Durable runs the throwaway cluster with fsync on, as `dev` does; by default it runs
	// with fsync and full_page_writes off, like the test clusters.
	Durable bool
	// ListAttempts is about how many attempt rows the list scenario inserts (a multiple of
	// 200, at least 200).
	ListAttempts int
	// ListAccounts is how many accounts the list scenario spreads its rows over, with ten
	// webhooks each; at least 2.
	ListAccounts int
	// RecoveryRate is the recoveries' rate bound the wiring's services were built with,
	// which the recovery scenario reports beside the rate it measured.
	RecoveryRate float64
	// ProfileDir, when set, receives a CPU profile (pprof) of the whole process for the
	// first pass of each throughput scenario, as <scenario>.pprof: where the time goes.
	ProfileDir string
	// Progress receives a live progress line ("\r"-terminated); nil shows none.
	Progress io.Writer
	// Logger receives the stack's warnings (Temporal server and SDK); nil discards them.
	Logger *slog.Logger
}

// Wiring builds surveyhooks' own pieces exactly as the binary does, so that what is
// measured is what users run. cmd/surveyhooks passes its wiring; tests build their own.
// The worker and the API must allow delivering to plain-http loopback URLs.
type Wiring struct {
	// OpenDB connects to PostgreSQL; nil uses sqlx with the binary's pool size.
	OpenDB func(ctx context.Context, databaseURL string) (*sqlx.DB, error)
	// Worker returns the delivery worker, not started, polling TaskQueue through tc. The
	// bench registers its bare workflow on the same worker, so both run tuned alike.
	Worker func(tc client.Client, st *store.Store) worker.Worker
	// API returns the REST API handler and the delivery service whose Run loop starts the events
	// the API could not start at once.
	API func(tc client.Client, st *store.Store) (http.Handler, *delivery.Service)
	// TaskQueue is the worker's task queue.
	TaskQueue string
	// APIKey is a key the API accepts.
	APIKey string
	// Keys seal the webhook secrets of the bench's store, and those of older rows that
	// migrating DATABASE_URL seals.
	Keys *keyring.Keyring
}

func (o Options) withDefaults() Options {
	if len(o.Scenarios) == 0 {
		o.Scenarios = DefaultScenarios
	}
	if o.Count <= 0 {
		o.Count = DefaultCount
	}
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.FanOut <= 0 {
		o.FanOut = DefaultFanOut
	}
	if o.PayloadBytes <= 0 {
		o.PayloadBytes = DefaultPayloadBytes
	}
	if o.ListAttempts <= 0 {
		o.ListAttempts = DefaultListAttempts
	}
	if o.ListAccounts <= 0 {
		o.ListAccounts = DefaultListAccounts
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate(w Wiring) error {
	var problems []error
	known := append(slices.Clone(DefaultScenarios), ScenarioBareSA, ScenarioList, ScenarioIsolation, ScenarioRecovery, ScenarioBackoff)
	for _, s := range o.Scenarios {
		if !slices.Contains(known, s) {
			problems = append(problems, fmt.Errorf("unknown scenario %q (known: %v)", s, known))
		}
	}
	if o.FailRate < 0 || o.FailRate > 1 {
		problems = append(problems, errors.New("the fail rate must be between 0 and 1"))
	}
	if o.FailRate > 0 && len(o.RetryDelays) == 0 {
		problems = append(problems, errors.New("a fail rate needs retry delays to retry on"))
	}
	if slices.Contains(o.Scenarios, ScenarioList) && o.ListAccounts < 2 {
		problems = append(problems, errors.New("the list scenario needs at least 2 accounts: a large one and the others"))
	}
	if o.Rate < 0 {
		problems = append(problems, errors.New("the rate must not be negative"))
	}
	if slices.Contains(o.Scenarios, ScenarioBackoff) && (len(o.RetryDelays) == 0 || o.RetryDelays[0] < time.Minute) {
		problems = append(problems, errors.New("the backoff scenario needs a first retry delay of a minute or more (e.g. retry delays 1h), or the deliveries do not stay waiting"))
	}
	if w.Worker == nil || w.API == nil || w.TaskQueue == "" || w.APIKey == "" || w.Keys == nil {
		problems = append(problems, errors.New("the wiring needs Worker, API, TaskQueue, APIKey and Keys"))
	}
	return errors.Join(problems...)
}

// Run starts the stack, runs the scenarios and returns their figures: the throughput
// scenarios first, in the order given, Rounds times over, then their half-rate passes, then
// list, then backoff. A scenario that cannot complete (deliveries lost, the stack failing)
// ends the run with an error; a scenario whose deliveries partly failed as the fail rate
// asked is reported.
func Run(ctx context.Context, opts Options, w Wiring) (*Report, error) {
	opts = opts.withDefaults()
	if err := opts.validate(w); err != nil {
		return nil, err
	}
	st, err := startStack(ctx, opts, w)
	if err != nil {
		return nil, err
	}
	defer st.stop()

	rep := newReport(opts)
	var throughput []string
	for _, name := range opts.Scenarios {
		if name != ScenarioList && name != ScenarioBackoff && name != ScenarioIsolation && name != ScenarioRecovery {
			throughput = append(throughput, name)
		}
	}
	for round := 1; round <= opts.Rounds; round++ {
		for _, name := range throughput {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			label := "" // the first pass: the one profiled
			if round > 1 {
				label = fmt.Sprintf("round %d", round)
			}
			res, err := runThroughput(ctx, st, opts, name, opts.Rate, label)
			if err != nil {
				return rep, fmt.Errorf("%s scenario%s: %w", name, prefixed(", ", label), err)
			}
			rep.Scenarios = append(rep.Scenarios, res)
		}
	}
	rep.summarizeRounds()
	if opts.HalfRate && opts.Rate == 0 {
		for _, name := range throughput {
			rate := rep.medianOf(name, func(r Result) float64 { return r.EventsPerSec })
			if rate <= 0 {
				continue
			}
			half, err := runThroughput(ctx, st, opts, name, rate/2, "half")
			if err != nil {
				return rep, fmt.Errorf("%s scenario at half rate: %w", name, err)
			}
			rep.Scenarios = append(rep.Scenarios, half)
		}
	}
	if slices.Contains(opts.Scenarios, ScenarioList) {
		res, err := runList(ctx, st, opts)
		if err != nil {
			return rep, fmt.Errorf("list scenario: %w", err)
		}
		rep.List = res
	}
	if slices.Contains(opts.Scenarios, ScenarioIsolation) {
		res, err := runIsolation(ctx, st, opts)
		if err != nil {
			return rep, fmt.Errorf("isolation scenario: %w", err)
		}
		rep.Isolation = res
	}
	if slices.Contains(opts.Scenarios, ScenarioRecovery) {
		res, err := runRecovery(ctx, st, opts)
		if err != nil {
			return rep, fmt.Errorf("recovery scenario: %w", err)
		}
		rep.Recovery = res
	}
	if slices.Contains(opts.Scenarios, ScenarioBackoff) {
		// Last: it stops the worker.
		res, err := runBackoff(ctx, st, opts)
		if err != nil {
			return rep, fmt.Errorf("backoff scenario: %w", err)
		}
		rep.Backoff = res
	}
	return rep, nil
}
