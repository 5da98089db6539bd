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
	"sync/atomic"
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
	// Targets, when set, gets each published delivery's target before its workflow starts:
	// the cache of a worker in this process, so that its first attempt need not read it
	// (activities.TargetCache).
	Targets TargetKeeper
}

// TargetKeeper keeps what the first attempt of a delivery needs.
type TargetKeeper interface {
	Put(store.Target)
}

// ErrTemporalDown is Dispatch's answer while Temporal is known to be unreachable: the
// event stays in the outbox and Run starts it once Temporal answers again.
var ErrTemporalDown = errors.New("temporal is unreachable; the event stays queued")

// downFor is how long a start that could not reach Temporal makes Dispatch skip Temporal,
// unless Run sees it healthy before.
const downFor = 30 * time.Second

// Dispatcher starts event workflows.
type Dispatcher struct {
	store  *store.Store
	client client.Client
	opts   Options
	logger *slog.Logger
	// downUntil (Unix nanoseconds) is set when a start could not reach Temporal. Until
	// then Dispatch does not try: with Temporal stopped, every start would wait out its
	// timeout (2.5 s measured), and so would every publish request.
	downUntil atomic.Int64
	// checking is set while a health check after a timed-out start runs.
	checking atomic.Bool
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

// Input is the workflow input of ev, which fans the event out (or lists the deliveries an
// earlier fan-out made) before its attempts.
func (d *Dispatcher) Input(ev store.Event) workflows.EventInput {
	return workflows.EventInput{
		EventID:           ev.ID,
		EventType:         ev.EventType,
		SurveyID:          ev.SurveyID,
		MaxAttempts:       d.opts.MaxAttempts,
		AttemptTimeout:    d.opts.AttemptTimeout,
		LocalFirstAttempt: true,
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
	return d.start(ctx, ev, d.Input(ev))
}

func (d *Dispatcher) start(ctx context.Context, ev store.Event, in workflows.EventInput) (client.WorkflowRun, error) {
	run, err := d.client.ExecuteWorkflow(ctx, d.StartOptions(ev), workflows.Event, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return d.client.GetWorkflow(ctx, workflows.ID(ev.ID), started.RunId), nil
	}
	if err != nil {
		return nil, fmt.Errorf("start workflow of event %s: %w", ev.ID, err)
	}
	return run, nil
}

// Dispatch starts the workflow of an event store.PublishEvent stored, with the deliveries
// made with it, and marks the event dispatched. While Temporal is known to be unreachable it
// returns ErrTemporalDown at once, and the event waits for Run.
func (d *Dispatcher) Dispatch(ctx context.Context, p store.Published) (client.WorkflowRun, error) {
	if time.Now().UnixNano() < d.downUntil.Load() {
		return nil, ErrTemporalDown
	}
	if d.opts.Targets != nil {
		for _, t := range p.Deliveries {
			d.opts.Targets.Put(t)
		}
	}
	in := d.Input(p.Event)
	in.FannedOut, in.Deliveries = true, p.Subscriptions()
	run, err := d.start(ctx, p.Event, in)
	if err != nil {
		d.noteFailure(err)
		return nil, err
	}
	if err := d.store.MarkDispatched(ctx, p.Event.ID); err != nil {
		// Run starts the event again after the grace period, which finds its workflow; the
		// event is not lost and nothing is sent twice.
		d.logger.WarnContext(ctx, "event started but not marked dispatched", "event_id", p.Event.ID, "err", err)
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
		d.probe(ctx)
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
				if err != nil {
					d.noteFailure(err)
					return err
				}
				d.downUntil.Store(0)
				return nil
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

// noteFailure marks Temporal unreachable when err says a start could not reach it. A start
// that ran out of time only may be slow, not down (measured: under a burst, starts outlast
// their deadline while Temporal works): a health check decides, in the background.
func (d *Dispatcher) noteFailure(err error) {
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &unavailable) {
		d.markDown()
		return
	}
	var deadline *serviceerror.DeadlineExceeded
	if !errors.As(err, &deadline) && !errors.Is(err, context.DeadlineExceeded) {
		return // refused, or the caller went away: says nothing about Temporal
	}
	if !d.checking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer d.checking.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
		defer cancel()
		if _, err := d.client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			d.logger.Warn("temporal is unreachable: queueing events", "err", err)
			d.markDown()
		}
	}()
}

// healthTimeout bounds the health check that tells a slow Temporal from an unreachable one.
const healthTimeout = 3 * time.Second

func (d *Dispatcher) markDown() {
	d.downUntil.Store(time.Now().Add(downFor).UnixNano())
}

// probe clears the unreachable mark as soon as Temporal answers a health check, so that
// publishing goes back to starting workflows at once without waiting for downFor.
func (d *Dispatcher) probe(ctx context.Context) {
	if d.downUntil.Load() == 0 {
		return
	}
	probeCtx, cancel := context.WithTimeout(ctx, d.opts.Interval)
	defer cancel()
	if _, err := d.client.CheckHealth(probeCtx, &client.CheckHealthRequest{}); err == nil {
		d.downUntil.Store(0)
	}
}
