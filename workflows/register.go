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

// RegisterRecovery adds the recovery workflow and its activities, which retry through the
// delivery service, to a worker.
func RegisterRecovery(r worker.Registry, rec *delivery.Recoverer) {
	r.RegisterWorkflowWithOptions(Recovery, workflow.RegisterOptions{Name: RecoveryName})
	r.RegisterActivity(rec)
}
