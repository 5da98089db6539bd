package delivery_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/surveyhooks/surveyhooks/delivery"
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
