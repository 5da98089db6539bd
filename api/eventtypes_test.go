package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

const eventTypesPath = "/api/event-types"

// createdSchema is seed 003's survey.response.created data, described by the platform.
const createdSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",` +
	`"required":["response","survey"],"properties":{` +
	`"response":{"type":"object","required":["id","survey_id","response_data","completion_status","created_at"],"properties":{` +
	`"id":{"type":"string"},"survey_id":{"type":"string"},"response_data":{"type":"object"},` +
	`"completion_status":{"enum":["completed","partial"]},"created_at":{"type":"string","format":"date-time"}}},` +
	`"survey":{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"title":{"type":"string"}}}}}`

// createdExample is seed 003's payload example's data.
const createdExample = `{"response":{"id":"response-uuid","survey_id":"survey-uuid",` +
	`"response_data":{"question-id-1":"Answer 1","question-id-2":"Answer 2"},` +
	`"completion_status":"completed","created_at":"2025-01-15T10:30:00.000Z"},` +
	`"survey":{"id":"survey-uuid","title":"Product Feedback Survey"}}`

func createdBody(name string) string {
	return `{"name":"` + name + `","description":"A new survey response was submitted.",` +
		`"schema":` + createdSchema + `,"example":` + createdExample + `}`
}

func listEventTypes(t *testing.T, b *bundle, key string) []eventTypeResponse {
	t.Helper()
	resp := b.do(t, http.MethodGet, eventTypesPath, "", withKey(key))
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	return decode[struct {
		Data []eventTypeResponse `json:"data"`
	}](t, resp).Data
}

func TestEventTypeList(t *testing.T) {
	t.Parallel()
	b := setup(t)

	var names []string
	for _, et := range listEventTypes(t, b, testKey) {
		names = append(names, et.Name)
		require.NotEmpty(t, et.Description)
		require.Equal(t, et.Name != eventtype.WebhookTest, et.Subscribable, et.Name)
		require.Equal(t, et.Name == eventtype.WebhookTest || eventtype.IsNotice(et.Name), et.BuiltIn, et.Name)
		require.False(t, et.Archived)
		require.Nil(t, et.ArchivedAt)
		require.Equal(t, et.BuiltIn, et.CreatedAt == nil, et.Name)

		// The example matches the schema, and the example payload is the whole of it as
		// receivers get it.
		_, err := eventtype.CheckDefinition(et.Schema, et.Example)
		require.NoError(t, err, et.Name)
		var payload signature.Event
		dec := json.NewDecoder(bytes.NewReader(et.ExamplePayload))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&payload), et.Name)
		require.Equal(t, et.Name, payload.EventType)
		require.NotEmpty(t, payload.EventID)
		require.False(t, payload.Timestamp.IsZero())
		require.JSONEq(t, string(et.Example), string(payload.Data))
	}
	require.Equal(t, []string{
		eventtype.DeliveryExhausted,
		eventtype.FormSubmissionCreated,
		eventtype.SurveyResponseCompleted,
		eventtype.SurveyResponseDisqualified,
		eventtype.SurveyResponseUpdated,
		eventtype.WebhookDisabled,
		eventtype.WebhookFailing,
		eventtype.WebhookTest,
	}, names)

	resp := b.do(t, http.MethodGet, eventTypesPath+"/"+eventtype.SurveyResponseCompleted, "")
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, eventtype.SurveyResponseCompleted, decode[eventTypeResponse](t, resp).Name)
	resp = b.do(t, http.MethodGet, eventTypesPath+"/survey.response.created", "")
	require.Equal(t, http.StatusNotFound, resp.status)
	apiError(t, resp)
}

// TestEventTypeRoutesNeedPlatformKey: every key reads the registry, only platform keys
// change it.
func TestEventTypeRoutesNeedPlatformKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key := createKey(t, b, "acme", "ci").Key

	require.Len(t, listEventTypes(t, b, key), 8)
	resp := b.do(t, http.MethodGet, eventTypesPath+"/"+eventtype.FormSubmissionCreated, "", withKey(key))
	require.Equal(t, http.StatusOK, resp.status)

	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, eventTypesPath, createdBody("survey.response.created")},
		{http.MethodPatch, eventTypesPath + "/" + eventtype.FormSubmissionCreated, `{"description":"changed"}`},
		{http.MethodPost, eventTypesPath + "/" + eventtype.FormSubmissionCreated + "/archive", ""},
	} {
		resp := b.do(t, tc.method, tc.path, tc.body, withKey(key))
		require.Equal(t, http.StatusForbidden, resp.status, "%s %s", tc.method, tc.path)
		require.Equal(t, CodeForbidden, apiError(t, resp).Code)
	}
	require.Len(t, listEventTypes(t, b, testKey), 8, "nothing was created")
	got := decode[eventTypeResponse](t, b.do(t, http.MethodGet, eventTypesPath+"/"+eventtype.FormSubmissionCreated, ""))
	require.NotEqual(t, "changed", got.Description)
	require.False(t, got.Archived)
}

func TestEventTypeCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.do(t, http.MethodPost, eventTypesPath, createdBody("survey.response.created"))
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	require.Equal(t, eventTypesPath+"/survey.response.created", resp.header.Get("Location"))
	created := decode[eventTypeResponse](t, resp)
	require.Equal(t, "survey.response.created", created.Name)
	require.Equal(t, "A new survey response was submitted.", created.Description)
	require.True(t, created.Subscribable)
	require.False(t, created.BuiltIn)
	require.Equal(t, createdSchema, string(created.Schema), "kept as sent, member order and all")
	require.Equal(t, createdExample, string(created.Example))
	require.NotNil(t, created.CreatedAt)

	got := decode[eventTypeResponse](t, b.do(t, http.MethodGet, eventTypesPath+"/survey.response.created", ""))
	require.Equal(t, created, got)
	require.Len(t, listEventTypes(t, b, testKey), 9)

	resp = b.do(t, http.MethodPost, eventTypesPath, createdBody("survey.response.created"))
	require.Equal(t, http.StatusConflict, resp.status)
	require.Contains(t, apiError(t, resp).Message, "PATCH /api/event-types/survey.response.created")

	// Seed 001's spelling is a name a platform may register.
	resp = b.do(t, http.MethodPost, eventTypesPath, `{"name":"survey.response_completed","schema":{"type":"object"},"example":{}}`)
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	require.Empty(t, decode[eventTypeResponse](t, resp).Description)

	audit, err := b.store.ListAudit(t.Context(), store.DefaultAccount, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, audit, 2)
	require.Equal(t, "event_type.created", audit[1].Action)
	require.Equal(t, "survey.response.created", audit[1].Resource)
	require.JSONEq(t, `{"description":"A new survey response was submitted.","schema":`+createdSchema+`,"example":`+createdExample+`}`,
		string(audit[1].Changes))
}

func TestEventTypeCreateRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for _, tc := range []struct {
		name, body string
		fields     []FieldError
	}{
		{"no name", `{"schema":{},"example":{}}`, []FieldError{{Field: "name", Message: "is required"}}},
		{"one segment", createdBody("survey"), []FieldError{{Field: "name"}}},
		{"capitals", createdBody("Survey.Response"), []FieldError{{Field: "name"}}},
		{"a dash", createdBody("survey.response-created"), []FieldError{{Field: "name"}}},
		{"a wildcard", createdBody("survey.*"), []FieldError{{Field: "name"}}},
		{"eleven segments", createdBody("a.b.c.d.e.f.g.h.i.j.k"), []FieldError{{Field: "name"}}},
		{"too long", createdBody(strings.Repeat("a", 64) + "." + strings.Repeat("b", 64)),
			[]FieldError{{Field: "name", Message: "must be at most 128 characters"}}},
		{"reserved", createdBody("webhook.test"), []FieldError{{Field: "name"}}},
		{"reserved prefix", createdBody("webhook.custom"), []FieldError{{Field: "name"}}},
		{"no schema or example", `{"name":"a.b"}`,
			[]FieldError{{Field: "schema", Message: "is required"}, {Field: "example", Message: "is required"}}},
		{"schema not an object", `{"name":"a.b","schema":true,"example":{}}`, []FieldError{{Field: "schema", Message: "must be a JSON object"}}},
		{"schema null", `{"name":"a.b","schema":null,"example":{}}`, []FieldError{{Field: "schema", Message: "must not be null"}}},
		{"not a 2020-12 schema", `{"name":"a.b","schema":{"type":"nope"},"example":{}}`,
			[]FieldError{{Field: "schema/type", Message: "enum: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'"},
				{Field: "schema/type", Message: "type: got string, want array"}}},
		{"a bad keyword", `{"name":"a.b","schema":{"properties":{"n":{"minimum":"one"}}},"example":{}}`,
			[]FieldError{{Field: "schema/properties/n/minimum"}}},
		{"another draft", `{"name":"a.b","schema":{"$schema":"http://json-schema.org/draft-07/schema#"},"example":{}}`,
			[]FieldError{{Field: "schema/$schema"}}},
		{"a reference out", `{"name":"a.b","schema":{"$ref":"https://example.com/s.json"},"example":{}}`, []FieldError{{Field: "schema"}}},
		{"example not an object", `{"name":"a.b","schema":{},"example":[1]}`, []FieldError{{Field: "example", Message: "must be a JSON object"}}},
		{"example against the schema", `{"name":"a.b","schema":` + createdSchema + `,"example":{"survey":{"id":1}}}`,
			[]FieldError{{Field: "example/response", Message: "does not match the schema: is required"},
				{Field: "example/survey/id", Message: "does not match the schema: type: got number, want string"}}},
		{"description", `{"name":"a.b","description":"a\u0000b","schema":{},"example":{}}`, []FieldError{{Field: "description"}}},
		{"unknown member", `{"name":"a.b","schema":{},"example":{},"archived":true}`, []FieldError{{Field: "archived"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := b.do(t, http.MethodPost, eventTypesPath, tc.body)
			require.Equal(t, http.StatusBadRequest, resp.status, string(resp.body))
			e := apiError(t, resp)
			require.Len(t, e.Fields, len(tc.fields), "%+v", e.Fields)
			for i, want := range tc.fields {
				require.Equal(t, want.Field, e.Fields[i].Field, "%+v", e.Fields)
				require.NotEmpty(t, e.Fields[i].Message)
				if want.Message != "" {
					require.Equal(t, want.Message, e.Fields[i].Message)
				}
			}
		})
	}
	require.Len(t, listEventTypes(t, b, testKey), 8, "nothing was created")
}

func TestEventTypeUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	path := eventTypesPath + "/" + eventtype.FormSubmissionCreated
	before := decode[eventTypeResponse](t, b.do(t, http.MethodGet, path, ""))

	// A schema the stored example does not match is refused, naming the example.
	strict := `{"type":"object","required":["form_id"],"properties":{"form_id":{"type":"string"}}}`
	resp := b.do(t, http.MethodPatch, path, `{"schema":`+strict+`}`)
	require.Equal(t, http.StatusBadRequest, resp.status, string(resp.body))
	require.Equal(t, []FieldError{{Field: "example/form_id", Message: "does not match the schema: is required"}}, apiError(t, resp).Fields)

	// With an example that matches, it is taken.
	resp = b.do(t, http.MethodPatch, path, `{"schema":`+strict+`,"example":{"form_id":"frm_1"}}`)
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	updated := decode[eventTypeResponse](t, resp)
	require.Equal(t, strict, string(updated.Schema))
	require.JSONEq(t, `{"form_id":"frm_1"}`, string(updated.Example))
	require.Equal(t, before.Description, updated.Description)
	require.Equal(t, before.CreatedAt, updated.CreatedAt)
	require.True(t, updated.UpdatedAt.After(*before.UpdatedAt))

	// An example alone is checked against the stored schema.
	resp = b.do(t, http.MethodPatch, path, `{"example":{"form_id":7}}`)
	require.Equal(t, http.StatusBadRequest, resp.status)
	require.Equal(t, "example/form_id", apiError(t, resp).Fields[0].Field)

	resp = b.do(t, http.MethodPatch, path, `{"description":"A form was sent."}`)
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, "A form was sent.", decode[eventTypeResponse](t, resp).Description)
	got := decode[eventTypeResponse](t, b.do(t, http.MethodGet, path, ""))
	require.Equal(t, "A form was sent.", got.Description)
	require.Equal(t, strict, string(got.Schema))

	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"nothing to change", path, `{}`, http.StatusBadRequest},
		{"the name", path, `{"name":"form.submission.sent"}`, http.StatusBadRequest},
		{"a null schema", path, `{"schema":null}`, http.StatusBadRequest},
		{"not a schema", path, `{"schema":{"type":7}}`, http.StatusBadRequest},
		{"webhook.test", eventTypesPath + "/webhook.test", `{"description":"x"}`, http.StatusBadRequest},
		{"unknown", eventTypesPath + "/survey.response.created", `{"description":"x"}`, http.StatusNotFound},
		{"not a name", eventTypesPath + "/Survey", `{"description":"x"}`, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := b.do(t, http.MethodPatch, tc.path, tc.body)
			require.Equal(t, tc.status, resp.status, string(resp.body))
			apiError(t, resp)
		})
	}
	require.Equal(t, got, decode[eventTypeResponse](t, b.do(t, http.MethodGet, path, "")), "nothing changed")
}

