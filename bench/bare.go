package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/signature"
)

// Names the bare workflow and its activity are registered under, beside surveyhooks' own.
const (
	bareWorkflowName = "bench.Bare"
	bareActivityName = "bench.Post"
)

// bareInput is everything the bare workflow needs: no database behind it.
type bareInput struct {
	EventID        string
	EventType      string
	Body           []byte
	Targets        []bareTarget
	Delays         []time.Duration
	AttemptTimeout time.Duration
	Local          bool
	// SearchAttributes makes the workflow keep ours' search attributes as ours does: the
	// webhook ids and the delivery statuses, upserted as the Event workflow upserts them.
	SearchAttributes bool
}

type bareTarget struct {
	URL    string
	Secret string
}

// bareAttempt is one delivery of the bare workflow.
type bareAttempt struct {
	DeliveryID string
	EventType  string
	URL        string
	Secret     string
	Body       []byte
	Delays     []time.Duration
}

// bareWorkflow is the least a Temporal webhook sender does: one HTTP activity per webhook,
// in parallel, on the retry schedule, and nothing else (no search attributes, no signals).
func bareWorkflow(ctx workflow.Context, in bareInput) error {
	retry := &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    int32(len(in.Delays) + 1),
	}
	if len(in.Delays) > 0 {
		retry.InitialInterval = in.Delays[0]
	}
	timeout := in.AttemptTimeout + 30*time.Second
	ids := make([]string, len(in.Targets))
	for i := range in.Targets {
		ids[i] = fmt.Sprintf("bench-hook-%d", i)
	}
	if in.SearchAttributes && !in.Local {
		// As the Event workflow without local first attempts: the webhook ids once it knows
		// its deliveries (the status is pending from the start).
		if err := workflow.UpsertTypedSearchAttributes(ctx, delivery.WebhookIDsKey.ValueSet(ids)); err != nil {
			return err
		}
	}
	futures := make([]workflow.Future, len(in.Targets))
	for i, t := range in.Targets {
		a := bareAttempt{
			DeliveryID: fmt.Sprintf("%s-%d", in.EventID, i),
			EventType:  in.EventType,
			URL:        t.URL,
			Secret:     t.Secret,
			Body:       in.Body,
			Delays:     in.Delays,
		}
		if in.Local {
			lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: timeout, RetryPolicy: retry})
			futures[i] = workflow.ExecuteLocalActivity(lctx, bareActivityName, a)
		} else {
			opts := workflow.ActivityOptions{StartToCloseTimeout: timeout, RetryPolicy: retry}
			if in.SearchAttributes {
				opts.Summary = fmt.Sprintf("POST %s (attempt 1 of %d)", t.URL, len(in.Delays)+1)
			}
			actx := workflow.WithActivityOptions(ctx, opts)
			futures[i] = workflow.ExecuteActivity(actx, bareActivityName, a)
		}
	}
	status := delivery.StatusDelivered
	for _, f := range futures {
		// A delivery that failed for good is counted by the activity; the others go on.
		if err := f.Get(ctx, nil); err != nil {
			status = delivery.StatusFailed
		}
	}
	switch {
	case in.SearchAttributes && in.Local:
		// As the Event workflow with local first attempts: one upsert after them.
		return workflow.UpsertTypedSearchAttributes(ctx, delivery.WebhookIDsKey.ValueSet(ids),
			delivery.DeliveryStatusKey.ValueSet([]string{status}))
	case in.SearchAttributes:
		return workflow.UpsertTypedSearchAttributes(ctx, delivery.DeliveryStatusKey.ValueSet([]string{status}))
	}
	return nil
}

// bareActivities holds the bare workflow's activity and counts deliveries that failed for
// good.
type bareActivities struct {
	client  *http.Client
	timeout time.Duration
	failed  atomic.Int64
}

// Post signs and POSTs one delivery; a non-2xx answer is retried after the schedule's delay.
func (b *bareActivities) Post(ctx context.Context, a bareAttempt) error {
	status, err := post(ctx, b.client, b.timeout, a.URL, a.Secret, a.DeliveryID, a.EventType, a.Body)
	if err == nil && status >= 200 && status < 300 {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("receiver answered %d", status)
	}
	attempt := int(activity.GetInfo(ctx).Attempt)
	if attempt > len(a.Delays) {
		b.failed.Add(1)
		return temporal.NewNonRetryableApplicationError(err.Error(), "DeliveryFailed", nil)
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), "AttemptFailed",
		temporal.ApplicationErrorOptions{NextRetryDelay: a.Delays[attempt-1]})
}

// post is one signed POST, the same request the Deliver activity sends: both signature
// schemes, the event and delivery headers, the body read back so the connection is reused.
func post(ctx context.Context, c *http.Client, timeout time.Duration, url, secret, deliveryID, eventType string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h := signature.Headers([]string{secret}, deliveryID, time.Now(), body)
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", activities.UserAgent)
	h.Set(signature.HeaderEvent, eventType)
	h.Set(signature.HeaderDelivery, deliveryID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header = h
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}
