// Package eventtype holds the rules of event types: what a type's name may be, the
// patterns a webhook subscribes with, each type's JSON Schema for the data it carries, and
// the registry that serves the types stored in PostgreSQL (table event_types, filled with
// the survey types by migration 0005) to the publish path from a cache.
package eventtype

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Names of the types surveyhooks ships: the survey types are migration 0005's defaults,
// which an operator may change (PATCH /api/event-types/{name}); WebhookTest is built in.
const (
	SurveyResponseCompleted    = "survey.response.completed"
	SurveyResponseUpdated      = "survey.response.updated"
	SurveyResponseDisqualified = "survey.response.disqualified"
	FormSubmissionCreated      = "form.submission.created"
	// WebhookTest is sent by the test endpoint to one webhook; no subscription asks for it
	// and no publisher may send it.
	WebhookTest = "webhook.test"
	// WebhookDisabled is a notice: surveyhooks sends it when it turns a webhook off
	// (delivery.DisablePolicy), to the webhooks subscribed to it by name or by "webhook.*".
	WebhookDisabled = "webhook.disabled"
	// WebhookFailing is a notice: a webhook's streak of failed attempts reached the warning
	// threshold (SURVEYHOOKS_FAILING_AFTER), once per streak.
	WebhookFailing = "webhook.failing"
	// DeliveryExhausted is a notice: a delivery ended failed, its schedule over or its
	// receiver refusing for good.
	DeliveryExhausted = "delivery.exhausted"
)

// Wildcard subscribes to every event type except the built-in ones: WebhookTest and the
// notices, which a webhook asks for by name or by "webhook.*".
const Wildcard = "*"

// IsNotice reports whether eventType is one of surveyhooks' own notices.
func IsNotice(eventType string) bool {
	return eventType == WebhookDisabled || eventType == WebhookFailing || eventType == DeliveryExhausted
}

