package retention

import (
	"context"
	"errors"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

const (
	// ScheduleID names the schedule in the namespace: there is one, whatever the number of
	// workers.
	ScheduleID = "surveyhooks-retention"
	// DefaultInterval is how often the schedule runs.
	DefaultInterval = time.Hour
)

// ScheduleOptions describe the schedule EnsureSchedule keeps.
type ScheduleOptions struct {
	// TaskQueue is where the workers that registered Run poll.
	TaskQueue string
	// Input is every run's input.
	Input Input
	// Interval between runs; 0 means DefaultInterval.
	Interval time.Duration
}

// EnsureSchedule creates the retention schedule, or brings an existing one up to date with
// opts. Every worker calls it when it starts: the first creates the schedule, the others
// find it and leave it alone when it already says the same.
func EnsureSchedule(ctx context.Context, c client.Client, opts ScheduleOptions) error {
	if opts.Input.MaxAge <= 0 {
		return fmt.Errorf("retention schedule: retention %s is not positive", opts.Input.MaxAge)
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Input.BatchSize <= 0 {
		opts.Input.BatchSize = DefaultBatchSize
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: opts.Interval}}}
	action := &client.ScheduleWorkflowAction{
		ID:            ScheduleID,
		Workflow:      WorkflowName,
		Args:          []any{opts.Input},
		TaskQueue:     opts.TaskQueue,
		StaticSummary: fmt.Sprintf("Delete delivery history older than %s", opts.Input.MaxAge),
	}
	sc := c.ScheduleClient()
	_, err := sc.Create(ctx, client.ScheduleOptions{
		ID:     ScheduleID,
		Spec:   spec,
		Action: action,
		// A run still going (a large backlog) makes the next one pointless.
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		// After an outage one run catches up; there is no point in running every missed one.
		CatchupWindow: opts.Interval,
		Note:          "Created by surveyhooks worker; SURVEYHOOKS_RETENTION sets the age.",
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create retention schedule: %w", err)
	}
	err = sc.GetHandle(ctx, ScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			current := in.Description.Schedule
			if upToDate(current, spec, action) {
				return nil, temporal.ErrSkipScheduleUpdate
			}
			current.Spec = &spec
			current.Action = action
			return &client.ScheduleUpdate{Schedule: &current}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update retention schedule: %w", err)
	}
	return nil
}

// DeleteSchedule removes the retention schedule, if there is one (SURVEYHOOKS_RETENTION=0
// keeps history forever).
func DeleteSchedule(ctx context.Context, c client.Client) error {
	err := c.ScheduleClient().GetHandle(ctx, ScheduleID).Delete(ctx)
	var notFound *serviceerror.NotFound
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("delete retention schedule: %w", err)
	}
	return nil
}

// upToDate reports whether a described schedule already runs action on spec.
func upToDate(s client.Schedule, spec client.ScheduleSpec, action *client.ScheduleWorkflowAction) bool {
	if s.Spec == nil || len(s.Spec.Intervals) != 1 || len(s.Spec.Calendars) != 0 ||
		s.Spec.Intervals[0] != spec.Intervals[0] {
		return false
	}
	got, ok := s.Action.(*client.ScheduleWorkflowAction)
	if !ok || got.Workflow != action.Workflow || got.TaskQueue != action.TaskQueue ||
		got.ID != action.ID || len(got.Args) != 1 {
		return false
	}
	// Described arguments come back encoded.
	payload, ok := got.Args[0].(*commonpb.Payload)
	if !ok {
		return false
	}
	var in Input
	if err := converter.GetDefaultDataConverter().FromPayload(payload, &in); err != nil {
		return false
	}
	return in == action.Args[0].(Input)
}
