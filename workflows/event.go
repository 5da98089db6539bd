// Package workflows holds surveyhooks' Temporal workflows: one Event workflow per published
// event delivers it to every subscribed webhook on the retry schedule and takes manual retry
// requests as signals.
package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/store"
)

// DefaultTaskQueue is the task queue surveyhooks' workers poll.
const DefaultTaskQueue = "surveyhooks"

// RetrySignal is the signal that asks for a delivery to be attempted now; its payload is
// a RetryRequest.
const RetrySignal = "retry"

// EventInput starts an Event workflow.
type EventInput struct {
	EventID   string
	EventType string
	SurveyID  string
	// MaxAttempts is the schedule's length (retry delays + 1): the Deliver activity's
	// RetryPolicy.MaximumAttempts. Deliver itself ends the schedule from the recorded
	// attempt count; when Temporal's attempts run out first (tries that never reached the
	// receiver or were never recorded also count for Temporal), the workflow starts the
	// activity again.
	MaxAttempts int
	// AttemptTimeout bounds one attempt; the activity's StartToClose adds room to record it.
	AttemptTimeout time.Duration
	// LocalFirstAttempt makes the first attempt of each run of the schedule a local
	// activity, inside the workflow task that asks for it, and sets the search attributes
	// once, after those attempts. Every start sets it; histories recorded before it existed
	// lack it, and replay the path they were recorded with.
	LocalFirstAttempt bool
	// FannedOut says that Deliveries are the event's deliveries, made when it was published
	// (store.PublishEvent): the workflow starts their attempts at once. Otherwise (a start
	// by the dispatcher, a retry of a closed event's delivery, histories from before) it
	// runs the FanOut activity first, which makes the deliveries or lists the ones made.
	FannedOut  bool
	Deliveries []store.Subscription `json:",omitempty"`
}

// RetryRequest is RetrySignal's payload.
type RetryRequest struct {
	DeliveryID uuid.UUID
	// Force re-sends a delivery that was delivered.
	Force bool
}

// EventResult is how every delivery of the event ended.
type EventResult struct {
	Deliveries []DeliveryResult
}

// DeliveryResult is how one delivery ended.
type DeliveryResult struct {
	DeliveryID uuid.UUID
	WebhookID  uuid.UUID
	Status     string
	Error      string `json:",omitempty"`
}

// ID is the workflow id of an event: publishing the same event id again finds the same
// workflow.
func ID(eventID string) string {
	return "event-" + eventID
}

// StartOptions are the options an event's workflow starts with: its id, task queue, the
// search attributes known before it runs and a summary for the Web UI.
func StartOptions(in EventInput, taskQueue string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:        ID(in.EventID),
		TaskQueue: taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SurveyIDKey.ValueSet(in.SurveyID),
			EventTypeKey.ValueSet(in.EventType),
			DeliveryStatusKey.ValueSet([]string{store.StatusPending}),
		),
		StaticSummary: fmt.Sprintf("%s for survey %s", in.EventType, in.SurveyID),
		StaticDetails: fmt.Sprintf("Event `%s` (%s) of survey `%s`: one Deliver activity per subscribed webhook, "+
			"retried on the schedule (%d attempts). Signal `%s` with {\"DeliveryID\": \"...\"} to retry a delivery now.",
			in.EventID, in.EventType, in.SurveyID, in.MaxAttempts, RetrySignal),
	}
}

// testOnceChange is the change id of "a later run of a test event sends no test attempt".
const testOnceChange = "test-attempt-first-run-only"

// acts is only a method set: workflows name activities through it, the worker runs them.
var acts *activities.Activities