// Type is one event type: its name, what it means, the JSON Schema (draft 2020-12) its
// events' data must match, and an example of that data, which matches the schema.
type Type struct {
	Name        string
	Description string
	// Schema is a JSON Schema (draft 2020-12) for the envelope's `data` object.
	Schema json.RawMessage
	// Example is an example of the envelope's `data` object; it matches Schema.
	Example json.RawMessage
	// ArchivedAt is when the type was archived: no webhook may newly subscribe to it by
	// name, and the webhooks subscribed already keep receiving it.
	ArchivedAt *time.Time
	// CreatedAt and UpdatedAt are zero for the built-in WebhookTest.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Archived reports whether the type is archived.
func (t Type) Archived() bool {
	return t.ArchivedAt != nil
}

// BuiltIn reports whether the type is part of surveyhooks rather than of the registry: it
// cannot be changed, archived or published.
func (t Type) BuiltIn() bool {
	return t.Name == WebhookTest || IsNotice(t.Name)
}

// webhookTest is the built-in type of the test endpoint's events (delivery.Service.Test
// builds their data).
var webhookTest = Type{
	Name:        WebhookTest,
	Description: "A test event sent to one webhook by its test endpoint; it cannot be subscribed to or published.",
	Schema: json.RawMessage(`{"type":"object","required":["webhook","message"],"properties":{` +
		`"webhook":{"type":"object","required":["id"],"properties":{"id":{"type":"string","format":"uuid"},"name":{"type":"string"}}},` +
		`"message":{"type":"string"}}}`),
	Example: json.RawMessage(`{"webhook":{"id":"0190f5a2-7c1e-7d3a-9b1a-2f4c5d6e7f80","name":"CRM sync"},` +
		`"message":"This is a test event from surveyhooks."}`),
}

// webhookDisabled is the built-in type of the notice sent when surveyhooks turns a webhook
// off (activities builds its data).
var webhookDisabled = Type{
	Name: WebhookDisabled,
	Description: "surveyhooks turned a webhook off: its receiver answered 410 Gone, or every attempt failed for days. " +
		"Sent to the webhooks of the disabled webhook's account, and of the operator's account (SURVEYHOOKS_NOTICE_ACCOUNT), " +
		"that subscribe to it by name or with webhook.*; cannot be published.",
	Schema: json.RawMessage(`{"type":"object","required":["webhook","disabledAt","reason"],"properties":{` +
		`"webhook":{"type":"object","required":["id","accountId","name","url"],"properties":{"id":{"type":"string","format":"uuid"},` +
		`"accountId":{"type":"string"},"surveyId":{"type":"string"},"name":{"type":"string"},"url":{"type":"string"}}},` +
		`"disabledAt":{"type":"string","format":"date-time"},"reason":{"type":"string"}}}`),
	Example: json.RawMessage(`{"webhook":{"id":"0190f5a2-7c1e-7d3a-9b1a-2f4c5d6e7f80","accountId":"acme","surveyId":"srv_123",` +
		`"name":"CRM sync","url":"https://crm.example.com/hooks"},"disabledAt":"2026-12-05T12:00:00Z","reason":"the receiver answered 410 Gone"}`),
}

// webhookFailing is the built-in type of the notice sent when a webhook's streak of failed
// attempts reaches the warning threshold (activities builds its data).
var webhookFailing = Type{
	Name: WebhookFailing,
	Description: "A webhook's attempts keep failing: its streak of failed attempts reached SURVEYHOOKS_FAILING_AFTER. " +
		"Sent once per streak, before surveyhooks turns the webhook off (webhook.disabled), to the same webhooks as webhook.disabled; cannot be published.",
	Schema: json.RawMessage(`{"type":"object","required":["webhook","consecutiveFailures","failingSince","lastError"],"properties":{` +
		`"webhook":{"type":"object","required":["id","accountId","name","url"],"properties":{"id":{"type":"string","format":"uuid"},` +
		`"accountId":{"type":"string"},"surveyId":{"type":"string"},"name":{"type":"string"},"url":{"type":"string"}}},` +
		`"consecutiveFailures":{"type":"integer"},"failingSince":{"type":"string","format":"date-time"},"lastError":{"type":"string"}}}`),
	Example: json.RawMessage(`{"webhook":{"id":"0190f5a2-7c1e-7d3a-9b1a-2f4c5d6e7f80","accountId":"acme","surveyId":"srv_123",` +
		`"name":"CRM sync","url":"https://crm.example.com/hooks"},"consecutiveFailures":5,"failingSince":"2026-12-05T11:00:00Z",` +
		`"lastError":"receiver answered 503 Service Unavailable"}`),
}

// deliveryExhausted is the built-in type of the notice sent when a delivery ends failed
// (activities builds its data).
var deliveryExhausted = Type{
	Name: DeliveryExhausted,
	Description: "A delivery ended failed: its schedule is over, or its receiver refused it for good. " +
		"Sent to the same webhooks as webhook.disabled (asked for by name or delivery.*; never through *), " +
		"and stored only when one of them asks for it; cannot be published.",
	Schema: json.RawMessage(`{"type":"object","required":["delivery","webhook"],"properties":{` +
		`"delivery":{"type":"object","required":["id","eventId","eventType","attempts","lastError"],"properties":{` +
		`"id":{"type":"string","format":"uuid"},"eventId":{"type":"string"},"eventType":{"type":"string"},` +
		`"attempts":{"type":"integer"},"lastStatusCode":{"type":["integer","null"]},"lastError":{"type":"string"}}},` +
		`"webhook":{"type":"object","required":["id","accountId","name","url"],"properties":{"id":{"type":"string","format":"uuid"},` +
		`"accountId":{"type":"string"},"surveyId":{"type":"string"},"name":{"type":"string"},"url":{"type":"string"}}}}}`),
	Example: json.RawMessage(`{"delivery":{"id":"0190f5a2-8000-7000-8000-000000000001","eventId":"evt_42","eventType":"survey.response.completed",` +
		`"attempts":6,"lastStatusCode":503,"lastError":"receiver answered 503 Service Unavailable"},` +
		`"webhook":{"id":"0190f5a2-7c1e-7d3a-9b1a-2f4c5d6e7f80","accountId":"acme","surveyId":"srv_123","name":"CRM sync","url":"https://crm.example.com/hooks"}}`),
}

// MaxNameLength is the longest event type name, and so the longest subscription pattern.
const MaxNameLength = 128

// namePattern is dot notation: 2 to 10 segments of lower-case letters, digits and '_'.
var namePattern = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+){1,9}$`)

// ErrInvalidName is wrapped by every error of CheckName.
var ErrInvalidName = errors.New("invalid event type name")

// NameError says why a name cannot be registered; Reason is a sentence part for people
// ("must be at most 128 characters").
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("%s %q: %s", ErrInvalidName, e.Name, e.Reason)
}

func (e *NameError) Unwrap() error {
	return ErrInvalidName
}

// CheckName reports whether name may be registered: dot notation (2 to 10 segments of
// a-z, 0-9 and '_'), at most MaxNameLength characters, outside the reserved webhook.*
// names and surveyhooks' notices. '*' never appears in a name, so that a name is never mistaken for a pattern. Its
// errors are *NameError.
func CheckName(name string) error {
	switch {
	case len(name) > MaxNameLength:
		return &NameError{Name: name, Reason: fmt.Sprintf("must be at most %d characters", MaxNameLength)}
	case !namePattern.MatchString(name):
		return &NameError{Name: name, Reason: "must be 2 to 10 segments of a-z, 0-9 and _ separated by dots, such as survey.response.created"}
	case strings.HasPrefix(name, "webhook."):
		return &NameError{Name: name, Reason: "must not start with webhook.: those names are reserved for surveyhooks"}
	case IsNotice(name):
		return &NameError{Name: name, Reason: "is one of surveyhooks' own notices"}
	}
	return nil
}

// ErrInvalidPattern is wrapped by every error of Set.ValidPattern.
var ErrInvalidPattern = errors.New("invalid event pattern")

// ErrArchived is wrapped by Set.ValidPattern's error for an archived type named exactly.
var ErrArchived = errors.New("archived event type")

// Matches reports whether a subscription pattern selects eventType. WebhookTest matches no
// pattern, not even Wildcard: test events go to the one webhook they target.
func Matches(pattern, eventType string) bool {
	if eventType == WebhookTest || eventType == "" {
		return false
	}
	switch {
	case pattern == Wildcard:
		return !IsNotice(eventType)
	case strings.HasSuffix(pattern, ".*"):
		// Keep the dot so that "survey.*" does not match "surveys.x".
		prefix := strings.TrimSuffix(pattern, "*")
		return len(prefix) > 1 && !strings.Contains(prefix[:len(prefix)-1], "*") &&
			strings.HasPrefix(eventType, prefix)
	default:
		return pattern == eventType
	}
}

// MatchingPatterns returns every pattern that selects eventType: Wildcard (but for a
// notice), each prefix wildcard ending at one of its dots, and the type itself. A subscription matches eventType
// exactly when one of its patterns is in the list, so that the database can pick subscribed
// webhooks with an array overlap instead of returning every webhook of the survey. It is nil
// for WebhookTest, which no pattern selects.
func MatchingPatterns(eventType string) []string {
	if eventType == WebhookTest || eventType == "" {
		return nil
	}
	patterns := []string{}
	if !IsNotice(eventType) {
		patterns = append(patterns, Wildcard)
	}
	for i := 1; i < len(eventType); i++ {
		if eventType[i] == '.' && !strings.Contains(eventType[:i], "*") {
			patterns = append(patterns, eventType[:i+1]+"*")
		}
	}
	return append(patterns, eventType)
}
