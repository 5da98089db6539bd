// Package dispatch starts the Temporal workflows of stored events. Events are stored in
// PostgreSQL first (an outbox), so that accepting an event never depends on Temporal being
// up: the API starts the workflow right away when it can, and Dispatcher.Run starts the
// ones that could not be started, in order, once Temporal is back.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// Options configure the workflows a Dispatcher starts and how often it looks for events.
type Options struct {
	// TaskQueue is where the event workflows run.
	TaskQueue string
	// MaxAttempts and AttemptTimeout go into each workflow's input.
	MaxAttempts    int
	AttemptTimeout time.Duration
	// Interval between looks for undispatched events (default 2 s).
	Interval time.Duration
	// Grace leaves fresh events to the API request that stored them (default 5 s).
	Grace time.Duration
	// Batch is the most events started per look (default 100).
	Batch int
}

// Dispatcher starts event workflows.
type Dispatcher struct {
	store  *store.Store
	client client.Client
	opts   Options
	logger *slog.Logger
}

// New returns a Dispatcher.
func New(st *store.Store, tc client.Client, opts Options, logger *slog.Logger) *Dispatcher {
	if opts.TaskQueue == "" {
		opts.TaskQueue = workflows.DefaultTaskQueue
	}
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 5 * time.Second
	}
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Dispatcher{store: st, client: tc, opts: opts, logger: logger}
}

// Input is the workflow input of ev.
func (d *Dispatcher) Input(ev store.Event) workflows.EventInput {
	return workflows.EventInput{
		EventID:        ev.ID,
		EventType:      ev.EventType,
		SurveyID:       ev.SurveyID,
		MaxAttempts:    d.opts.MaxAttempts,
		AttemptTimeout: d.opts.AttemptTimeout,
	}
}

// StartOptions are the start options of ev's workflow.
func (d *Dispatcher) StartOptions(ev store.Event) client.StartWorkflowOptions {
	opts := workflows.StartOptions(d.Input(ev), d.opts.TaskQueue)
	// Saves a round trip when a worker shares this process's client (dev); ignored otherwise.
	opts.EnableEagerStart = true
	return opts
}

// Start starts ev's workflow. A workflow that is already running for the event counts as
// started: a second start (two dispatchers, a retried request) changes nothing.
func (d *Dispatcher) Start(ctx context.Context, ev store.Event) (client.WorkflowRun, error) {
	run, err := d.client.ExecuteWorkflow(ctx, d.StartOptions(ev), workflows.Event, d.Input(ev))
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return d.client.GetWorkflow(ctx, workflows.ID(ev.ID), started.RunId), nil
	}
	if err != nil {
		return nil, fmt.Errorf("start workflow of event %s: %w", ev.ID, err)
	}
	return run, nil
}

// Dispatch starts ev's workflow and marks the event dispatched.
func (d *Dispatcher) Dispatch(ctx context.Context, ev store.Event) (client.WorkflowRun, error) {
	run, err := d.Start(ctx, ev)
	if err != nil {
		return nil, err
	}
	if err := d.store.MarkEventDispatched(ctx, ev.ID); err != nil {
		return nil, err
	}
	return run, nil
}

// Run starts the workflows of stored events whose start did not happen (Temporal was
// down, or the process died between storing and starting), oldest first, until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	ticker := time.NewTicker(d.opts.Interval)
	defer ticker.Stop()
	for {
		if _, err := d.DispatchPending(ctx); err != nil && ctx.Err() == nil {
			d.logger.WarnContext(ctx, "dispatch stored events", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// DispatchPending starts the workflows of undispatched events older than the grace
// period, in batches, and returns how many it started.
func (d *Dispatcher) DispatchPending(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := d.store.DispatchPending(ctx, time.Now().Add(-d.opts.Grace), d.opts.Batch,
			func(ctx context.Context, ev store.Event) error {
				startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_, err := d.Start(startCtx, ev)
				return err
			})
		total += n
		if err != nil || n < d.opts.Batch {
			if total > 0 {
				d.logger.InfoContext(ctx, "dispatched stored events", "count", total)
			}
			return total, err
		}
	}
}
