// Package workflows holds surveyhooks' Temporal workflows: one Event workflow per published
// event delivers it to each of its webhooks on the retry schedule and takes manual retry
// requests as signals. The workflow only orders the steps; the Deliver activity decides
// whether and when an attempt is sent (delivery.Decide) and what follows it.
package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
)

// acts is only a method set: workflows name activities through it, the worker runs them.
var acts *activities.Activities

// Event delivers one event to each of its webhooks in parallel, each on the retry
// schedule, and attempts a delivery at once when a delivery.RetrySignal names it. It
// returns when every delivery has ended and no retry request is pending.
func Event(ctx workflow.Context, in delivery.EventInput) (delivery.EventResult, error) {
	r := newEventRun(ctx, in)
	for _, d := range r.deliveries {
		if d.Unfinished() {
			r.start(ctx, d, activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: in.Trigger})
		}
	}
	retries := workflow.GetSignalChannel(ctx, delivery.RetrySignal)
	for {
		err := workflow.Await(ctx, func() bool {
			return r.running == 0 || retries.Len() > 0 || (r.attemptsNow == 0 && r.statusesChanged())
		})
		if err != nil {
			return delivery.EventResult{}, fmt.Errorf("await deliveries: %w", err)
		}
		var req delivery.RetryRequest
		for retries.ReceiveAsync(&req) {
			r.retry(ctx, req)
		}
		if err := r.upsertStatuses(ctx); err != nil {
			return delivery.EventResult{}, err
		}
		if r.running == 0 {
			return r.result(), nil
		}
	}
}

// target is one delivery's state inside the workflow.
type target struct {
	delivery.Target
	running bool
	err     string
	// retry hands a retry request to the delivery's running goroutine.
	retry workflow.Channel
}

// eventRun is the state of one Event workflow run.
type eventRun struct {
	in         delivery.EventInput
	deliveries []*target // in the input's order: iteration must be deterministic
	byID       map[uuid.UUID]*target
	running    int
	// attemptsNow counts the first attempts in flight: statuses are upserted when none is,
	// so that the first attempts of a fan-out cost one visibility write.
	attemptsNow int
	// upserted is the DeliveryStatus search attribute as last set.
	upserted []string
}

func newEventRun(ctx workflow.Context, in delivery.EventInput) *eventRun {
	r := &eventRun{in: in, byID: map[uuid.UUID]*target{}}
	for _, t := range in.Deliveries {
		d := &target{Target: t, retry: workflow.NewBufferedChannel(ctx, 1)}
		r.deliveries = append(r.deliveries, d)
		r.byID[t.DeliveryID] = d
	}
	r.upserted = r.statuses() // the start options set them
	return r
}

// start runs d in a goroutine from the attempt in asks for until d ends.
func (r *eventRun) start(ctx workflow.Context, d *target, in activities.DeliverInput) {
	r.running++
	d.running = true
	workflow.Go(ctx, func(ctx workflow.Context) {
		r.deliver(ctx, d, in)
		d.running = false
		r.running--
		// A retry request that reached d.retry as its last attempt ended is handled as one
		// for a finished delivery, never dropped.
		var late delivery.RetryRequest
		if d.retry.ReceiveAsync(&late) {
			r.retry(ctx, late)
		}
	})
}

// deliver runs d through its schedule. The run's first attempt (the one in asks for) is a
// local activity, so that it leaves within the workflow task that asked for it; while it
// fails, or is held because its endpoint cannot take it now, the schedule's next attempts
// are the Deliver activity, which Temporal retries at the delays Deliver returns until the
// delivery ends. A retry request cancels that wait and starts the run again with a manual
// attempt.
func (r *eventRun) deliver(ctx workflow.Context, d *target, in activities.DeliverInput) {
	for {
		res, err := r.attemptNow(ctx, d, in)
		if err == nil || isFinal(err) {
			r.finish(ctx, d, res, err)
			return
		}
		if hold, held := activities.HeldFor(err); !held {
			d.Status = delivery.StatusRetrying
		} else if hold.Turn {
			// The schedule's first try goes at the attempt's turn at the rate limit: asked
			// at once, it would be held again and the turn would go unused. Any other hold
			// goes straight to the schedule's activity, whose retries wait without a
			// workflow task.
			if err := workflow.Sleep(ctx, hold.Wait); err != nil {
				r.finish(ctx, d, res, err)
				return
			}
		}
		res, req, err := r.attemptOnSchedule(ctx, d)
		if req == nil {
			r.finish(ctx, d, res, err)
			return
		}
		in = activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: delivery.TriggerManual, Force: req.Force}
	}
}

// attemptNow makes one attempt of d as a local activity; its failure is left to the
// caller, never retried here. An attempt a person asked for (a retry, a test) that is held
// waits here for as long as Deliver says and goes again, so that it keeps its trigger; the
// schedule's own attempt goes on the schedule's path instead, whose retries add nothing to
// the workflow's history.
func (r *eventRun) attemptNow(ctx workflow.Context, d *target, in activities.DeliverInput) (activities.DeliverResult, error) {
	for {
		res, err := r.attemptOnce(ctx, d, in)
		hold, held := activities.HeldFor(err)
		if !held || in.Trigger == delivery.TriggerAuto {
			return res, err
		}
		if err := workflow.Sleep(ctx, hold.Wait); err != nil {
			return res, err
		}
		in.Held++
	}
}

