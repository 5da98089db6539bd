package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
)

// fuzzRequest sends body straight to the handler (no sockets: fuzzing runs it thousands
// of times) and checks the invariants every answer must keep.
func fuzzRequest(t *testing.T, b *bundle, method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(t.Context(), method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	b.srv.Handler().ServeHTTP(rec, req)

	require.Less(t, rec.Code, 500, "never a 5xx: %s", rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	if rec.Code >= 400 {
		var e Error
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), rec.Body.String())
		require.Equal(t, statusOf(e.Code), rec.Code)
		require.NotEmpty(t, e.Message)
	}
	return rec
}

// FuzzWebhookCreate posts arbitrary bodies: never a 5xx or a panic, a 201 stores exactly
// one webhook and a 4xx stores nothing.
func FuzzWebhookCreate(f *testing.F) {
	for _, seed := range []string{
		validCreateBody,
		`{"name":"n","url":"https://example.com/h","events":["*"]}`,
		`{"name":"n","url":"https://example.com/h","events":["survey.response.*","form.*"],"description":"d","isActive":false}`,
		`{"name":"n","url":"http://127.0.0.1/h","events":["webhook.test"],"secret":"short"}`,
		`{"name":null,"url":"","events":[],"secret":null,"surveyId":"other"}`,
		`{"name":"a\u0000b","description":"\u0007","events":["*","*"]}`,
		`{"name":"n","url":"https://[::ffff:10.0.0.1]/","events":[1,null]}`,
		`[]`, `null`, `{}{}`, `{"a":`, "{\"name\":\"\xff\"}",
		// Repeated members, lone surrogates, deep nesting, numbers past float64 and format
		// characters: all refused.
		`{"name":"n","name":"m","url":"https://example.com/h","events":["*"]}`,
		`{"name":"n","n\u0061me":"m","url":"https://example.com/h","events":["*"]}`,
		`{"name":"a\ud800b","url":"https://example.com/h","events":["*"]}`,
		`{"name":"\ud83d\ude00 \\ud800","url":"https://example.com/h","events":["*"]}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"x":` + nested(maxDepth+1) + `}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"isActive":1e400}`,
		`{"name":"abc\u202eevil","url":"https://example.com/h","events":["*"],"description":"\u200b"}`,
		`{"name":"n","url":"https://１２７.０.０.１/","events":["*"]}`,
	} {
		f.Add([]byte(seed))
	}
	b := setup(f)

	f.Fuzz(func(t *testing.T, body []byte) {
		before := countWebhooks(t, b)
		rec := fuzzRequest(t, b, http.MethodPost, webhooksPath, body)
		after := countWebhooks(t, b)
		if rec.Code == http.StatusCreated {
			require.Equal(t, before+1, after)
			var created webhookResponse
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &created))
			stored, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
			require.NoError(t, err)
			require.Equal(t, created.Secret, stored.Secret)
			return
		}
		require.GreaterOrEqual(t, rec.Code, 400, rec.Body.String())
		require.Equal(t, before, after, "nothing stored on a %d", rec.Code)
	})
}

// FuzzWebhookPatch patches one webhook with arbitrary bodies: never a 5xx or a panic, and
// a 4xx leaves the webhook exactly as it was.
func FuzzWebhookPatch(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"name":"renamed"}`,
		`{"url":"https://example.org/x","events":["form.*"],"isActive":false,"description":null}`,
		`{"name":null}`, `{"events":null}`, `{"isActive":null}`,
		`{"secret":"a-long-enough-secret"}`, `{"surveyId":"survey-2"}`,
		`{"url":"https://169.254.169.254/"}`, `{"description":"` + string(bytes.Repeat([]byte("x"), 1001)) + `"}`,
		`{"unknown":true}`, `[{}]`, `{"name":"x"} trailing`,
		`{"name":"a","name":"b"}`, `{"description":"\udc00"}`, `{"events":["*"],"x":` + nested(maxDepth+1) + `}`,
		`{"isActive":true,"isActive":false}`, `{"name":"x\u2066y"}`, `{"url":"https://[::ffff:0:7f00:1]/"}`,
	} {
		f.Add([]byte(seed))
	}
	b := setup(f)
	created := createWebhook(f, b, "survey-1", validCreateBody)
	path := webhooksPath + "/" + created.ID.String()

	f.Fuzz(func(t *testing.T, body []byte) {
		before, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
		require.NoError(t, err)
		rec := fuzzRequest(t, b, http.MethodPatch, path, body)
		after, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
		require.NoError(t, err)
		if rec.Code == http.StatusOK {
			require.Equal(t, before.ID, after.ID)
			require.Equal(t, before.Secret, after.Secret, "PATCH never changes the secret")
			require.NotEmpty(t, after.Name)
			require.NotEmpty(t, after.Events)
			return
		}
		require.GreaterOrEqual(t, rec.Code, 400, rec.Body.String())
		require.Equal(t, before, after, "nothing changed on a %d", rec.Code)
	})
}
