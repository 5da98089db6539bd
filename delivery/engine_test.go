package delivery_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
)

// TestWorkflowsAreFoundByAccount publishes events of two accounts: an operator finds an
// account's event workflows in the Temporal UI by the AccountId search attribute.
func TestWorkflowsAreFoundByAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, ev := range []delivery.NewEvent{
		{ID: "acme-1", AccountID: "acme", Type: "survey.response.completed", SurveyID: "survey-1", Data: []byte(`{}`)},
		{ID: "globex-1", AccountID: "globex", Type: "survey.response.completed", SurveyID: "survey-1", Data: []byte(`{}`)},
	} {
		p, err := b.svc.Publish(t.Context(), ev)
		require.NoError(t, err)
		require.True(t, p.Dispatched)
	}
	require.Eventually(t, func() bool {
		resp, err := b.te.Client.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: b.te.Namespace, Query: `AccountId = "acme"`,
		})
		require.NoError(t, err)
		return len(resp.Executions) == 1 && resp.Executions[0].Execution.WorkflowId == delivery.WorkflowID("acme-1")
	}, 10*time.Second, 50*time.Millisecond)
}

// TestOutboxNeverRunsAClosedEventAgain: a publish whose start reached Temporal but whose
// answer did not come back leaves the event to the outbox; if the run has closed by then,
// the outbox's start finds it and starts nothing. The event runs once.
func TestOutboxNeverRunsAClosedEventAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startWorker(t)
	p, err := b.svc.Publish(t.Context(), delivery.NewEvent{ID: "closed-1", AccountID: store.DefaultAccount,
		Type: "survey.response.completed", SurveyID: "survey-1", Data: []byte(`{}`)})
	require.NoError(t, err)
	require.True(t, p.Dispatched)
	b.wait(t, "closed-1")

	// As if the start's answer had been lost: the event is still in the outbox.
	_, err = b.st.DB().ExecContext(t.Context(), `UPDATE events SET dispatched_at = NULL, created_at = now() - interval '1 hour'`)
	require.NoError(t, err)
	outbox := delivery.New(b.st, b.te.Client, delivery.Config{TaskQueue: b.te.TaskQueue, Schedule: schedule,
		Outbox: delivery.OutboxConfig{Grace: time.Millisecond}}, nil)
	n, err := outbox.DispatchPending(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, n, "the outbox takes the event, and marks it dispatched")

	resp, err := b.te.Client.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: b.te.Namespace, Query: `WorkflowId = "` + delivery.WorkflowID("closed-1") + `"`,
	})
	require.NoError(t, err)
	require.Len(t, resp.Executions, 1, "one run of the event")
	require.Equal(t, int32(1), b.requests.Load(), "one request to the receiver")
}
