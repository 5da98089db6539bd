package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
)

// Seed 003 (Ask Users) names its events survey.response.created and
// form.submission.created; these are its payloads' data, as its docs show them.
var (
	seed003ResponseSchema = map[string]any{
		"$schema":  "https://json-schema.org/draft/2020-12/schema",
		"type":     "object",
		"required": []any{"response", "survey"},
		"properties": map[string]any{
			"response": map[string]any{
				"type":     "object",
				"required": []any{"id", "survey_id", "response_data", "completion_status", "created_at"},
				"properties": map[string]any{
					"id":                map[string]any{"type": "string"},
					"survey_id":         map[string]any{"type": "string"},
					"response_data":     map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
					"completion_status": map[string]any{"enum": []any{"completed", "partial"}},
					"created_at":        map[string]any{"type": "string", "format": "date-time"},
				},
			},
			"survey": map[string]any{"$ref": "#/$defs/survey"},
		},
		"$defs": map[string]any{"survey": map[string]any{
			"type": "object", "required": []any{"id", "title"},
			"properties": map[string]any{"id": map[string]any{"type": "string"}, "title": map[string]any{"type": "string"}},
		}},
	}
	seed003ResponseData = map[string]any{
		"response": map[string]any{
			"id": "response-uuid", "survey_id": "survey-uuid",
			"response_data":     map[string]any{"question-id-1": "Answer 1", "question-id-2": "Answer 2"},
			"completion_status": "completed", "created_at": "2025-01-15T10:30:00.000Z",
		},
		"survey": map[string]any{"id": "survey-uuid", "title": "Product Feedback Survey"},
	}
	// "all form field data, submission status, and form configuration details"
	seed003SubmissionSchema = map[string]any{
		"$schema":  "https://json-schema.org/draft/2020-12/schema",
		"type":     "object",
		"required": []any{"form", "submission"},
		"properties": map[string]any{
			"form": map[string]any{"type": "object", "required": []any{"id", "title"}, "properties": map[string]any{
				"id": map[string]any{"type": "string"}, "title": map[string]any{"type": "string"}, "settings": map[string]any{"type": "object"},
			}},
			"submission": map[string]any{"type": "object", "required": []any{"id", "status", "fields"}, "properties": map[string]any{
				"id":     map[string]any{"type": "string"},
				"status": map[string]any{"enum": []any{"new", "spam", "read"}},
				"fields": map[string]any{"type": "object"},
			}},
		},
	}
	seed003SubmissionData = map[string]any{
		"form":       map[string]any{"id": "form-uuid", "title": "Contact us", "settings": map[string]any{"notify": true}},
		"submission": map[string]any{"id": "submission-uuid", "status": "new", "fields": map[string]any{"email": "ada@example.com"}},
	}
)

// publishAs publishes data as an event of type eventType with id eventID.
func (e *engine) publishAs(t *testing.T, eventID, eventType string, data any) (int, map[string]any) {
	t.Helper()
	return e.do(t, http.MethodPost, "/api/events", map[string]any{"event_id": eventID, "event_type": eventType,
		"survey_id": "survey-1", "data": data})
}

// requireNotStored checks that no event eventID exists.
func (e *engine) requireNotStored(t *testing.T, eventID string) {
	t.Helper()
	status, _ := e.do(t, http.MethodGet, "/api/events/"+eventID, nil)
	require.Equal(t, http.StatusNotFound, status, "nothing is stored")
}

