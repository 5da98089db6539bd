package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/bench"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/keyring"
	"github.com/surveyhooks/surveyhooks/store"
)

const benchUsage = `usage: surveyhooks bench [flags]

Starts its own stack as dev does (a throwaway PostgreSQL unless DATABASE_URL is set, an
in-process Temporal server, the worker and the API), publishes events through the API to a
local receiver and reports throughput, latency, CPU and memory, beside a bare Temporal
workflow with one HTTP activity and a raw HMAC + POST loop. With DATABASE_URL the bench's
webhooks, events and deliveries stay in that database, sealed with
SURVEYHOOKS_ENCRYPTION_KEYS as serve would.

Scenarios: ours, bare, raw (the default); bare-sa (bare plus ours' search attributes, to
tell Temporal's visibility cost from the rest); isolation (-rate events/s, default 40, for -duration, default 60s, every other one to an endpoint that never answers, against half the rate to the healthy endpoint alone); recovery (-count failed deliveries recovered at SURVEYHOOKS_RECOVERY_RATE, with progress and memory sampled); list (API reads over -list-accounts accounts
with ten webhooks each and -list-attempts attempt rows); backoff (memory with -count deliveries waiting; alone it uses the documented schedule).

On a shared machine one pass of each scenario moves with whatever else runs: -rounds N runs
the throughput scenarios N times, interleaved, and compares their medians.

flags:
`

// runBench runs `surveyhooks bench` with the flags after the command name.
func runBench(ctx context.Context, cfg config) error {
	return benchMain(ctx, cfg, os.Args[2:], os.Stdout, os.Stderr)
}

