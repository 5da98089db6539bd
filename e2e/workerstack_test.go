package e2e_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// workerStack is the API, the delivery service and its outbox in the test's process, over a
// PostgreSQL database and an in-process Temporal server, with `surveyhooks worker`
// processes of the real binary as the workers, which the test starts (and kills).
type workerStack struct {
	api *apiClient
	st  *store.Store
	db  *sqlx.DB
	tc  client.Client
	// env is the workers' environment.
	env []string
}

// startWorkerStack starts the stack on the PostgreSQL database at pgURL, with no worker.
// The service and the workers share the schedule (the workflow takes its timeouts from the
// service, the activity its delays from the worker's environment); env adds to the
// workers' environment (thresholds, notices).
func startWorkerStack(t *testing.T, pgURL string, schedule delivery.Schedule, env ...string) *workerStack {
	t.Helper()
	binary(t) // built before anything starts: the first build takes a while
	db, err := sqlx.Open(store.DriverName, pgURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	st := store.New(db, testenv.Keyring())
	opts := temporalOptions(t)
	startTemporal(t, opts)
	tc := dialTemporal(t, opts.FrontendAddr)
	queue := uniqueQueue("workers")
	d := delivery.New(st, tc, delivery.Config{TaskQueue: queue, Schedule: schedule,
		Outbox: delivery.OutboxConfig{Interval: 300 * time.Millisecond}}, testLogger(t, slog.LevelError))
	runOutbox(t, d)
	delays := make([]string, 0, len(schedule.Delays))
	for _, delay := range schedule.Delays {
		delays = append(delays, delay.String())
	}
	return &workerStack{api: startAPI(t, st, d), st: st, db: db, tc: tc, env: append([]string{
		"DATABASE_URL=" + pgURL,
		"SURVEYHOOKS_ENCRYPTION_KEYS=" + testenv.EncryptionKeys(),
		"TEMPORAL_ADDRESS=" + opts.FrontendAddr,
		"TEMPORAL_NAMESPACE=default",
		"SURVEYHOOKS_TASK_QUEUE=" + queue,
		"SURVEYHOOKS_RETRY_DELAYS=" + strings.Join(delays, ","),
		"SURVEYHOOKS_ATTEMPT_TIMEOUT=" + schedule.AttemptTimeout.String(),
		"SURVEYHOOKS_ALLOW_HTTP=true",
		"SURVEYHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
	}, env...)}
}

// startWorker runs `surveyhooks worker` with the stack's environment and a metrics port of
// its own.
func (s *workerStack) startWorker(t *testing.T, name string) *proc {
	t.Helper()
	return startProc(t, name, append(slices.Clone(s.env), "SURVEYHOOKS_METRICS_ADDR="+freeAddr(t)), "worker")
}
