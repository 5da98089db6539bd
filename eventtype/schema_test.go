package eventtype_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/eventtype"
)

// responseSchema is seed 003's survey.response.created data, as a platform would describe it.
const responseSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["response", "survey"],
  "properties": {
    "response": {
      "type": "object",
      "required": ["id", "survey_id", "response_data", "completion_status", "created_at"],
      "properties": {
        "id": {"type": "string"},
        "survey_id": {"type": "string"},
        "response_data": {"type": "object", "additionalProperties": {"type": "string"}},
        "completion_status": {"enum": ["completed", "partial"]},
        "created_at": {"type": "string", "format": "date-time"}
      }
    },
    "survey": {"$ref": "#/$defs/survey"}
  },
  "$defs": {"survey": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "title": {"type": "string"}}}}
}`

func compile(t *testing.T, schema string) *eventtype.Schema {
	t.Helper()
	s, err := eventtype.Compile(json.RawMessage(schema))
	require.NoError(t, err)
	return s
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		name, schema string
		pointer      string
		message      string
	}{
		{"not an object", `true`, "", "must be a JSON object"},
		{"an array", `[]`, "", "must be a JSON object"},
		{"unknown type", `{"type":"nope"}`, "/type", "value must be one of"},
		{"minimum not a number", `{"properties":{"a":{"minimum":"x"}}}`, "/properties/a/minimum", "got string, want number"},
		{"bad regex", `{"pattern":"("}`, "/pattern", "is not valid regex"},
		{"another draft", `{"$schema":"http://json-schema.org/draft-07/schema#"}`, "/$schema", "draft 2020-12"},
		{"a file", `{"$ref":"file:///etc/passwd"}`, "", "a schema may refer only to itself"},
		{"a URL", `{"$ref":"https://example.com/schema.json"}`, "", "a schema may refer only to itself"},
		{"a relative document", `{"$ref":"other.json"}`, "", "a schema may refer only to itself"},
		{"another $id", `{"$id":"https://example.com/a.json","$ref":"b.json"}`, "", "a schema may refer only to itself"},
		{"a missing definition", `{"$ref":"#/$defs/missing"}`, "", "which the schema does not have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eventtype.Compile(json.RawMessage(tc.schema))
			var serr *eventtype.SchemaError
			require.ErrorAs(t, err, &serr)
			require.NotEmpty(t, serr.Problems)
			found := false
			for _, p := range serr.Problems {
				found = found || (p.Pointer == tc.pointer && strings.Contains(p.Message, tc.message))
			}
			require.True(t, found, "%+v", serr.Problems)
			require.NotContains(t, err.Error(), "surveyhooks.invalid", "the compile URL is ours, not the user's")
		})
	}

	compile(t, responseSchema)
	compile(t, `{"$schema":"https://json-schema.org/draft/2020-12/schema#"}`)
	compile(t, `{"$defs":{"a":{"type":"string"}},"properties":{"x":{"$ref":"#/$defs/a"}}}`)
}

func TestValidateNamesPointerAndRule(t *testing.T) {
	t.Parallel()
	s := compile(t, responseSchema)

	valid := `{"response":{"id":"r-1","survey_id":"s-1","response_data":{"q1":"Answer 1"},` +
		`"completion_status":"completed","created_at":"2025-01-15T10:30:00.000Z"},"survey":{"id":"s-1","title":"Feedback"}}`
	require.NoError(t, s.Validate(json.RawMessage(valid)))

	for _, tc := range []struct {
		name, data string
		want       []eventtype.Problem
	}{
		{"missing id", strings.Replace(valid, `"id":"r-1",`, "", 1),
			[]eventtype.Problem{{Pointer: "/response/id", Keyword: "required", Message: "is required"}}},
		{"missing survey", `{"response":{"id":"r-1","survey_id":"s-1","response_data":{},"completion_status":"partial","created_at":"2025-01-15T10:30:00Z"}}`,
			[]eventtype.Problem{{Pointer: "/survey", Keyword: "required", Message: "is required"}}},
		{"wrong type", strings.Replace(valid, `"id":"r-1"`, `"id":1`, 1),
			[]eventtype.Problem{{Pointer: "/response/id", Keyword: "type", Message: "type: got number, want string"}}},
		{"format asserted", strings.Replace(valid, `"2025-01-15T10:30:00.000Z"`, `"yesterday"`, 1),
			[]eventtype.Problem{{Pointer: "/response/created_at", Keyword: "format"}}},
		{"through $ref", strings.Replace(valid, `"id":"s-1"`, `"id":false`, 1),
			[]eventtype.Problem{{Pointer: "/survey/id", Keyword: "type", Message: "type: got boolean, want string"}}},
		{"member name escaped", strings.Replace(valid, `"q1":"Answer 1"`, `"a/b~c":7`, 1),
			[]eventtype.Problem{{Pointer: "/response/response_data/a~1b~0c", Keyword: "type", Message: "type: got number, want string"}}},
		{"not an object", `[]`,
			[]eventtype.Problem{{Pointer: "", Keyword: "type", Message: "type: got array, want object"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Validate(json.RawMessage(tc.data))
			var derr *eventtype.DataError
			require.ErrorAs(t, err, &derr)
			require.Len(t, derr.Problems, len(tc.want), "%+v", derr.Problems)
			for i, want := range tc.want {
				got := derr.Problems[i]
				require.Equal(t, want.Pointer, got.Pointer)
				require.Equal(t, want.Keyword, got.Keyword)
				if want.Message != "" {
					require.Equal(t, want.Message, got.Message)
				}
				require.NotEmpty(t, got.Message)
			}
		})
	}

	// Numbers keep their precision: 2^53+1 is not 2^53.
	exact := compile(t, `{"properties":{"n":{"const":9007199254740993}}}`)
	require.NoError(t, exact.Validate(json.RawMessage(`{"n":9007199254740993}`)))
	require.Error(t, exact.Validate(json.RawMessage(`{"n":9007199254740992}`)))
}

func TestValidateReportsAtMostTwenty(t *testing.T) {
	t.Parallel()
	s := compile(t, `{"additionalProperties":{"type":"string"}}`)
	var b strings.Builder
	b.WriteString("{")
	for i := range 50 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"m` + strings.Repeat("x", i) + `":1`)
	}
	b.WriteString("}")
	var derr *eventtype.DataError
	require.ErrorAs(t, s.Validate(json.RawMessage(b.String())), &derr)
	require.Len(t, derr.Problems, 20)
}