// TestEventTypeArchive: an archived type cannot be newly subscribed to by name; webhooks
// subscribed to it keep their subscription, and wildcards still take it in.
func TestEventTypeArchive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	path := eventTypesPath + "/" + eventtype.SurveyResponseDisqualified
	subscribed := createWebhook(t, b, "survey-1", `{"name":"dq","url":"https://example.com/dq","events":["survey.response.disqualified"]}`)

	resp := b.do(t, http.MethodPost, path+"/archive", "")
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	archived := decode[eventTypeResponse](t, resp)
	require.True(t, archived.Archived)
	require.NotNil(t, archived.ArchivedAt)
	require.False(t, archived.Subscribable)

	// Again: nothing changes.
	resp = b.do(t, http.MethodPost, path+"/archive", "")
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, archived.ArchivedAt, decode[eventTypeResponse](t, resp).ArchivedAt)

	resp = b.do(t, http.MethodPost, webhooksPath, `{"name":"n","url":"https://example.com/n","events":["survey.response.disqualified"]}`)
	require.Equal(t, http.StatusBadRequest, resp.status)
	require.Equal(t, []FieldError{{Field: "events[0]", Message: `"survey.response.disqualified" is archived: ` +
		`webhooks subscribed to it keep receiving it, but no webhook may newly subscribe to it`}}, apiError(t, resp).Fields)
	resp = b.do(t, http.MethodPatch, webhooksPath+"/"+subscribed.ID.String(), `{"events":["survey.response.completed","survey.response.disqualified"]}`)
	require.Equal(t, http.StatusBadRequest, resp.status)
	require.Equal(t, "events[1]", apiError(t, resp).Fields[0].Field)

	// The subscribed webhook keeps it through other changes; wildcards are still taken.
	resp = b.do(t, http.MethodPatch, webhooksPath+"/"+subscribed.ID.String(), `{"name":"renamed"}`)
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, []string{eventtype.SurveyResponseDisqualified}, decode[webhookResponse](t, resp).Events)
	createWebhook(t, b, "survey-1", `{"name":"all","url":"https://example.com/all","events":["survey.response.*"]}`)

	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"with a body", path + "/archive", `{}`, http.StatusBadRequest},
		{"webhook.test", eventTypesPath + "/webhook.test/archive", "", http.StatusBadRequest},
		{"unknown", eventTypesPath + "/survey.response.created/archive", "", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := b.do(t, http.MethodPost, tc.path, tc.body)
			require.Equal(t, tc.status, resp.status, string(resp.body))
			apiError(t, resp)
		})
	}
}

// TestEventTypeRegisteredIsSubscribable: a name and a wildcard that match nothing are
// refused until a type makes them match; the change is seen by the next request.
func TestEventTypeRegisteredIsSubscribable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"name":"n","url":"https://example.com/n","events":["survey.response.created","askusers.*"]}`

	resp := b.do(t, http.MethodPost, webhooksPath, body)
	require.Equal(t, http.StatusBadRequest, resp.status)
	require.Equal(t, []string{"events[0]", "events[1]"}, fieldNames(apiError(t, resp)))

	for _, name := range []string{"survey.response.created", "askusers.form.sent"} {
		resp := b.do(t, http.MethodPost, eventTypesPath, createdBody(name))
		require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	}
	hook := createWebhook(t, b, "survey-1", body)
	require.Equal(t, []string{"survey.response.created", "askusers.*"}, hook.Events)

	// The types a webhook may subscribe by name are 128 characters long at most.
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 64)
	resp = b.do(t, http.MethodPost, eventTypesPath, createdBody(long))
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	createWebhook(t, b, "survey-1", `{"name":"long","url":"https://example.com/l","events":["`+long+`"]}`)
}

// TestEventTypeChangesAreAudited: each change is in the platform's (default account's)
// audit log, by the key that made it.
func TestEventTypeChangesAreAudited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	path := eventTypesPath + "/" + eventtype.SurveyResponseUpdated
	require.Equal(t, http.StatusOK, b.do(t, http.MethodPatch, path, `{"description":"Changed."}`).status)
	require.Equal(t, http.StatusOK, b.do(t, http.MethodPost, path+"/archive", "").status)

	entries, err := b.store.ListAudit(t.Context(), store.DefaultAccount, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, "event_type.archived", entries[0].Action)
	require.Equal(t, "event_type.updated", entries[1].Action)
	require.Equal(t, eventtype.SurveyResponseUpdated, entries[1].Resource)
	require.JSONEq(t, `{"description":"Changed."}`, string(entries[1].Changes))
	require.True(t, strings.HasPrefix(entries[1].KeyPrefix, "platform-"))
}
