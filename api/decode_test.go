package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// nested returns a value that nests objects depth levels deep: nested(1) is {"a":1}.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + `1` + strings.Repeat(`}`, depth)
}

// createWith is a valid create body with extra members appended (after "events", so a
// repeated member name can follow the first).
func createWith(extra string) string {
	return `{"name":"n","url":"https://example.com/h","events":["*"]` + extra + `}`
}

// TestJSONRefusals sends JSON that encoding/json accepts but reads as something the client
// did not send (a lone surrogate becomes U+FFFD, a repeated member keeps its last value), or
// that a receiver cannot read back (a number past float64, nesting past the limit): each is
// a 400 that says what is wrong, and nothing is stored.
func TestJSONRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		name    string
		body    string
		message string
	}{
		{"escaped lone high surrogate", `{"name":"a\ud800b","url":"https://example.com/h","events":["*"]}`,
			`an escaped lone surrogate (\ud800) in a string (line 1, column 11)`},
		{"escaped lone low surrogate", `{"name":"\udc00","url":"https://example.com/h","events":["*"]}`,
			`an escaped lone surrogate (\udc00)`},
		{"high surrogate before a non-surrogate", `{"name":"\uD83D\u0041","url":"https://example.com/h","events":["*"]}`,
			`an escaped lone surrogate (\uD83D)`},
		{"two high surrogates", `{"name":"\ud83d\ud83d","url":"https://example.com/h","events":["*"]}`,
			`an escaped lone surrogate (\ud83d)`},
		{"lone surrogate in a member name", createWith(`,"x\ud800":1`), `an escaped lone surrogate (\ud800)`},
		{"lone surrogate deep inside", createWith(`,"x":[{"y":["\udfff"]}]`), `an escaped lone surrogate (\udfff)`},
		{"repeated member", createWith(`,"name":"m"`), `repeats the member "name" (line 1, column 58)`},
		{"repeated member spelled with an escape", createWith(`,"n\u0061me":"m"`), `repeats the member "name"`},
		{"repeated member in a nested object", createWith(`,"x":{"a":1,"b":2,"a":3}`), `repeats the member "a"`},
		{"number past float64", createWith(`,"x":1e400`), "a number that does not fit a 64-bit float (line 1, column 62)"},
		{"negative number past float64", createWith(`,"x":[-1.5E+309]`), "a number that does not fit a 64-bit float"},
		{"nesting past the limit", createWith(`,"x":` + nested(maxDepth+1)),
			"nests objects and arrays more than 64 levels deep"},
		{"array nesting past the limit", createWith(`,"x":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)),
			"nests objects and arrays more than 64 levels deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := b.do(t, http.MethodPost, "/api/surveys/s-"+strings.ReplaceAll(tc.name, " ", "-")+"/webhooks", tc.body)
			require.Equal(t, http.StatusBadRequest, resp.status, string(resp.body))
			e := apiError(t, resp)
			require.Equal(t, CodeInvalidRequest, e.Code)
			require.Contains(t, e.Message, tc.message)
		})
	}
	require.Zero(t, countWebhooks(t, b), "nothing stored")
}

// TestJSONAcceptedNearTheRefusals shows what the refusals leave alone: a surrogate pair, an
// escaped backslash before "ud800", a member name repeated in sibling objects, the largest
// float64 and nesting at the limit.
func TestJSONAcceptedNearTheRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)

	created := createWebhook(t, b, "survey-1", `{"name":"smile \ud83d\ude00 \\ud800","url":"https://example.com/h","events":["*"]}`)
	require.Equal(t, `smile 😀 \ud800`, created.Name)

	created = createWebhook(t, b, "survey-1", `{"name":"n","url":"https://example.com/h","events":["*"],"description":"1.7976931348623157e308"}`)
	require.Equal(t, "1.7976931348623157e308", created.Description)

	// At the limit the body is refused for its unknown member, not for its depth.
	for _, extra := range []string{`,"x":` + nested(maxDepth), `,"x":[{"a":1},{"a":1}]`, `,"x":1.7976931348623157e308`, `,"x":-1e-400`} {
		resp := b.do(t, http.MethodPost, webhooksPath, createWith(extra))
		require.Equal(t, http.StatusBadRequest, resp.status, string(resp.body))
		require.Equal(t, []string{"x"}, fieldNames(apiError(t, resp)), extra)
	}
}

// TestNamesRefuseFormatCharacters refuses invisible Unicode format characters (category
// Cf: bidi controls, zero-width characters) in names and descriptions: "abc\u202eevil"
// shows as "abclive" in a console and hides what the name says.
func TestNamesRefuseFormatCharacters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", validCreateBody)
	path := webhooksPath + "/" + created.ID.String()

	for _, tc := range []struct {
		name, body, field string
	}{
		{"right-to-left override in name", `{"name":"abc\u202eevil","url":"https://example.com/h","events":["*"]}`, "name"},
		{"zero-width space in name", `{"name":"pay\u200broll","url":"https://example.com/h","events":["*"]}`, "name"},
		{"byte order mark in description", createWith(`,"description":"\ufeffnotes"`), "description"},
		{"left-to-right isolate in description", createWith(`,"description":"a\u2066b"`), "description"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := b.do(t, http.MethodPost, webhooksPath, tc.body)
			require.Equal(t, http.StatusBadRequest, resp.status, string(resp.body))
			e := apiError(t, resp)
			require.Equal(t, []FieldError{{Field: tc.field, Message: "must not contain invisible formatting characters such as bidi controls or zero-width characters"}}, e.Fields)
		})
	}
	resp := b.do(t, http.MethodPatch, path, `{"name":"x\u2067y"}`)
	require.Equal(t, http.StatusBadRequest, resp.status, string(resp.body))
	require.Equal(t, []string{"name"}, fieldNames(apiError(t, resp)))
	require.Equal(t, 1, countWebhooks(t, b), "nothing stored")
}