// Event delivers one event to each of its webhooks in parallel, each on the retry
// schedule, and re-attempts a delivery at once when a RetrySignal names it. It returns when
// every delivery has ended and no retry request is pending.
func Event(ctx workflow.Context, in EventInput) (EventResult, error) {
	run := &eventRun{in: in, byID: map[uuid.UUID]*delivery{}}
	retries := workflow.GetSignalChannel(ctx, RetrySignal)

	fan := activities.FanOutResult{Deliveries: in.Deliveries}
	if !in.FannedOut {
		fanOutCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			// Keep trying through a database outage: the event must not be dropped.
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
		})
		if err := workflow.ExecuteLocalActivity(fanOutCtx, acts.FanOut, activities.FanOutInput{EventID: in.EventID}).Get(ctx, &fan); err != nil {
			return EventResult{}, fmt.Errorf("fan out: %w", err)
		}
	}
	webhookIDs := make([]string, 0, len(fan.Deliveries))
	for _, sub := range fan.Deliveries {
		d := &delivery{Subscription: sub, retry: workflow.NewBufferedChannel(ctx, 1)}
		run.deliveries = append(run.deliveries, d)
		run.byID[sub.DeliveryID] = d
		webhookIDs = append(webhookIDs, sub.WebhookID.String())
	}
	if !in.LocalFirstAttempt {
		if err := workflow.UpsertTypedSearchAttributes(ctx, WebhookIDsKey.ValueSet(webhookIDs)); err != nil {
			return EventResult{}, fmt.Errorf("upsert webhook ids: %w", err)
		}
		run.announced = true
	}

	for _, d := range run.deliveries {
		switch {
		case in.EventType == eventtype.WebhookTest:
			// The test attempt belongs to the first run. A later run is a retry of a closed
			// test: the retry signal makes its one attempt. Runs started before this rule
			// (no version marker) keep sending the test again, so that they replay.
			if d.Status == store.StatusPending ||
				workflow.GetVersion(ctx, testOnceChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				run.start(ctx, d, activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: store.TriggerTest, Single: true, Force: true})
			}
		case d.Status == store.StatusPending || d.Status == store.StatusRetrying:
			// A later run of the workflow (after a manual retry of a closed one) resumes what
			// is unfinished and leaves finished deliveries alone.
			run.start(ctx, d, activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: store.TriggerAuto})
		}
	}
	if in.LocalFirstAttempt {
		// The first attempts run inside this workflow task: once they are done, one upsert
		// sets the webhook ids and the statuses they left (each upsert is a visibility write).
		if err := workflow.Await(ctx, func() bool { return run.firstAttempts == 0 }); err != nil {
			return EventResult{}, fmt.Errorf("await first attempts: %w", err)
		}
		run.announced = true
		if err := run.upsertStatuses(ctx, WebhookIDsKey.ValueSet(webhookIDs)); err != nil {
			return EventResult{}, err
		}
	} else if err := run.upsertStatuses(ctx); err != nil {
		return EventResult{}, err
	}

	for {
		var req RetryRequest
		if run.running == 0 {
			if !retries.ReceiveAsync(&req) {
				break
			}
			run.retry(ctx, req)
			continue
		}
		if err := workflow.Await(ctx, func() bool { return run.running == 0 || retries.Len() > 0 }); err != nil {
			return EventResult{}, fmt.Errorf("await deliveries: %w", err)
		}
		for retries.ReceiveAsync(&req) {
			run.retry(ctx, req)
		}
	}
	return run.result(), nil
}

// delivery is one delivery's state inside the workflow.
type delivery struct {
	store.Subscription
	running bool
	err     string
	// retry hands a retry request to the delivery's running goroutine.
	retry workflow.Channel
}

// eventRun is the state of one Event workflow run.
type eventRun struct {
	in         EventInput
	deliveries []*delivery // in fan-out order: iteration must be deterministic
	byID       map[uuid.UUID]*delivery
	running    int
	statuses   []string // last upserted DeliveryStatus
	// firstAttempts counts the local first attempts still running.
	firstAttempts int
	// announced is set once the search attributes may be upserted: with local first
	// attempts, after those attempts (one upsert instead of several).
	announced bool
}

// start runs attempts of d in a goroutine until the run ends; a retry request received
// meanwhile cancels the pending attempt (typically waiting out a retry delay) and starts a
// manual one, after which the schedule goes on.
func (r *eventRun) start(ctx workflow.Context, d *delivery, in activities.DeliverInput) {
	r.running++
	d.running = true
	if d.Status != store.StatusRetrying {
		d.Status = store.StatusPending
	}
	local := r.in.LocalFirstAttempt
	if local {
		r.firstAttempts++
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() {
			d.running = false
			r.running--
			if err := r.upsertStatuses(ctx); err != nil {
				workflow.GetLogger(ctx).Error("upsert delivery statuses", "error", err)
			}
			// A retry request that reached d.retry as its last attempt ended (in the same
			// workflow task, or while the delivery was being marked failed) is handled as
			// one for a finished delivery, never dropped.
			var late RetryRequest
			if d.retry.ReceiveAsync(&late) {
				r.retry(ctx, late)
			}
		}()
		r.attempt(ctx, d, in, local)
	})
}

