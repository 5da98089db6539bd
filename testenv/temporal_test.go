package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// Double runs one activity.
func Double(ctx workflow.Context, n int) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out int
	err := workflow.ExecuteActivity(ctx, Twice, n).Get(ctx, &out)
	return out, err
}

// Twice is Double's activity.
func Twice(_ context.Context, n int) (int, error) { return 2 * n, nil }

// Tag upserts the SurveyId search attribute.
func Tag(ctx workflow.Context, surveyID string) error {
	return workflow.UpsertTypedSearchAttributes(ctx, delivery.SurveyIDKey.ValueSet(surveyID))
}

func TestTemporalRunsWorkflowOnWorker(t *testing.T) {
	t.Parallel()
	env := testenv.Temporal(t)
	require.NotEmpty(t, env.HostPort)
	env.StartWorker(t, func(r worker.Registry) {
		r.RegisterWorkflow(Double)
		r.RegisterActivity(Twice)
	}, func(o *worker.Options) { o.MaxConcurrentActivityExecutionSize = 1 })

	run, err := env.Client.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{TaskQueue: env.TaskQueue}, Double, 21)
	require.NoError(t, err)
	var got int
	require.NoError(t, run.Get(t.Context(), &got))
	require.Equal(t, 42, got)
}

func TestTemporalFindsWorkflowBySearchAttribute(t *testing.T) {
	t.Parallel()
	env := testenv.Temporal(t)
	env.StartWorker(t, func(r worker.Registry) { r.RegisterWorkflow(Tag) })

	run, err := env.Client.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{TaskQueue: env.TaskQueue}, Tag, "survey-x")
	require.NoError(t, err)
	require.NoError(t, run.Get(t.Context(), nil))
	other, err := env.Client.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{
		TaskQueue:             env.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(delivery.SurveyIDKey.ValueSet("survey-y")),
	}, Tag, "survey-y")
	require.NoError(t, err)
	require.NoError(t, other.Get(t.Context(), nil))

	require.Eventually(t, func() bool {
		resp, err := env.Client.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: env.Namespace,
			Query:     `SurveyId = "survey-x"`,
		})
		return err == nil && len(resp.GetExecutions()) == 1 && resp.GetExecutions()[0].GetExecution().GetWorkflowId() == run.GetID()
	}, 10*time.Second, 20*time.Millisecond)
}

func TestTemporalTaskQueuesAreUnique(t *testing.T) {
	t.Parallel()
	a, b := testenv.Temporal(t), testenv.Temporal(t)
	require.NotEqual(t, a.TaskQueue, b.TaskQueue)
	require.Contains(t, a.TaskQueue, "TestTemporalTaskQueuesAreUnique")
}