func (r *eventRun) attemptOnce(ctx workflow.Context, d *target, in activities.DeliverInput) (activities.DeliverResult, error) {
	r.attemptsNow++
	defer func() { r.attemptsNow-- }()
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: r.in.Schedule.ActivityTimeout(),
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		Summary:             fmt.Sprintf("POST %s (%s)", d.URL, in.Trigger),
	})
	var res activities.DeliverResult
	err := workflow.ExecuteLocalActivity(ctx, acts.Deliver, in).Get(ctx, &res)
	return res, err
}

// attemptOnSchedule makes d's next attempts on the schedule and returns how the delivery
// ended, or, as soon as one arrives, a retry request (after cancelling the wait).
func (r *eventRun) attemptOnSchedule(ctx workflow.Context, d *target) (activities.DeliverResult, *delivery.RetryRequest, error) {
	attemptCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	attemptCtx = workflow.WithActivityOptions(attemptCtx, r.scheduleOptions(d))
	future := workflow.ExecuteActivity(attemptCtx, acts.Deliver,
		activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: delivery.TriggerAuto})

	var req *delivery.RetryRequest
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(future, func(workflow.Future) {})
	sel.AddReceive(d.retry, func(c workflow.ReceiveChannel, _ bool) {
		var got delivery.RetryRequest
		c.Receive(ctx, &got)
		req = &got
	})
	sel.Select(ctx)
	if req != nil {
		cancel() // WaitForCancellation: Get returns once the pending attempt is gone
	}
	var res activities.DeliverResult
	err := future.Get(ctx, &res)
	return res, req, err
}

// scheduleOptions run the Deliver activity through the rest of d's schedule. Deliver owns
// the schedule: it reads the recorded attempt count, returns the delay until the next
// attempt with each failure (NextRetryDelay) and ends the schedule with a non-retryable
// error. So the policy has no attempt cap (a try that never reached the receiver costs no
// attempt); the schedule's span bounds it, and its intervals apply only when Deliver could
// not answer (a crashed worker, an unreachable database).
func (r *eventRun) scheduleOptions(d *target) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout:    r.in.Schedule.ActivityTimeout(),
		ScheduleToCloseTimeout: r.in.Schedule.Span(),
		HeartbeatTimeout:       delivery.HeartbeatTimeout,
		WaitForCancellation:    true,
		// Temporal retries the activity without changing its summary; the UI shows the
		// current try and the last failure, which says which attempt is due when.
		Summary: fmt.Sprintf("POST %s (the schedule, %d attempts)", d.URL, r.in.Schedule.MaxAttempts()),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeDeliveryFailed},
		},
	}
}

// isFinal reports whether Deliver ended the delivery itself (refused, or schedule done).
func isFinal(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeDeliveryFailed
}

// finish records how d's run ended. A run that ended other than by Deliver's own decision
// (the schedule's span ran out through an outage, say) marks the delivery failed in the
// database, so that no delivery stays "retrying" for ever.
func (r *eventRun) finish(ctx workflow.Context, d *target, res activities.DeliverResult, err error) {
	if err == nil {
		d.Status, d.err = res.Status, res.Skipped
		return
	}
	d.Status, d.err = delivery.StatusFailed, err.Error()
	if isFinal(err) {
		return // recorded by the activity
	}
	failCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	reason := "gave up: " + err.Error()
	if ferr := workflow.ExecuteLocalActivity(failCtx, acts.FailDelivery, activities.FailDeliveryInput{DeliveryID: d.DeliveryID, Reason: reason}).Get(ctx, nil); ferr != nil {
		workflow.GetLogger(ctx).Error("mark delivery failed", "delivery_id", d.DeliveryID, "error", ferr)
	}
}

// retry hands a retry request to its delivery's run, or starts a run of a finished
// delivery with a manual attempt; Deliver decides whether it is sent.
func (r *eventRun) retry(ctx workflow.Context, req delivery.RetryRequest) {
	d := r.byID[req.DeliveryID]
	switch {
	case d == nil:
		workflow.GetLogger(ctx).Warn("retry request for a delivery of another event", "delivery_id", req.DeliveryID)
	case d.running:
		d.retry.SendAsync(req) // a request already waiting covers this one
	default:
		r.start(ctx, d, activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: delivery.TriggerManual, Force: req.Force})
	}
}

// statuses is the sorted set of the deliveries' statuses.
func (r *eventRun) statuses() []string {
	statuses := []string{}
	for _, d := range r.deliveries {
		if !slices.Contains(statuses, d.Status) {
			statuses = append(statuses, d.Status)
		}
	}
	slices.Sort(statuses)
	return statuses
}

func (r *eventRun) statusesChanged() bool {
	return !slices.Equal(r.statuses(), r.upserted)
}

// upsertStatuses keeps the DeliveryStatus search attribute equal to the set of the
// deliveries' statuses.
func (r *eventRun) upsertStatuses(ctx workflow.Context) error {
	statuses := r.statuses()
	if slices.Equal(statuses, r.upserted) {
		return nil
	}
	r.upserted = statuses
	if err := workflow.UpsertTypedSearchAttributes(ctx, delivery.DeliveryStatusKey.ValueSet(statuses)); err != nil {
		return fmt.Errorf("upsert delivery statuses: %w", err)
	}
	return nil
}

func (r *eventRun) result() delivery.EventResult {
	res := delivery.EventResult{Deliveries: []delivery.Result{}}
	for _, d := range r.deliveries {
		res.Deliveries = append(res.Deliveries, delivery.Result{DeliveryID: d.DeliveryID, WebhookID: d.WebhookID, Status: d.Status, Error: d.err})
	}
	return res
}