// attempt makes d's attempts: when local, the first one as a local activity and, while it
// fails, the schedule's next ones as a Deliver activity that Temporal retries, after a
// timer for the first delay. Otherwise all of them as that activity.
func (r *eventRun) attempt(ctx workflow.Context, d *delivery, in activities.DeliverInput, local bool) {
	restarts := 0
	counted := local // in r.firstAttempts until the first local attempt ends
	var wait time.Duration
	for {
		if local {
			res, err := r.attemptLocally(ctx, d, in)
			if counted {
				counted = false
				r.firstAttempts--
			}
			// A retry request that came during the attempt waits in d.retry: the wait for
			// the next attempt takes it, or, if the delivery ended, start's defer does.
			if err == nil || isFinal(err) {
				r.finish(ctx, d, res, err)
				return
			}
			local = false
			d.Status = store.StatusRetrying
			in = activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: store.TriggerAuto}
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeAttemptFailed {
				d.AttemptCount++
				wait = appErr.NextRetryDelay()
			}
			// Otherwise (database down, attempt timed out) the activity starts at once and
			// its RetryPolicy spaces the tries.
			continue
		}
		if wait > 0 {
			req, err := r.waitForNextAttempt(ctx, d, wait)
			wait = 0
			if err != nil {
				r.finish(ctx, d, activities.DeliverResult{}, err)
				return
			}
			if req != nil {
				in = activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: store.TriggerManual, Force: req.Force}
				local = r.in.LocalFirstAttempt
				continue
			}
		}

		attemptCtx, cancel := workflow.WithCancel(ctx)
		attemptCtx = workflow.WithActivityOptions(attemptCtx, r.activityOptions(d, in))
		future := workflow.ExecuteActivity(attemptCtx, acts.Deliver, in)

		var req *RetryRequest
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(future, func(workflow.Future) {})
		sel.AddReceive(d.retry, func(c workflow.ReceiveChannel, _ bool) {
			var got RetryRequest
			c.Receive(ctx, &got)
			req = &got
		})
		sel.Select(ctx)
		if req != nil {
			cancel() // WaitForCancellation: Get returns once the pending attempt is gone
		}
		var res activities.DeliverResult
		err := future.Get(ctx, &res)
		cancel()
		if req != nil && wantsAttempt(*req, res, err) {
			in = activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: store.TriggerManual, Force: req.Force}
			local = r.in.LocalFirstAttempt
			continue
		}
		if req == nil && err != nil && !isFinal(err) && restarts < maxRestarts {
			// Temporal's attempts ran out before the schedule's: some tries never
			// reached the receiver or were never recorded (database down, worker
			// killed). Deliver knows the real count; start it again after a pause. A
			// retry request arriving meanwhile waits in d.retry for the next round.
			restarts++
			if err := workflow.Sleep(ctx, restartDelay); err != nil {
				r.finish(ctx, d, res, err)
				return
			}
			continue
		}
		r.finish(ctx, d, res, err)
		return
	}
}

// attemptLocally makes one attempt of d as a local activity: no activity task to
// schedule, poll and complete, so the first POST leaves within the workflow task that
// started the event. Its failure is left to the caller, never retried here.
func (r *eventRun) attemptLocally(ctx workflow.Context, d *delivery, in activities.DeliverInput) (activities.DeliverResult, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: r.in.AttemptTimeout + 30*time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
		Summary:             r.activityOptions(d, in).Summary,
	})
	var res activities.DeliverResult
	err := workflow.ExecuteLocalActivity(ctx, acts.Deliver, in).Get(ctx, &res)
	return res, err
}

// waitForNextAttempt waits out the delay before the schedule's next attempt, as a timer the
// Web UI shows, and returns early with a retry request that arrives meanwhile.
func (r *eventRun) waitForNextAttempt(ctx workflow.Context, d *delivery, wait time.Duration) (*RetryRequest, error) {
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimerWithOptions(timerCtx, wait, workflow.TimerOptions{
		Summary: fmt.Sprintf("next attempt (%d of %d) of POST %s", d.AttemptCount+1, r.in.MaxAttempts, d.URL),
	})
	var req *RetryRequest
	var err error
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(f workflow.Future) { err = f.Get(ctx, nil) })
	sel.AddReceive(d.retry, func(c workflow.ReceiveChannel, _ bool) {
		var got RetryRequest
		c.Receive(ctx, &got)
		req = &got
	})
	sel.Select(ctx)
	return req, err
}

