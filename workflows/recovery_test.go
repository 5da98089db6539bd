package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// recoveryEnv runs the recovery workflow with its activities answered by count and batch.
func recoveryEnv(t *testing.T, count int, batch func(delivery.RecoverBatchInput) delivery.RecoverBatchResult) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	workflows.RegisterRecovery(env, delivery.NewRecoverer(nil))
	env.OnActivity("CountRecoverable", mock.Anything, mock.Anything).Return(count, nil)
	env.OnActivity("RecoverBatch", mock.Anything, mock.Anything).Return(
		func(_ context.Context, in delivery.RecoverBatchInput) (delivery.RecoverBatchResult, error) {
			return batch(in), nil
		})
	return env
}

// fullBatches answers n full batches of in.Limit deliveries, then a last one of rest.
func fullBatches(n, rest int) func(delivery.RecoverBatchInput) delivery.RecoverBatchResult {
	calls := 0
	return func(in delivery.RecoverBatchInput) delivery.RecoverBatchResult {
		calls++
		if calls <= n {
			return delivery.RecoverBatchResult{Last: uuid.New(), Retried: in.Limit, More: true}
		}
		return delivery.RecoverBatchResult{Last: uuid.New(), Retried: rest - 1, Skipped: 1}
	}
}

var recoveryInput = delivery.RecoveryInput{
	Filter: store.RecoveryFilter{WebhookID: uuid.New(), Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Statuses: delivery.RecoverableStatuses},
	Rate:   20, Batch: 100,
}

// The recovery keeps to its rate: 100 deliveries at 20 a second take 5 s each, so three
// full batches and a last one of 50 end 15 s after it started; its window ends when it
// started; the counts add up.
func TestRecoveryKeepsItsRate(t *testing.T) {
	t.Parallel()
	var windows []time.Time
	batches := fullBatches(3, 50)
	env := recoveryEnv(t, 350, func(in delivery.RecoverBatchInput) delivery.RecoverBatchResult {
		windows = append(windows, in.Filter.Until)
		return batches(in)
	})
	started := env.Now()
	env.ExecuteWorkflow(workflows.RecoveryName, recoveryInput)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var progress delivery.RecoveryProgress
	require.NoError(t, env.GetWorkflowResult(&progress))
	require.Equal(t, []int{350, 349, 1}, []int{progress.Matched, progress.Retried, progress.Skipped})
	require.True(t, progress.Finished)
	require.Empty(t, progress.Error)
	require.True(t, started.Equal(progress.StartedAt))
	require.True(t, started.Equal(progress.Filter.Until), "the progress names the window the outcomes are counted in")
	require.NotEqual(t, uuid.Nil, progress.Last)
	require.Equal(t, 15*time.Second, env.Now().Sub(started).Round(time.Second))
	require.Len(t, windows, 4)
	for _, until := range windows {
		require.True(t, started.Equal(until), "the window ends when the recovery started: %s, not %s", started, until)
	}
}

// More batches than one run holds continue as new, carrying the progress and the cursor.
func TestRecoveryContinuesAsNew(t *testing.T) {
	t.Parallel()
	env := recoveryEnv(t, 0, fullBatches(1000, 1))
	env.ExecuteWorkflow(workflows.RecoveryName, delivery.RecoveryInput{Filter: recoveryInput.Filter, Rate: 1e6, Batch: 10})
	require.True(t, env.IsWorkflowCompleted())
	var cont *workflow.ContinueAsNewError
	require.ErrorAs(t, env.GetWorkflowError(), &cont)
	var next delivery.RecoveryInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(cont.Input, &next))
	require.Equal(t, 2000, next.Progress.Retried, "200 batches of 10")
	require.False(t, next.Progress.Finished)
	require.Equal(t, next.After, next.Progress.Last)
	require.NotEqual(t, uuid.Nil, next.After)
}

// A cancelled recovery asks for no more retries and keeps its progress queryable.
func TestRecoveryCancelled(t *testing.T) {
	t.Parallel()
	calls := 0
	env := recoveryEnv(t, 1000, func(in delivery.RecoverBatchInput) delivery.RecoverBatchResult {
		calls++
		return delivery.RecoverBatchResult{Last: uuid.New(), Retried: in.Limit, More: true}
	})
	env.RegisterDelayedCallback(env.CancelWorkflow, 12*time.Second)
	env.ExecuteWorkflow(workflows.RecoveryName, recoveryInput)
	require.True(t, env.IsWorkflowCompleted())
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, 3, calls, "batches at 0, 5 and 10 s; cancelled at 12 s")
	value, err := env.QueryWorkflow(delivery.RecoveryProgressQuery)
	require.NoError(t, err)
	var progress delivery.RecoveryProgress
	require.NoError(t, value.Get(&progress))
	require.Equal(t, []int{1000, 300}, []int{progress.Matched, progress.Retried})
	require.True(t, progress.Finished)
	require.Equal(t, "cancelled", progress.Error)
}
