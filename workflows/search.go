package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Search attributes that let a person find deliveries in the Temporal Web UI, for example
// every event of a survey with a failed delivery:
//
//	SurveyId = "survey-1" AND DeliveryStatus = "failed"
var (
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
		SurveyIDKey.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		EventTypeKey.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		WebhookIDsKey.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		DeliveryStatusKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	}
}