func TestCheckDefinition(t *testing.T) {
	t.Parallel()

	_, err := eventtype.CheckDefinition(json.RawMessage(responseSchema), json.RawMessage(`{"survey":{"id":"s"}}`))
	var derr *eventtype.DefinitionError
	require.ErrorAs(t, err, &derr)
	require.Equal(t, []eventtype.FieldProblem{{Field: "example/response", Message: "does not match the schema: is required"}}, derr.Fields)

	_, err = eventtype.CheckDefinition(json.RawMessage(`{"type":"nope"}`), json.RawMessage(`{}`))
	require.ErrorAs(t, err, &derr)
	require.Equal(t, "schema/type", derr.Fields[0].Field)

	big := json.RawMessage(`{"description":"` + strings.Repeat("x", eventtype.MaxSchemaBytes) + `"}`)
	_, err = eventtype.CheckDefinition(big, json.RawMessage(`{}`))
	require.ErrorAs(t, err, &derr)
	require.Equal(t, []eventtype.FieldProblem{{Field: "schema", Message: "must be at most 65536 bytes"}}, derr.Fields)

	schema, err := eventtype.CheckDefinition(json.RawMessage(anyObject), json.RawMessage(`{"a":1}`))
	require.NoError(t, err)
	require.NoError(t, schema.Validate(json.RawMessage(`{}`)))
}