func benchMain(ctx context.Context, cfg config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	var (
		opts        bench.Options
		scenarios   = fs.String("scenarios", strings.Join(bench.DefaultScenarios, ","), "comma-separated scenarios: ours, bare, bare-sa, raw, list, isolation, recovery, backoff")
		retryDelays = fs.String("retry-delays", "100ms,200ms", "retry schedule of every scenario (waits before attempts 2..N)")
		jsonOut     = fs.Bool("json", false, "print the report as JSON")
		progress    = fs.Bool("progress", false, "show the progress line even when stderr is not a terminal")
		verbose     = fs.Bool("v", false, "show the stack's info logs (one line per delivery attempt)")
		soak        = fs.Duration("soak", 0, "instead of the scenarios: run the production shape (a two-node Temporal cluster, two serve and three worker processes) at half its measured maximum rate for this long, sampling every minute; writes soak.svg and soak.csv to -soak-out")
		soakOut     = fs.String("soak-out", ".", "folder of -soak's plot and samples")
	)
	fs.IntVar(&opts.Count, "count", bench.DefaultCount, "events per scenario (raw: at least 20000); deliveries left waiting by backoff")
	fs.DurationVar(&opts.Duration, "duration", 0, "publish for this long instead of -count events")
	fs.IntVar(&opts.Concurrency, "concurrency", bench.DefaultConcurrency, "publish requests in flight")
	fs.Float64Var(&opts.Rate, "rate", 0, "publish this many events/s (0: as fast as -concurrency allows)")
	fs.BoolVar(&opts.HalfRate, "half-rate", false, "run each scenario again at half the events/s it reached (the median of its rounds)")
	fs.IntVar(&opts.Rounds, "rounds", 1, "run the throughput scenarios this many times, interleaved, and compare their medians")
	fs.IntVar(&opts.FanOut, "fanout", bench.DefaultFanOut, "webhooks per event")
	fs.IntVar(&opts.PayloadBytes, "payload-bytes", bench.DefaultPayloadBytes, "approximate size of each delivered body")
	fs.Float64Var(&opts.FailRate, "fail-rate", 0, "fraction of requests the receiver answers 500")
	fs.DurationVar(&opts.ReceiverLatency, "receiver-latency", 0, "time the receiver takes per request")
	fs.DurationVar(&opts.AttemptTimeout, "attempt-timeout", cfg.AttemptTimeout, "limit of one delivery attempt")
	fs.BoolVar(&opts.BareLocal, "bare-local", false, "run the bare scenarios' HTTP activity as a local activity")
	fs.BoolVar(&opts.Durable, "durable", false, "run the throwaway PostgreSQL with fsync on, as dev does")
	fs.StringVar(&opts.ProfileDir, "profile-dir", "", "write a CPU profile of each scenario's first pass here, as <scenario>.pprof")
	fs.IntVar(&opts.ListAttempts, "list-attempts", bench.DefaultListAttempts, "attempt rows the list scenario inserts (about: a multiple of 200)")
	fs.IntVar(&opts.ListAccounts, "list-accounts", bench.DefaultListAccounts, "accounts the list scenario spreads its rows over, ten webhooks each")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags go after the command: surveyhooks bench -count 500)", fs.Args())
	}
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			opts.Scenarios = append(opts.Scenarios, s)
		}
	}
	delaysSet := false
	fs.Visit(func(f *flag.Flag) { delaysSet = delaysSet || f.Name == "retry-delays" })
	if !delaysSet && len(opts.Scenarios) == 1 && opts.Scenarios[0] == bench.ScenarioBackoff {
		*retryDelays = "" // the documented schedule: deliveries wait a minute for attempt 2
	}
	opts.RetryDelays = delivery.DefaultRetryDelays
	if *retryDelays != "" {
		delays, err := delivery.ParseDelays(*retryDelays)
		if err != nil {
			return fmt.Errorf("-retry-delays: %w", err)
		}
		opts.RetryDelays = delays
	}
	if *soak > 0 {
		return runSoak(ctx, cfg, *soak, *soakOut, opts.Concurrency, opts.FailRate, *jsonOut, stdout, stderr)
	}
	opts.DatabaseURL = cfg.DatabaseURL
	opts.RecoveryRate = cfg.RecoveryRate
	if *progress || isTerminal(stderr) {
		opts.Progress = stderr
	}

	// A database of DATABASE_URL may hold others' webhooks, sealed under their keys (or in
	// clear, which migrating seals): the bench needs those keys as serve does. Its own
	// throwaway database gets a throwaway key.
	if cfg.DatabaseURL != "" {
		if err := requireStore(cfg); err != nil {
			return err
		}
	} else if cfg.EncryptionKeys == nil {
		keys, err := keyring.Parse(keyring.Generate())
		if err != nil {
			return fmt.Errorf("encryption key: %w", err)
		}
		cfg.EncryptionKeys = keys
	}

	// The bench's own configuration: deliveries to the loopback receiver over plain http,
	// a key of its own that no rate limit slows down, and the schedule of the flags.
	key := make([]byte, 16)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	cfg.APIKeys = []string{"shk_bench_" + hex.EncodeToString(key)}
	cfg.RateLimit = -1
	cfg.AllowHTTP = true
	cfg.AllowedCIDRs = bench.Loopback
	cfg.RetryDelays = opts.RetryDelays
	cfg.AttemptTimeout = opts.AttemptTimeout
	logger := benchLogger(cfg, stderr, *verbose)
	opts.Logger = logger

	// The API and the worker share this process, as in dev.
	wiring := bench.Wiring{
		OpenDB: func(ctx context.Context, databaseURL string) (*sqlx.DB, error) {
			return openDB(ctx, databaseURL, cfg.DBMaxConns)
		},
		Worker: func(tc client.Client, st *store.Store) worker.Worker {
			return newWorker(cfg, tc, st, logger)
		},
		API: func(tc client.Client, st *store.Store) (http.Handler, *delivery.Service) {
			d := newDeliveries(cfg, st, tc, logger)
			srv := newAPI(cfg, st, d, logger)
			h, err := newHTTPHandler(cfg, st, srv, "", logger)
			if err != nil {
				// Only a SURVEYHOOKS_CONSOLE_* setting fails it; the list scenario then says
				// that the console is not served.
				logger.Error("the bench serves the API without the console", "err", err)
				return srv.Handler(), d
			}
			return h, d
		},
		TaskQueue: cfg.TaskQueue,
		APIKey:    cfg.APIKeys[0],
		Keys:      cfg.EncryptionKeys,
	}
	started := time.Now()
	rep, err := bench.Run(ctx, opts, wiring)
	if rep != nil {
		if *jsonOut {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(rep); jerr != nil && err == nil {
				err = jerr
			}
		} else if terr := rep.WriteText(stdout); terr != nil && err == nil {
			err = terr
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench done in %s\n", time.Since(started).Round(time.Second))
	return nil
}

// benchLogger formats every record the way dev does, so that logging costs in the bench
// what it costs in use, but shows only warnings and errors unless verbose: the worker logs
// a line per delivery attempt.
func benchLogger(cfg config, stderr io.Writer, verbose bool) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	shown := slog.LevelWarn
	if verbose {
		shown = level
	}
	return slog.New(slog.NewMultiHandler(
		slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}),
		slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: shown}),
	))
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
