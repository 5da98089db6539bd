package delivery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// The contract between the service and the Event workflow: its name, its task queue, its
// input and result, and the signal that asks for a retry. The workflow (package workflows)
// implements it; only this package starts, signals and waits on it.

// EventWorkflow is the name the Event workflow is registered under.
const EventWorkflow = "Event"

// DefaultTaskQueue is the task queue surveyhooks' workers poll.
const DefaultTaskQueue = "surveyhooks"

// RetrySignal asks an event's workflow to attempt one of its deliveries now; its payload
// is a RetryRequest.
const RetrySignal = "retry"

// EventInput starts an event's workflow.
type EventInput struct {
	EventID   string
	AccountID string
	EventType string
	SurveyID  string
	// Trigger is the trigger of each delivery's first attempt: auto, or test for the
	// webhook test endpoint's event.
	Trigger string
	// Schedule is the retry schedule the deliveries' attempts run under.
	Schedule Schedule
	// Deliveries are the event's deliveries; the unfinished ones (pending or retrying) run
	// through the schedule, the finished ones only on a RetryRequest.
	Deliveries []Target
}

// Target is one delivery as the workflow sees it: never a secret, never the body.
type Target struct {
	DeliveryID uuid.UUID
	WebhookID  uuid.UUID
	URL        string
	Status     string
}

// Unfinished reports whether the delivery still has attempts to make on its schedule.
func (t Target) Unfinished() bool {
	return t.Status == StatusPending || t.Status == StatusRetrying
}

// RetryRequest is RetrySignal's payload.
type RetryRequest struct {
	DeliveryID uuid.UUID
	// Force re-sends a delivery that was delivered.
	Force bool
}

// EventResult is how every delivery of the event ended.
type EventResult struct {
	Deliveries []Result
}

// Result is how one delivery ended.
type Result struct {
	DeliveryID uuid.UUID
	WebhookID  uuid.UUID
	Status     string
	Error      string `json:",omitempty"`
}

// WorkflowID is the workflow id of an event: publishing the same event id again finds the
// same workflow.
func WorkflowID(eventID string) string {
	return "event-" + eventID
}

// Search attributes that let a person find deliveries in the Temporal Web UI, for example
// every event of a survey with a failed delivery:
//
//	SurveyId = "survey-1" AND DeliveryStatus = "failed"
var (
	// AccountIDKey holds the account the event belongs to.
	AccountIDKey = temporal.NewSearchAttributeKeyKeyword("AccountId")
	// SurveyIDKey holds the survey the event belongs to.
	SurveyIDKey = temporal.NewSearchAttributeKeyKeyword("SurveyId")
	// EventTypeKey holds the event type, e.g. survey.response.completed.
	EventTypeKey = temporal.NewSearchAttributeKeyKeyword("EventType")
	// WebhookIDsKey lists the webhooks the event is delivered to.
	WebhookIDsKey = temporal.NewSearchAttributeKeyKeywordList("WebhookIds")
	// DeliveryStatusKey lists the distinct statuses of the event's deliveries, so that
	// `DeliveryStatus = "failed"` matches every event with at least one failed delivery.
	DeliveryStatusKey = temporal.NewSearchAttributeKeyKeywordList("DeliveryStatus")
)

// SearchAttributes returns the custom search attributes surveyhooks registers in its
// Temporal namespace, by name and type.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		AccountIDKey.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SurveyIDKey.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		EventTypeKey.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		WebhookIDsKey.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		DeliveryStatusKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	}
}

// RegisterSearchAttributes adds the search attributes of SearchAttributes that the
// namespace lacks, and returns once a visibility query can name them. One registered with
// another type is an error the server cannot fix.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range SearchAttributes() {
		got, ok := resp.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return fmt.Errorf("search attribute %s is registered as %s, want %s", name, got, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("add search attributes %v: %w", slices.Sorted(maps.Keys(missing)), err)
	}
	return waitSearchAttributes(ctx, c, namespace, slices.Sorted(maps.Keys(missing)))
}

// waitSearchAttributes returns once a visibility query may name every attribute of names:
// they are stored at once, but the services read them from a namespace cache that
// refreshes every couple of seconds, and a query naming them fails until the frontend's
// cache has them.
func waitSearchAttributes(ctx context.Context, c client.Client, namespace string, names []string) error {
	terms := make([]string, len(names))
	for i, name := range names {
		terms[i] = name + " IS NULL"
	}
	query := strings.Join(terms, " AND ")
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: query})
		var invalid *serviceerror.InvalidArgument
		if err == nil {
			return nil
		} else if !errors.As(err, &invalid) {
			return fmt.Errorf("query search attributes: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for search attributes %v: %w (last error: %v)", names, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// StartOptions are the options an event's workflow starts with: its id, task queue, the
// search attributes known before it runs and a summary for the Web UI.
func StartOptions(in EventInput, taskQueue string) client.StartWorkflowOptions {
	webhookIDs := make([]string, 0, len(in.Deliveries))
	statuses := []string{}
	for _, t := range in.Deliveries {
		webhookIDs = append(webhookIDs, t.WebhookID.String())
		if !slices.Contains(statuses, t.Status) {
			statuses = append(statuses, t.Status)
		}
	}
	slices.Sort(statuses)
	attrs := []temporal.SearchAttributeUpdate{
		AccountIDKey.ValueSet(in.AccountID),
		SurveyIDKey.ValueSet(in.SurveyID),
		EventTypeKey.ValueSet(in.EventType),
		WebhookIDsKey.ValueSet(webhookIDs),
	}
	if len(statuses) > 0 {
		attrs = append(attrs, DeliveryStatusKey.ValueSet(statuses))
	}
	return client.StartWorkflowOptions{
		ID:                    WorkflowID(in.EventID),
		TaskQueue:             taskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
		StaticSummary:         fmt.Sprintf("%s for survey %s", in.EventType, in.SurveyID),
		StaticDetails: fmt.Sprintf("Event `%s` (%s) of survey `%s`: one Deliver activity per webhook, "+
			"retried on the schedule (%d attempts). Signal `%s` with {\"DeliveryID\": \"...\"} to retry a delivery now.",
			in.EventID, in.EventType, in.SurveyID, in.Schedule.MaxAttempts(), RetrySignal),
		// Saves a round trip when a worker shares this process's client (dev); ignored
		// otherwise.
		EnableEagerStart: true,
	}
}
