package workflows

import (
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
)

// Register adds surveyhooks' workflows and the activities a implements to a worker.
func Register(r worker.Registry, a *activities.Activities) {
	r.RegisterWorkflow(Event)
	r.RegisterActivity(a)
}