// wantsAttempt reports whether a retry request asks for another attempt after one that
// ended with res and err: anything but a delivery that got through, unless forced.
func wantsAttempt(req RetryRequest, res activities.DeliverResult, err error) bool {
	return !(err == nil && res.Status == store.StatusDelivered && !req.Force)
}

// A delivery whose RetryPolicy ran out before its schedule is started again after
// restartDelay, at most maxRestarts times (about as long as the 7-hour schedule at the
// policy's 10-minute cap); then it is marked failed.
const (
	maxRestarts  = 10
	restartDelay = time.Minute
)

// isFinal reports whether Deliver ended the delivery itself (refused, or schedule done).
func isFinal(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeDeliveryFailed
}

// finish records how d's run ended. An activity that failed other than by its own
// decision (timed out after a worker crash, say) leaves the delivery marked failed in the
// database, so that no delivery stays "retrying" forever.
func (r *eventRun) finish(ctx workflow.Context, d *delivery, res activities.DeliverResult, err error) {
	if err == nil {
		d.Status, d.err = res.Status, res.Skipped
		return
	}
	d.Status, d.err = store.StatusFailed, err.Error()
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

// retry handles a retry request: a running delivery gets it in its goroutine, a finished
// one starts a single manual attempt.
func (r *eventRun) retry(ctx workflow.Context, req RetryRequest) {
	d := r.byID[req.DeliveryID]
	if d == nil {
		workflow.GetLogger(ctx).Warn("retry request for a delivery of another event", "delivery_id", req.DeliveryID)
		return
	}
	if d.running {
		// A request already waiting covers this one.
		d.retry.SendAsync(req)
		return
	}
	if d.Status == store.StatusDelivered && !req.Force {
		return
	}
	r.start(ctx, d, activities.DeliverInput{DeliveryID: d.DeliveryID, Trigger: store.TriggerManual, Single: true, Force: req.Force})
	if err := r.upsertStatuses(ctx); err != nil {
		workflow.GetLogger(ctx).Error("upsert delivery statuses", "error", err)
	}
}

func (r *eventRun) activityOptions(d *delivery, in activities.DeliverInput) workflow.ActivityOptions {
	// Temporal retries the activity without changing its summary: name the attempts it
	// covers; the UI shows the current attempt number of a pending activity.
	summary := fmt.Sprintf("POST %s (attempts %d-%d of the schedule)", d.URL, d.AttemptCount+1, r.in.MaxAttempts)
	switch in.Trigger {
	case store.TriggerManual:
		summary = fmt.Sprintf("POST %s (manual retry)", d.URL)
	case store.TriggerTest:
		summary = fmt.Sprintf("POST %s (test)", d.URL)
	}
	return workflow.ActivityOptions{
		StartToCloseTimeout: r.in.AttemptTimeout + 30*time.Second,
		WaitForCancellation: true,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			// Deliver returns the schedule's delay with each failure (NextRetryDelay); these
			// apply only when it could not (a crashed worker, an unreachable database).
			InitialInterval:        10 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Minute,
			MaximumAttempts:        int32(r.in.MaxAttempts),
			NonRetryableErrorTypes: []string{activities.ErrTypeDeliveryFailed},
		},
	}
}

// upsertStatuses keeps the DeliveryStatus search attribute equal to the set of the
// deliveries' statuses, setting the other updates given in the same upsert.
func (r *eventRun) upsertStatuses(ctx workflow.Context, others ...temporal.SearchAttributeUpdate) error {
	if !r.announced {
		return nil
	}
	var statuses []string
	for _, d := range r.deliveries {
		if !slices.Contains(statuses, d.Status) {
			statuses = append(statuses, d.Status)
		}
	}
	slices.Sort(statuses)
	if slices.Equal(statuses, r.statuses) && len(others) == 0 {
		return nil
	}
	r.statuses = statuses
	update := DeliveryStatusKey.ValueSet(statuses)
	if len(statuses) == 0 {
		update = DeliveryStatusKey.ValueUnset()
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, append(others, update)...); err != nil {
		return fmt.Errorf("upsert delivery statuses: %w", err)
	}
	return nil
}

func (r *eventRun) result() EventResult {
	res := EventResult{Deliveries: []DeliveryResult{}}
	for _, d := range r.deliveries {
		res.Deliveries = append(res.Deliveries, DeliveryResult{DeliveryID: d.DeliveryID, WebhookID: d.WebhookID, Status: d.Status, Error: d.err})
	}
	return res
}
