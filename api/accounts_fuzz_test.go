package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// countRows counts the rows of every table an account route writes to.
func countRows(t *testing.T, b *bundle) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, table := range []string{"webhooks", "api_keys", "audit_log", "events", "deliveries"} {
		var n int
		require.NoError(t, b.db.GetContext(t.Context(), &n, `SELECT count(*) FROM `+table))
		counts[table] = n
	}
	return counts
}

// FuzzAccountWebhookCreate posts arbitrary bodies to an account's account-wide webhooks:
// never a 5xx or a panic; a 201 stores one webhook in that account with its audit entry,
// a 4xx stores nothing.
func FuzzAccountWebhookCreate(f *testing.F) {
	for _, seed := range []string{
		`{"name":"n","url":"https://example.com/h","events":["*"]}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"surveyIds":["s1","s2"]}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"surveyIds":null}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"surveyIds":[]}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"surveyIds":["s1","s1"]}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"surveyIds":["a b"]}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"surveyIds":"s1"}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"surveyIds":[1]}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"surveyId":"s1"}`,
		`{"name":"n","url":"https://example.com/h","events":["*"],"accountId":"other"}`,
		`{"surveyIds":["` + string(bytes.Repeat([]byte("x"), 129)) + `"]}`,
		`[]`, `null`, `{`,
	} {
		f.Add([]byte(seed))
	}
	b := setup(f)
	const path = "/api/accounts/acme/webhooks"

	f.Fuzz(func(t *testing.T, body []byte) {
		before := countRows(t, b)
		rec := fuzzRequest(t, b, http.MethodPost, path, body)
		after := countRows(t, b)
		if rec.Code == http.StatusCreated {
			var created webhookResponse
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &created))
			require.Equal(t, "acme", created.AccountID)
			require.Empty(t, created.SurveyID)
			require.Equal(t, before["webhooks"]+1, after["webhooks"])
			require.Equal(t, before["audit_log"]+1, after["audit_log"])
			return
		}
		require.GreaterOrEqual(t, rec.Code, 400, rec.Body.String())
		require.Equal(t, before, after, "nothing stored on a %d", rec.Code)
	})
}

// FuzzKeyCreate posts arbitrary bodies to the key route: a 201 makes one key (and its
// audit entry) whose secret part is in the answer only, a 4xx makes nothing.
func FuzzKeyCreate(f *testing.F) {
	for _, seed := range []string{
		`{"name":"ci"}`, `{"name":"ci","expiresAt":"2099-01-01T00:00:00Z"}`,
		`{"name":"ci","expiresAt":"2000-01-01T00:00:00Z"}`, `{"name":"ci","expiresAt":"tomorrow"}`,
		`{"name":"ci","expiresAt":null}`, `{"name":""}`, `{"name":null}`, `{"name":"ci","scope":"all"}`,
		`{"name":"` + string(bytes.Repeat([]byte("n"), 300)) + `"}`, `{}`, `[]`, `"ci"`,
	} {
		f.Add([]byte(seed))
	}
	b := setup(f)

	f.Fuzz(func(t *testing.T, body []byte) {
		before := countRows(t, b)
		rec := fuzzRequest(t, b, http.MethodPost, "/api/accounts/acme/keys", body)
		after := countRows(t, b)
		if rec.Code == http.StatusCreated {
			var k keyResponse
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &k))
			require.Equal(t, before["api_keys"]+1, after["api_keys"])
			require.Equal(t, before["audit_log"]+1, after["audit_log"])
			var stored int
			require.NoError(t, b.db.GetContext(t.Context(), &stored,
				`SELECT count(*) FROM api_keys WHERE prefix = $1 AND position(convert_to($2, 'UTF8') in hash) = 0`, k.Prefix, k.Key))
			require.Equal(t, 1, stored)
			return
		}
		require.GreaterOrEqual(t, rec.Code, 400, rec.Body.String())
		require.Equal(t, before, after, "nothing stored on a %d", rec.Code)
	})
}

// FuzzAccountPaths sends arbitrary account, webhook and key ids in the paths of the
// account routes: never a 5xx or a panic, and nothing is written but for a request that
// succeeds (which, with ids nobody created, only the creations can).
func FuzzAccountPaths(f *testing.F) {
	for _, seed := range [][2]string{
		{"acme", "0190b0b0-0000-7000-8000-000000000000"}, {"ACME", "x"}, {"acme ", ""}, {"a%2Fb", "a/b"},
		{"..", ".."}, {"%00", "%ff"}, {"a\u202eb", "{0190b0b0-0000-7000-8000-000000000000}"},
		{string(bytes.Repeat([]byte("a"), 129)), "urn:uuid:0190b0b0-0000-7000-8000-000000000000"},
	} {
		f.Add(seed[0], seed[1])
	}
	b := setup(f)

	f.Fuzz(func(t *testing.T, account, id string) {
		a, i := url.PathEscape(account), url.PathEscape(id)
		for _, req := range []struct{ method, path, body string }{
			{http.MethodGet, "/api/accounts/" + a + "/webhooks/" + i, ""},
			{http.MethodPatch, "/api/accounts/" + a + "/webhooks/" + i, `{"name":"x"}`},
			{http.MethodDelete, "/api/accounts/" + a + "/webhooks/" + i, ""},
			{http.MethodPost, "/api/accounts/" + a + "/webhooks/" + i + "/secret/rotate", ""},
			{http.MethodGet, "/api/accounts/" + a + "/surveys/" + i + "/webhooks", ""},
			{http.MethodDelete, "/api/accounts/" + a + "/keys/" + i, ""},
			{http.MethodGet, "/api/accounts/" + a + "/events/" + i, ""},
			{http.MethodGet, "/api/accounts/" + a + "/events?cursor=" + i + "&since=" + i, ""},
			{http.MethodGet, "/api/accounts/" + a + "/deliveries?cursor=" + i + "&status=" + i, ""},
			{http.MethodGet, "/api/accounts?cursor=" + i, ""},
			{http.MethodGet, "/api/accounts/" + a + "/audit?limit=" + i, ""},
		} {
			before := countRows(t, b)
			httpReq := httptest.NewRequestWithContext(t.Context(), req.method, "/", bytes.NewReader([]byte(req.body)))
			httpReq.URL, _ = url.Parse(req.path)
			if httpReq.URL == nil {
				continue // not a URL a client could send
			}
			httpReq.RequestURI = req.path
			httpReq.Header.Set("Authorization", "Bearer "+testKey)
			httpReq.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			b.srv.Handler().ServeHTTP(rec, httpReq)
			require.Less(t, rec.Code, 500, "%s %s: %s", req.method, req.path, rec.Body.String())
			if rec.Code >= 400 {
				require.Equal(t, before, countRows(t, b), "nothing written on a %d", rec.Code)
			}
		}
	})
}
