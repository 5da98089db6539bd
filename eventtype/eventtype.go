// Package eventtype is the catalog of event types surveyhooks delivers and the rules for the
// patterns a webhook subscribes with.
package eventtype

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Known event types.
const (
	SurveyResponseCompleted    = "survey.response.completed"
	SurveyResponseUpdated      = "survey.response.updated"
	SurveyResponseDisqualified = "survey.response.disqualified"
	FormSubmissionCreated      = "form.submission.created"
	// WebhookTest is sent by the test endpoint to one webhook; no subscription asks for it.
	WebhookTest = "webhook.test"
)

// Wildcard subscribes to every event type (except WebhookTest).
const Wildcard = "*"

// Type describes one event type for the catalog.
type Type struct {
	Name        string
	Description string
	// Example is an example of the envelope's `data` object for this type.
	Example json.RawMessage
}

// catalog is kept in a fixed order so that the API answers the same list every time.
var catalog = []Type{
	{
		Name:        SurveyResponseCompleted,
		Description: "A respondent completed a survey.",
		Example: json.RawMessage(`{"survey":{"id":"srv_123","title":"Patient satisfaction"},` +
			`"response":{"id":"rsp_456","answers":[{"question_id":"q1","question":"How satisfied are you?","answer":"Very satisfied"},` +
			`{"question_id":"q2","question":"Would you recommend us?","answer":9}],"completed_at":"2024-05-01T12:30:00Z"}}`),
	},
	{
		Name:        SurveyResponseUpdated,
		Description: "A completed survey response was changed.",
		Example: json.RawMessage(`{"survey":{"id":"srv_123","title":"Patient satisfaction"},` +
			`"response":{"id":"rsp_456","answers":[{"question_id":"q1","question":"How satisfied are you?","answer":"Satisfied"}],` +
			`"completed_at":"2024-05-01T12:30:00Z","updated_at":"2024-05-02T08:00:00Z"}}`),
	},
	{
		Name:        SurveyResponseDisqualified,
		Description: "A respondent was screened out of a survey.",
		Example: json.RawMessage(`{"survey":{"id":"srv_123","title":"Patient satisfaction"},` +
			`"response":{"id":"rsp_789","answers":[{"question_id":"q0","question":"Are you over 18?","answer":"No"}],` +
			`"disqualified_at":"2024-05-01T12:31:00Z"}}`),
	},
	{
		Name:        FormSubmissionCreated,
		Description: "A form was submitted.",
		Example: json.RawMessage(`{"form":{"id":"frm_123","title":"Contact us"},` +
			`"submission":{"id":"sub_456","fields":[{"field_id":"email","label":"Email","value":"ada@example.com"}],` +
			`"submitted_at":"2024-05-01T12:30:00Z"}}`),
	},
	{
		Name:        WebhookTest,
		Description: "A test event sent to one webhook by its test endpoint; it cannot be subscribed to.",
		Example:     json.RawMessage(`{"webhook":{"id":"0190f5a2-7c1e-7d3a-9b1a-2f4c5d6e7f80"},"message":"This is a test event from surveyhooks."}`),
	},
}

// All returns the catalog in a stable order, WebhookTest included. The caller may modify
// the returned slice but not the examples' bytes.
func All() []Type {
	out := make([]Type, len(catalog))
	copy(out, catalog)
	return out
}

// IsKnown reports whether name is an event type of the catalog.
func IsKnown(name string) bool {
	for _, t := range catalog {
		if t.Name == name {
			return true
		}
	}
	return false
}

// ErrInvalidPattern is wrapped by every error of ValidPattern.
var ErrInvalidPattern = errors.New("invalid event pattern")

// ValidPattern reports whether a webhook may subscribe with p: a known event type other than
// WebhookTest, Wildcard, or a prefix wildcard such as "survey.response.*" or "survey.*" that
// matches at least one subscribable type. Wildcards that match nothing are refused so that
// a typo ("survey.respnse.*") is caught at subscription time instead of silently never
// delivering.
func ValidPattern(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty", ErrInvalidPattern)
	case p == WebhookTest:
		return fmt.Errorf("%w: %s is sent by the test endpoint and cannot be subscribed to", ErrInvalidPattern, p)
	case p == Wildcard || IsKnown(p):
		return nil
	case strings.HasSuffix(p, ".*"):
		for _, t := range catalog {
			if Matches(p, t.Name) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s matches no known event type", ErrInvalidPattern, p)
	default:
		return fmt.Errorf("%w: %s is not a known event type", ErrInvalidPattern, p)
	}
}

// Matches reports whether a subscription pattern selects eventType. WebhookTest matches no
// pattern, not even Wildcard: test events go to the one webhook they target.
func Matches(pattern, eventType string) bool {
	if eventType == WebhookTest || eventType == "" {
		return false
	}
	switch {
	case pattern == Wildcard:
		return true
	case strings.HasSuffix(pattern, ".*"):
		// Keep the dot so that "survey.*" does not match "surveys.x".
		prefix := strings.TrimSuffix(pattern, "*")
		return len(prefix) > 1 && !strings.Contains(prefix[:len(prefix)-1], "*") &&
			strings.HasPrefix(eventType, prefix)
	default:
		return pattern == eventType
	}
}

// MatchingPatterns returns every pattern that selects eventType: Wildcard, each prefix
// wildcard ending at one of its dots, and the type itself. A subscription matches eventType
// exactly when one of its patterns is in the list, so that the database can pick subscribed
// webhooks with an array overlap instead of returning every webhook of the survey. It is nil
// for WebhookTest, which no pattern selects.
func MatchingPatterns(eventType string) []string {
	if eventType == WebhookTest || eventType == "" {
		return nil
	}
	patterns := []string{Wildcard}
	for i := 1; i < len(eventType); i++ {
		if eventType[i] == '.' && !strings.Contains(eventType[:i], "*") {
			patterns = append(patterns, eventType[:i+1]+"*")
		}
	}
	return append(patterns, eventType)
}