// TestEngineSeed003EventTypes runs seed 003's flow with the platform's own names: the
// platform registers survey.response.created with its schema, changes the built-in
// form.submission.created's schema, subscribes a webhook to both, and publishes one of
// each: both arrive, and so do they at a wildcard subscription made before either type
// changed. A payload that breaks a schema is refused naming the field, and nothing is
// stored.
func TestEngineSeed003EventTypes(t *testing.T) {
	t.Parallel()
	// Ask Users' receivers check the bare hex HMAC of JSON.stringify(req.body) in
	// X-Webhook-Signature: the platform runs with that profile.
	profile, err := signature.ParseProfile("", "hex")
	require.NoError(t, err)
	e := setupEngineSigning(t, netguard.Policy{AllowHTTP: true, Allowed: loopback}, profile)
	wide := newReceiver(t)
	e.createWebhook(t, wide.URL, []string{"*"}, "")

	status, out := e.do(t, http.MethodPost, "/api/event-types", map[string]any{
		"name": "survey.response.created", "description": "Triggered when a new survey response is submitted.",
		"schema": seed003ResponseSchema, "example": seed003ResponseData})
	require.Equal(t, http.StatusCreated, status, out)
	status, out = e.do(t, http.MethodPatch, "/api/event-types/form.submission.created", map[string]any{
		"description": "Triggered when a new form submission is created.",
		"schema":      seed003SubmissionSchema, "example": seed003SubmissionData})
	require.Equal(t, http.StatusOK, status, out)

	rc := newReceiver(t)
	_, secret := e.createWebhook(t, rc.URL, []string{"survey.response.created", "form.submission.created"}, "")

	status, out = e.publishAs(t, "evt-response", "survey.response.created", seed003ResponseData)
	require.Equal(t, http.StatusCreated, status, out)
	status, out = e.publishAs(t, "evt-submission", "form.submission.created", seed003SubmissionData)
	require.Equal(t, http.StatusCreated, status, out)
	for _, id := range []string{"evt-response", "evt-submission"} {
		for _, d := range e.deliveriesOf(t, id, 2) {
			require.Equal(t, delivery.StatusDelivered, d["status"], id)
		}
	}

	got := rc.got()
	require.Len(t, got, 2)
	byType := map[string]signature.Event{}
	for _, req := range got {
		// Seed 003's own Node and Python snippets, unchanged but for the secret.
		for _, v := range []verifier{{"node", "seed003_verify.js"}, {"python3", "seed003_verify.py"}} {
			require.True(t, v.verifies(t, []string{"ASKUSERS_WEBHOOK_SECRET=" + secret}, req.body,
				req.header.Get(signature.HeaderSignature)), "%s, %s", v.script, req.body)
		}
		var env signature.Event
		require.NoError(t, json.Unmarshal(req.body, &env))
		byType[env.EventType] = env
	}
	for typ, want := range map[string]any{"survey.response.created": seed003ResponseData, "form.submission.created": seed003SubmissionData} {
		env, ok := byType[typ]
		require.True(t, ok, typ)
		wantJSON, err := json.Marshal(want)
		require.NoError(t, err)
		require.JSONEq(t, string(wantJSON), string(env.Data), typ)
	}
	require.Len(t, wide.got(), 2, "the wildcard subscription hears the new type")

	// A payload that breaks the schema: 400 naming each field, nothing stored.
	broken := map[string]any{
		"response": map[string]any{"survey_id": "survey-uuid", "response_data": map[string]any{"q1": 7},
			"completion_status": "done", "created_at": "2025-01-15T10:30:00.000Z"},
		"survey": map[string]any{"id": "survey-uuid", "title": "Product Feedback Survey"},
	}
	status, out = e.publishAs(t, "evt-broken", "survey.response.created", broken)
	require.Equal(t, http.StatusBadRequest, status, out)
	require.Equal(t, "invalid_request", out["code"])
	require.Contains(t, out["message"], "survey.response.created")
	fields := map[string]string{}
	for _, f := range out["fields"].([]any) {
		fields[f.(map[string]any)["field"].(string)] = f.(map[string]any)["message"].(string)
	}
	require.Equal(t, "is required", fields["data/response/id"])
	require.Contains(t, fields["data/response/completion_status"], "enum")
	require.Equal(t, "type: got number, want string", fields["data/response/response_data/q1"])
	require.Len(t, fields, 3)
	e.requireNotStored(t, "evt-broken")

	// The built-in type's old shape no longer passes its new schema.
	status, out = e.publishAs(t, "evt-old-form", "form.submission.created",
		map[string]any{"form": map[string]any{"id": "frm_1", "title": "Contact"}, "submission": map[string]any{"id": "sub_1"}})
	require.Equal(t, http.StatusBadRequest, status, out)
	var names []string
	for _, f := range out["fields"].([]any) {
		names = append(names, f.(map[string]any)["field"].(string))
	}
	slices.Sort(names)
	require.Equal(t, []string{"data/submission/fields", "data/submission/status"}, names)
	e.requireNotStored(t, "evt-old-form")

	// A type nobody registered is refused as before.
	status, out = e.publishAs(t, "evt-unknown", "survey.response_completed", map[string]any{})
	require.Equal(t, http.StatusBadRequest, status, out)
	require.Equal(t, "event_type", out["fields"].([]any)[0].(map[string]any)["field"])
	e.requireNotStored(t, "evt-unknown")

	require.Len(t, rc.got(), 2)
	require.Len(t, wide.got(), 2)
}

// TestEngineArchivedTypeKeepsItsSubscribers: after a type is archived, a webhook can no
// longer subscribe to it, while the one subscribed already still receives it: publishing
// an archived type is allowed, and its schema still applies.
func TestEngineArchivedTypeKeepsItsSubscribers(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t)
	e.createWebhook(t, rc.URL, []string{"survey.response.disqualified"}, "")

	status, out := e.do(t, http.MethodPost, "/api/event-types/survey.response.disqualified/archive", nil)
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, true, out["archived"])

	status, out = e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks",
		map[string]any{"name": "late", "url": rc.URL, "events": []string{"survey.response.disqualified"}})
	require.Equal(t, http.StatusBadRequest, status, out)

	status, out = e.publishAs(t, "evt-dq", "survey.response.disqualified",
		map[string]any{"survey": map[string]any{"id": "survey-1"}, "response": map[string]any{"id": "r-9"}})
	require.Equal(t, http.StatusCreated, status, out)
	e.deliveriesOf(t, "evt-dq", 1)
	require.Len(t, rc.got(), 1)

	status, out = e.publishAs(t, "evt-dq-bad", "survey.response.disqualified", map[string]any{"response": map[string]any{}})
	require.Equal(t, http.StatusBadRequest, status, out)
	require.Equal(t, "data/response/id", out["fields"].([]any)[0].(map[string]any)["field"])
	e.requireNotStored(t, "evt-dq-bad")
}
