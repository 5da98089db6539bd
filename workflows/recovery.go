package workflows

import (
	"errors"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/surveyhooks/surveyhooks/delivery"
)

// recoverer is only a method set: Recovery names its activities through it.
var recoverer *delivery.Recoverer

// recoveryBatchesPerRun bounds one run's history; the recovery continues as new after it,
// so that it has no cap on how many deliveries it handles.
const recoveryBatchesPerRun = 200

// Recovery asks for the retry of every delivery its filter picks, a batch at a time, no
// faster than in.Rate a second, and answers its progress to RecoveryProgressQuery. Its
// filter's window ends when it starts, unless the request named an end. It walks the
// deliveries in id order and never goes back, so a delivery whose retry fails again is not
// picked twice. Cancelled, it stops asking for retries; its progress stays queryable.
func Recovery(ctx workflow.Context, in delivery.RecoveryInput) (delivery.RecoveryProgress, error) {
	progress := in.Progress
	if err := workflow.SetQueryHandler(ctx, delivery.RecoveryProgressQuery, func() (delivery.RecoveryProgress, error) {
		return progress, nil
	}); err != nil {
		return progress, err
	}
	if in.Filter.Until.IsZero() {
		in.Filter.Until = workflow.Now(ctx)
	}
	if progress.StartedAt.IsZero() {
		progress.StartedAt, progress.Filter = workflow.Now(ctx), in.Filter
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
	})
	stop := func(err error) (delivery.RecoveryProgress, error) {
		progress.Finished = true
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) || ctx.Err() != nil {
			progress.Error = "cancelled"
			return progress, temporal.NewCanceledError()
		}
		progress.Error = err.Error()
		return progress, err
	}
	if in.After == uuid.Nil && progress.Matched == 0 {
		if err := workflow.ExecuteActivity(ctx, recoverer.CountRecoverable, in.Filter).Get(ctx, &progress.Matched); err != nil {
			return stop(err)
		}
	}
	for range recoveryBatchesPerRun {
		began := workflow.Now(ctx)
		var res delivery.RecoverBatchResult
		err := workflow.ExecuteActivity(ctx, recoverer.RecoverBatch,
			delivery.RecoverBatchInput{Filter: in.Filter, After: in.After, Limit: in.Batch}).Get(ctx, &res)
		progress.Retried += res.Retried
		progress.Skipped += res.Skipped
		in.After, progress.Last = res.Last, res.Last
		if err != nil {
			return stop(err)
		}
		if !res.More {
			progress.Finished = true
			return progress, nil
		}
		pace := time.Duration(float64(res.Retried+res.Skipped) / in.Rate * float64(time.Second))
		if wait := pace - workflow.Now(ctx).Sub(began); wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return stop(err)
			}
		}
	}
	in.Progress = progress
	return progress, workflow.NewContinueAsNewError(ctx, RecoveryName, in)
}

// RecoveryName is the name the recovery workflow is registered and continued under.
const RecoveryName = delivery.RecoveryWorkflow
