// Package retention deletes delivery history older than the retention period. A Temporal
// Schedule (EnsureSchedule) starts the Run workflow every hour; its one activity deletes
// old attempts, then the events whose whole history is old with their deliveries, in small
// batches so that PostgreSQL never holds long locks and the API keeps answering meanwhile,
// and clears the previous secrets of webhooks whose rotation overlap has ended.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/surveyhooks/surveyhooks/store"
)

const (
	// DefaultMaxAge is how long delivery history is kept (SURVEYHOOKS_RETENTION).
	DefaultMaxAge = 30 * 24 * time.Hour
	// DefaultBatchSize bounds the rows one DELETE statement removes.
	DefaultBatchSize = 1000
	// WorkflowName is the Run workflow's type name, as the schedule and the Web UI show it.
	WorkflowName = "Retention"
)

// Input configures one run.
type Input struct {
	// MaxAge: history older than this is deleted.
	MaxAge time.Duration
	// BatchSize bounds the rows one statement deletes; 0 means DefaultBatchSize.
	BatchSize int
}

// DeleteInput is the activity's input: the run's cutoff, fixed once so that every batch
// deletes against the same line.
type DeleteInput struct {
	Cutoff    time.Time
	BatchSize int
}

// Result counts the rows a run deleted.
type Result struct {
	Attempts   int
	Deliveries int
	Events     int
	// StatsHours counts the hours of webhook stats deleted.
	StatsHours int
	// Secrets counts the previous secrets cleared after their overlap ended.
	Secrets int
	// ConsoleRows counts the console links, sessions and session keys deleted a day after
	// they ended.
	ConsoleRows int
}

// Run deletes the history older than in.MaxAge. The cutoff comes from workflow time, so a
// retried activity keeps the same one.
func Run(ctx workflow.Context, in Input) (Result, error) {
	if in.MaxAge <= 0 {
		return Result{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("retention %s is not positive", in.MaxAge), "InvalidRetention", nil)
	}
	if in.BatchSize <= 0 {
		in.BatchSize = DefaultBatchSize
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// A first run over a large backlog may take long; heartbeats tell a stuck or lost
		// worker from a busy one.
		StartToCloseTimeout: 6 * time.Hour,
		HeartbeatTimeout:    time.Minute,
		Summary:             fmt.Sprintf("delete history older than %s", in.MaxAge),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    10 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Minute,
			// The next scheduled run tries again anyway.
			MaximumAttempts: 10,
		},
	})
	var res Result
	err := workflow.ExecuteActivity(ctx, acts.DeleteExpired, DeleteInput{
		Cutoff:    workflow.Now(ctx).Add(-in.MaxAge),
		BatchSize: in.BatchSize,
	}).Get(ctx, &res)
	if err != nil {
		return Result{}, fmt.Errorf("delete expired history: %w", err)
	}
	return res, nil
}

// acts is only a method set: Run names the activity through it, the worker runs it.
var acts *Activities

// Activities holds the retention activity's dependencies. Register it with a worker.
type Activities struct {
	store  *store.Store
	logger *slog.Logger
}

// NewActivities returns the retention activities over st.
func NewActivities(st *store.Store, logger *slog.Logger) *Activities {
	if logger == nil {
		logger = slog.Default()
	}
	return &Activities{store: st, logger: logger}
}

// Register adds the Run workflow (as WorkflowName) and the activities to a worker.
func Register(r worker.Registry, a *Activities) {
	r.RegisterWorkflowWithOptions(Run, workflow.RegisterOptions{Name: WorkflowName})
	r.RegisterActivity(a)
}

// DeleteExpired deletes, batch by batch, the attempts of finished deliveries older than the
// cutoff, then the events whose whole history is older than it, with their deliveries, then
// the hours of webhook stats before it. It heartbeats its running totals after every batch;
// a retry (after a worker was stopped, for example) starts from the totals of the last
// heartbeat and simply goes on deleting.
func (a *Activities) DeleteExpired(ctx context.Context, in DeleteInput) (Result, error) {
	if in.BatchSize <= 0 {
		in.BatchSize = DefaultBatchSize
	}
	var total Result
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &total) // counts only: a bad value restarts them
	}
	for {
		n, err := a.store.DeleteExpiredAttempts(ctx, in.Cutoff, in.BatchSize)
		if err != nil {
			return total, err
		}
		total.Attempts += n
		activity.RecordHeartbeat(ctx, total)
		if n < in.BatchSize {
			break
		}
	}
	for {
		events, deliveries, err := a.store.DeleteExpiredEvents(ctx, in.Cutoff, in.BatchSize)
		if err != nil {
			return total, err
		}
		total.Events += events
		total.Deliveries += deliveries
		activity.RecordHeartbeat(ctx, total)
		if events < in.BatchSize {
			break
		}
	}
	for {
		n, err := a.store.DeleteExpiredStats(ctx, in.Cutoff, in.BatchSize)
		if err != nil {
			return total, err
		}
		total.StatsHours += n
		activity.RecordHeartbeat(ctx, total)
		if n < in.BatchSize {
			break
		}
	}
	// Previous secrets go as soon as their overlap ends, whatever the history's cutoff: a
	// secret that signs nothing must not stay in the table.
	secrets, err := a.store.ClearExpiredSecrets(ctx)
	if err != nil {
		return total, err
	}
	total.Secrets += secrets
	// So do the console's links and sessions a day after they ended, with the keys minted
	// for them.
	console, err := a.store.DeleteEndedConsoleAccess(ctx, time.Now())
	if err != nil {
		return total, err
	}
	total.ConsoleRows += console
	a.logger.InfoContext(ctx, "deleted expired delivery history", "cutoff", in.Cutoff,
		"attempts", total.Attempts, "deliveries", total.Deliveries, "events", total.Events,
		"stats_hours", total.StatsHours, "secrets", total.Secrets, "console_rows", total.ConsoleRows)
	return total, nil
}
