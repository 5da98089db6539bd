package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/surveyhooks/surveyhooks/coalesce"
	"github.com/surveyhooks/surveyhooks/store"
)

// Events are stored in PostgreSQL before their workflow starts (an outbox), so that
// accepting an event never depends on Temporal being up: Publish starts the workflow at
// once when it can, and Run starts the ones that could not be started, in order, once
// Temporal is back.

// OutboxConfig configures how often the outbox looks for events to start.
type OutboxConfig struct {
	// Interval between looks for undispatched events (default 2 s).
	Interval time.Duration
	// Grace leaves fresh events to the publish that stored them (default 5 s).
	Grace time.Duration
	// Batch is the most events started per look (default 100).
	Batch int
}

// downFor is how long a start that could not reach Temporal makes publishes skip Temporal,
// unless Run sees it healthy before.
const downFor = 30 * time.Second

// healthTimeout bounds the health check that tells a slow Temporal from an unreachable one.
const healthTimeout = 3 * time.Second

// outbox is the service's view of Temporal's health and its queue of undispatched events.
type outbox struct {
	svc *Service
	cfg OutboxConfig
	// downUntil (Unix nanoseconds) is set when a start could not reach Temporal. Until then
	// publishes do not try: with Temporal stopped, every start would wait out its timeout,
	// and so would every publish request.
	downUntil atomic.Int64
	// checking is set while a health check after a timed-out start runs.
	checking atomic.Bool
	// marks shares the dispatch marks of concurrent publishes in one statement.
	marks *coalesce.Queue[*queuedMark]
}

// Dispatch marks go in batches: every publish marks its event once its workflow started.
const (
	maxMarkFlushers = 2
	maxMarkBatch    = 256
	// markTimeout bounds one statement; callers wait for it.
	markTimeout = 10 * time.Second
)

// queuedMark is an event to mark dispatched; err is set before done is closed.
type queuedMark struct {
	eventID string
	err     error
	done    chan struct{}
}

func newOutbox(svc *Service, cfg OutboxConfig) *outbox {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	o := &outbox{svc: svc, cfg: cfg}
	o.marks = &coalesce.Queue[*queuedMark]{MaxFlushers: maxMarkFlushers, MaxBatch: maxMarkBatch, Flush: o.flushMarks}
	return o
}

func (o *outbox) temporalDown() bool {
	return time.Now().UnixNano() < o.downUntil.Load()
}

// markDispatched records that the event's workflow started, so that Run does not start it
// again. Concurrent calls share one statement. A mark that fails only costs a second start
// later, which finds the workflow (or, once it closed, runs it again over deliveries that
// are all finished: nothing is sent twice).
func (o *outbox) markDispatched(ctx context.Context, eventID string) error {
	q := &queuedMark{eventID: eventID, done: make(chan struct{})}
	o.marks.Add(q)
	select {
	case <-q.done:
		return q.err
	case <-ctx.Done():
		return fmt.Errorf("mark event %s dispatched: %w", eventID, ctx.Err())
	}
}

func (o *outbox) flushMarks(batch []*queuedMark) {
	ctx, cancel := context.WithTimeout(context.Background(), markTimeout)
	defer cancel()
	ids := make([]string, len(batch))
	for i, q := range batch {
		ids[i] = q.eventID
	}
	err := o.svc.store.MarkDispatched(ctx, ids...)
	for _, q := range batch {
		q.err = err
		close(q.done)
	}
}

// Run starts the workflows of stored events whose start did not happen (Temporal was down,
// or the process died between storing and starting), oldest first, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	o := s.outbox
	ticker := time.NewTicker(o.cfg.Interval)
	defer ticker.Stop()
	for {
		if _, err := s.DispatchPending(ctx); err != nil && ctx.Err() == nil {
			s.logger.WarnContext(ctx, "dispatch stored events", "err", err)
		}
		o.probe(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// DispatchPending starts the workflows of undispatched events older than the grace
// period, in batches, and returns how many it started.
func (s *Service) DispatchPending(ctx context.Context) (int, error) {
	o := s.outbox
	total := 0
	for {
		n, err := s.store.DispatchPending(ctx, time.Now().Add(-o.cfg.Grace), o.cfg.Batch,
			func(ctx context.Context, p store.Published) error {
				startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if _, err := s.start(startCtx, p.Event, p.Deliveries); err != nil {
					o.noteFailure(err)
					return err
				}
				o.downUntil.Store(0)
				return nil
			})
		total += n
		if err != nil || n < o.cfg.Batch {
			if total > 0 {
				s.logger.InfoContext(ctx, "dispatched stored events", "count", total)
			}
			return total, err
		}
	}
}

// noteFailure marks Temporal unreachable when err says a start could not reach it. A start
// that ran out of time only may be slow, not down (under a burst, starts outlast their
// deadline while Temporal works): a health check decides, in the background.
func (o *outbox) noteFailure(err error) {
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &unavailable) {
		o.markDown()
		return
	}
	var deadline *serviceerror.DeadlineExceeded
	if !errors.As(err, &deadline) && !errors.Is(err, context.DeadlineExceeded) {
		return // refused, or the caller went away: says nothing about Temporal
	}
	if !o.checking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer o.checking.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
		defer cancel()
		if _, err := o.svc.client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			o.svc.logger.Warn("temporal is unreachable: queueing events", "err", err)
			o.markDown()
		}
	}()
}

func (o *outbox) markDown() {
	o.downUntil.Store(time.Now().Add(downFor).UnixNano())
}

// probe clears the unreachable mark as soon as Temporal answers a health check, so that
// publishing goes back to starting workflows at once without waiting for downFor.
func (o *outbox) probe(ctx context.Context) {
	if o.downUntil.Load() == 0 {
		return
	}
	probeCtx, cancel := context.WithTimeout(ctx, o.cfg.Interval)
	defer cancel()
	if _, err := o.svc.client.CheckHealth(probeCtx, &client.CheckHealthRequest{}); err == nil {
		o.downUntil.Store(0)
	}
}
