package workflows

import (
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
)

// Register adds surveyhooks' workflows and the activities a implements to a worker, under
// the names the delivery service starts them by.
func Register(r worker.Registry, a *activities.Activities) {
	r.RegisterWorkflowWithOptions(Event, workflow.RegisterOptions{Name: delivery.EventWorkflow})
	r.RegisterActivity(a)
}
