package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
)

// validCreateBody is seed 001's create example with one of our event types.
const validCreateBody = `{"surveyId":"survey-1","name":"Patient Survey Completion",` +
	`"url":"https://your-system.example.com/webhooks/survey-complete",` +
	`"events":["survey.response.completed"],"secret":"your-webhook-secret","isActive":true}`

const webhooksPath = "/api/surveys/survey-1/webhooks"

func countWebhooks(t testing.TB, b *bundle) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.GetContext(t.Context(), &n, `SELECT count(*) FROM webhooks`))
	return n
}

// createWebhook creates a webhook through the API and returns its answer.
func createWebhook(t testing.TB, b *bundle, surveyID, body string) webhookResponse {
	t.Helper()
	resp := b.do(t, http.MethodPost, "/api/surveys/"+surveyID+"/webhooks", body)
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	return decode[webhookResponse](t, resp)
}

func TestWebhookLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// Create, with seed 001's body.
	resp := b.do(t, http.MethodPost, webhooksPath, validCreateBody)
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	require.Equal(t, "no-store", resp.header.Get("Cache-Control"))
	created := decode[webhookResponse](t, resp)
	require.Equal(t, uuid.Version(7), created.ID.Version())
	require.Equal(t, webhooksPath+"/"+created.ID.String(), resp.header.Get("Location"))
	require.Equal(t, "survey-1", created.SurveyID)
	require.Equal(t, "Patient Survey Completion", created.Name)
	require.Equal(t, "https://your-system.example.com/webhooks/survey-complete", created.URL)
	require.Equal(t, []string{"survey.response.completed"}, created.Events)
	require.Empty(t, created.Description)
	require.True(t, created.IsActive)
	require.Equal(t, "your-webhook-secret", created.Secret)
	require.WithinDuration(t, time.Now(), created.CreatedAt, time.Minute)
	require.Equal(t, created.CreatedAt, created.UpdatedAt)
	hookPath := webhooksPath + "/" + created.ID.String()

	// Get: everything but the secret, with the health of a webhook that got no attempt.
	resp = b.do(t, http.MethodGet, hookPath, "")
	require.Equal(t, http.StatusOK, resp.status)
	requireNoSecret(t, resp, "your-webhook-secret")
	got := decode[webhookResponse](t, resp)
	require.Nil(t, created.Health, "not in the create answer")
	want := created
	want.Secret = ""
	want.Health = &healthResponse{}
	require.Equal(t, want, got)

	// List: no secret either.
	resp = b.do(t, http.MethodGet, webhooksPath, "")
	require.Equal(t, http.StatusOK, resp.status)
	requireNoSecret(t, resp, "your-webhook-secret")
	list := decode[listResponse[webhookResponse]](t, resp)
	require.Equal(t, []webhookResponse{want}, list.Data)
	require.Nil(t, list.NextCursor)

	// Update one field: the others stay.
	resp = b.do(t, http.MethodPatch, hookPath, `{"name":"  Renamed  "}`)
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	requireNoSecret(t, resp, "your-webhook-secret")
	updated := decode[webhookResponse](t, resp)
	require.Equal(t, "Renamed", updated.Name, "trimmed")
	require.Equal(t, created.URL, updated.URL)
	require.Equal(t, created.Events, updated.Events)
	require.True(t, updated.IsActive)
	require.True(t, updated.UpdatedAt.After(created.UpdatedAt))

	// Update the rest.
	resp = b.do(t, http.MethodPatch, hookPath, `{"url":"https://new.example.com/h","events":["survey.*","form.submission.created"],`+
		`"description":"line one\nline two","isActive":false,"surveyId":"survey-1"}`)
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	updated = decode[webhookResponse](t, resp)
	require.Equal(t, "Renamed", updated.Name)
	require.Equal(t, "https://new.example.com/h", updated.URL)
	require.Equal(t, []string{"survey.*", "form.submission.created"}, updated.Events)
	require.Equal(t, "line one\nline two", updated.Description)
	require.False(t, updated.IsActive)

	// null clears the description.
	resp = b.do(t, http.MethodPatch, hookPath, `{"description":null}`)
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	require.Empty(t, decode[webhookResponse](t, resp).Description)

	// The secret has its own route.
	resp = b.do(t, http.MethodGet, hookPath+"/secret", "")
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, "no-store", resp.header.Get("Cache-Control"))
	require.JSONEq(t, `{"secret":"your-webhook-secret"}`, string(resp.body))

	// Delete, then it is gone.
	resp = b.do(t, http.MethodDelete, hookPath, "")
	require.Equal(t, http.StatusNoContent, resp.status)
	require.Empty(t, resp.body)
	for _, p := range []string{hookPath, hookPath + "/secret"} {
		resp = b.do(t, http.MethodGet, p, "")
		require.Equal(t, http.StatusNotFound, resp.status)
		require.Equal(t, "Webhook not found.", apiError(t, resp).Message)
	}
	resp = b.do(t, http.MethodDelete, hookPath, "")
	require.Equal(t, http.StatusNotFound, resp.status)
}

func requireNoSecret(t testing.TB, resp response, secret string) {
	t.Helper()
	require.NotContains(t, string(resp.body), secret)
	require.NotContains(t, string(resp.body), `"secret"`)
}

func TestWebhookCreateGeneratesSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)

	created := createWebhook(t, b, "survey-1", `{"name":"n","url":"https://example.com/h","events":["*"],"description":"d","isActive":false}`)
	require.True(t, strings.HasPrefix(created.Secret, "whsec_"), created.Secret)
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(created.Secret, "whsec_"))
	require.NoError(t, err)
	require.Len(t, key, 32)
	require.False(t, created.IsActive)
	require.Equal(t, "d", created.Description)

	stored, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	require.Equal(t, created.Secret, stored.Secret)

	other := createWebhook(t, b, "survey-1", `{"name":"n","url":"https://example.com/h","events":["*"],"secret":null}`)
	require.NotEqual(t, created.Secret, other.Secret)
	require.True(t, other.IsActive, "default")
}

// invalidCase is a request that must be refused with status, code and field names.
type invalidCase struct {
	name   string
	body   string
	edit   []func(*http.Request)
	status int
	fields []string
}

func createCases() []invalidCase {
	long := func(n int) string { return strings.Repeat("a", n) }
	bad := func(name, body string, fields ...string) invalidCase {
		return invalidCase{name: name, body: body, status: http.StatusBadRequest, fields: fields}
	}
	body := func(members string) string {
		base := map[string]string{
			"name": `"n"`, "url": `"https://example.com/h"`, "events": `["*"]`,
		}
		var parts []string
		for _, m := range strings.Split(members, ";") {
			if m == "" {
				continue
			}
			k, v, _ := strings.Cut(m, "=")
			if v == "-" {
				delete(base, k)
				continue
			}
			base[k] = v
		}
		for _, k := range []string{"name", "url", "events"} {
			if v, ok := base[k]; ok {
				parts = append(parts, fmt.Sprintf("%q:%s", k, v))
				delete(base, k)
			}
		}
		keys := make([]string, 0, len(base))
		for k := range base {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%q:%s", k, base[k]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return []invalidCase{
		bad("name missing", body("name=-"), "name"),
		bad("name null", body("name=null"), "name"),
		bad("name empty", body(`name=""`), "name"),
		bad("name blank", body(`name="   "`), "name"),
		bad("name too long", body(`name="`+long(201)+`"`), "name"),
		bad("name control character", body(`name="a\u0000b"`), "name"),
		bad("name not a string", body(`name=5`), "name"),
		bad("url missing", body("url=-"), "url"),
		bad("url null", body("url=null"), "url"),
		bad("url http", body(`url="http://example.com/h"`), "url"),
		bad("url relative", body(`url="/h"`), "url"),
		bad("url credentials", body(`url="https://u:p@example.com/h"`), "url"),
		bad("url loopback", body(`url="https://127.0.0.1/h"`), "url"),
		bad("url metadata", body(`url="https://169.254.169.254/latest"`), "url"),
		bad("url private v6", body(`url="https://[fd00::1]/h"`), "url"),
		bad("url too long", body(`url="https://example.com/`+long(2048)+`"`), "url"),
		bad("url bad port", body(`url="https://example.com:99999/h"`), "url"),
		bad("url not a string", body(`url=["https://example.com"]`), "url"),
		bad("events missing", body("events=-"), "events"),
		bad("events null", body("events=null"), "events"),
		bad("events empty", body("events=[]"), "events"),
		bad("events unknown", body(`events=["survey.response_completed"]`), "events[0]"),
		bad("events test type", body(`events=["webhook.test"]`), "events[0]"),
		bad("events wildcard matching nothing", body(`events=["form.response.*"]`), "events[0]"),
		bad("events bad wildcard", body(`events=["survey*"]`), "events[0]"),
		bad("events duplicate", body(`events=["*","form.*","*"]`), "events[2]"),
		bad("events too many", body(`events=[`+strings.Repeat(`"*",`, 20)+`"*"]`), "events"),
		bad("events too long entry", body(`events=["`+long(101)+`"]`), "events[0]"),
		bad("events not an array", body(`events="*"`), "events"),
		bad("events of numbers", body(`events=[1]`), "events"),
		bad("description too long", body(`description="`+long(1001)+`"`), "description"),
		bad("description control character", body(`description="a\u0007b"`), "description"),
		bad("isActive null", body(`isActive=null`), "isActive"),
		bad("isActive string", body(`isActive="true"`), "isActive"),
		bad("secret too short", body(`secret="short-secret"`), "secret"),
		bad("secret too long", body(`secret="`+long(257)+`"`), "secret"),
		bad("secret with space", body(`secret="sixteen chars long"`), "secret"),
		bad("secret not ASCII", body(`secret="sixteen-chars-long-é"`), "secret"),
		bad("surveyId mismatch", body(`surveyId="survey-2"`), "surveyId"),
		bad("surveyId null", body(`surveyId=null`), "surveyId"),
		bad("unknown field", body(`id="0190f5a2-7c1e-7d3a-9b1a-2f4c5d6e7f80"`), "id"),
		bad("unknown fields", body(`zeta=1;alpha=2`), "alpha", "zeta"),
		bad("field names are case-sensitive", body(`name=-;Name="n"`), "name", "Name"),
		bad("several errors at once", body(`name="";url="ftp://x";events=[];extra=1`), "extra", "name", "url", "events"),
		bad("empty body", ""),
		bad("null", "null"),
		bad("array", "[]"),
		bad("string", `"hello"`),
		bad("rateLimit not an object", body(`rateLimit=5`), "rateLimit"),
		bad("rateLimit without perSecond", body(`rateLimit={"burst":2}`), "rateLimit.perSecond"),
		bad("rateLimit zero", body(`rateLimit={"perSecond":0}`), "rateLimit.perSecond"),
		bad("rateLimit negative", body(`rateLimit={"perSecond":-1}`), "rateLimit.perSecond"),
		bad("rateLimit too high", body(`rateLimit={"perSecond":10001}`), "rateLimit.perSecond"),
		bad("rateLimit burst zero", body(`rateLimit={"perSecond":5,"burst":0}`), "rateLimit.burst"),
		bad("rateLimit burst fraction", body(`rateLimit={"perSecond":5,"burst":1.5}`), "rateLimit.burst"),
		bad("rateLimit burst null", body(`rateLimit={"perSecond":5,"burst":null}`), "rateLimit.burst"),
		bad("rateLimit unknown member", body(`rateLimit={"perSecond":5,"perMinute":300}`), "rateLimit.perMinute"),
		bad("malformed", `{"name": "n",}`),
		bad("truncated", `{"name": "n"`),
		bad("trailing data", body("")+` {}`),
		bad("trailing garbage", body("")+`x`),
		bad("invalid UTF-8", "{\"name\":\"\xff\xfe\",\"url\":\"https://example.com/h\",\"events\":[\"*\"]}"),
		{name: "no content type", body: body(""), edit: []func(*http.Request){withHeader("Content-Type", "")}, status: http.StatusUnsupportedMediaType},
		{name: "text content type", body: body(""), edit: []func(*http.Request){withHeader("Content-Type", "text/plain")}, status: http.StatusUnsupportedMediaType},
		{name: "latin-1 charset", body: body(""), edit: []func(*http.Request){withHeader("Content-Type", "application/json; charset=iso-8859-1")}, status: http.StatusUnsupportedMediaType},
		{name: "too large", body: body(`description="` + long(2<<20) + `"`), status: http.StatusRequestEntityTooLarge},
	}
}

func TestWebhookCreateValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for _, tt := range createCases() {
		t.Run(tt.name, func(t *testing.T) {
			resp := b.do(t, http.MethodPost, webhooksPath, tt.body, tt.edit...)
			require.Equal(t, tt.status, resp.status, string(resp.body))
			e := apiError(t, resp)
			require.ElementsMatch(t, tt.fields, fieldNames(e), string(resp.body))
			require.Equal(t, 0, countWebhooks(t, b), "nothing written")
		})
	}

	// The same validation accepts its valid twin (so the cases above fail for their reason).
	createWebhook(t, b, "survey-1", `{"name":"n","url":"https://example.com/h","events":["*"]}`)
}

func TestWebhookCreateErrorMessages(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.do(t, http.MethodPost, webhooksPath, "{\n  \"name\": \"n\",\n  \"url\": x\n}")
	e := apiError(t, resp)
	require.Contains(t, e.Message, "not valid JSON")
	require.Contains(t, e.Message, "line 3, column 11")

	resp = b.do(t, http.MethodPost, webhooksPath, `{"name":"n","url":"http://example.com/h","events":["survey.nope"]}`)
	e = apiError(t, resp)
	require.Equal(t, []FieldError{
		{Field: "url", Message: "must use https"},
		{Field: "events[0]", Message: `"survey.nope" is not a known event type or wildcard (see GET /api/event-types)`},
	}, e.Fields)
}

func TestWebhookInvalidPath(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.do(t, http.MethodPost, "/api/surveys/"+strings.Repeat("s", 129)+"/webhooks", validCreateBody)
	require.Equal(t, http.StatusBadRequest, resp.status)
	require.Equal(t, []string{"surveyId"}, fieldNames(apiError(t, resp)))
	resp = b.do(t, http.MethodGet, "/api/surveys/a%20b/webhooks", "")
	require.Equal(t, http.StatusBadRequest, resp.status)
	require.Equal(t, 0, countWebhooks(t, b))

	created := createWebhook(t, b, "survey-1", validCreateBody)
	for _, id := range []string{"not-a-uuid", "123", strings.ReplaceAll(created.ID.String(), "-", ""), "{" + created.ID.String() + "}"} {
		resp := b.do(t, http.MethodGet, webhooksPath+"/"+id, "")
		require.Equal(t, http.StatusNotFound, resp.status, id)
		require.Equal(t, CodeNotFound, apiError(t, resp).Code)
	}
	resp = b.do(t, http.MethodGet, webhooksPath+"/"+strings.ToUpper(created.ID.String()), "")
	require.Equal(t, http.StatusOK, resp.status, "upper-case UUIDs are the same id")
}

func TestWebhookUpdateValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", `{"name":"n","url":"https://example.com/h","events":["*"],"description":"keep me"}`)
	path := webhooksPath + "/" + created.ID.String()
	before, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)

	bad := func(name, body string, fields ...string) invalidCase {
		return invalidCase{name: name, body: body, status: http.StatusBadRequest, fields: fields}
	}
	cases := []invalidCase{
		bad("name null", `{"name":null}`, "name"),
		bad("name empty", `{"name":" "}`, "name"),
		bad("url null", `{"url":null}`, "url"),
		bad("url http", `{"url":"http://example.com/h"}`, "url"),
		bad("url private", `{"url":"https://10.0.0.1/h"}`, "url"),
		bad("events null", `{"events":null}`, "events"),
		bad("events empty", `{"events":[]}`, "events"),
		bad("events unknown", `{"events":["*","nope"]}`, "events[1]"),
		bad("isActive null", `{"isActive":null}`, "isActive"),
		bad("isActive number", `{"isActive":1}`, "isActive"),
		bad("description too long", `{"description":"`+strings.Repeat("d", 1001)+`"}`, "description"),
		bad("secret", `{"secret":"a-new-secret-0123456789"}`, "secret"),
		bad("surveyId other", `{"surveyId":"survey-2"}`, "surveyId"),
		bad("unknown field", `{"createdAt":"2024-01-01T00:00:00Z"}`, "createdAt"),
		bad("valid and invalid together", `{"name":"ok","url":"https://u@example.com"}`, "url"),
		bad("rateLimit without perSecond", `{"rateLimit":{}}`, "rateLimit.perSecond"),
		bad("rateLimit and an invalid name", `{"rateLimit":{"perSecond":5},"name":""}`, "name"),
		bad("empty body", ""),
		bad("not an object", `["name"]`),
		bad("trailing data", `{"name":"x"}{"name":"y"}`),
		{name: "wrong content type", body: `{"name":"x"}`, edit: []func(*http.Request){withHeader("Content-Type", "application/xml")}, status: http.StatusUnsupportedMediaType},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			resp := b.do(t, http.MethodPatch, path, tt.body, tt.edit...)
			require.Equal(t, tt.status, resp.status, string(resp.body))
			require.ElementsMatch(t, tt.fields, fieldNames(apiError(t, resp)), string(resp.body))
			after, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
			require.NoError(t, err)
			require.Equal(t, before, after, "nothing written")
		})
	}

	// An empty object is a valid PATCH that changes nothing.
	resp := b.do(t, http.MethodPatch, path, `{}`)
	require.Equal(t, http.StatusOK, resp.status)
	after, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	require.Equal(t, before, after)
}

func TestWebhookCrossSurveyIsNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", validCreateBody)
	before, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)

	other := "/api/surveys/survey-2/webhooks/" + created.ID.String()
	for _, tt := range []struct{ method, path, body string }{
		{http.MethodGet, other, ""},
		{http.MethodPatch, other, `{"name":"stolen"}`},
		{http.MethodDelete, other, ""},
		{http.MethodGet, other + "/secret", ""},
		{http.MethodPost, other + "/secret/rotate", ""},
	} {
		resp := b.do(t, tt.method, tt.path, tt.body)
		require.Equal(t, http.StatusNotFound, resp.status, tt.method+" "+tt.path)
		require.Equal(t, CodeNotFound, apiError(t, resp).Code)
		require.NotContains(t, string(resp.body), before.Secret)
	}
	resp := b.do(t, http.MethodGet, "/api/surveys/survey-2/webhooks", "")
	require.JSONEq(t, `{"data":[],"nextCursor":null}`, string(resp.body))

	after, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	require.Equal(t, before, after)
}

func TestWebhookListPagination(t *testing.T) {
	t.Parallel()
	b := setup(t)

	var want []uuid.UUID
	for i := range 7 {
		w := createWebhook(t, b, "survey-1", fmt.Sprintf(`{"name":"hook %d","url":"https://example.com/%d","events":["*"]}`, i, i))
		want = append(want, w.ID)
		createWebhook(t, b, "survey-2", `{"name":"other","url":"https://example.com/o","events":["*"]}`)
	}

	var got []uuid.UUID
	var sizes []int
	path := webhooksPath + "?limit=3"
	for range 10 {
		resp := b.do(t, http.MethodGet, path, "")
		require.Equal(t, http.StatusOK, resp.status, string(resp.body))
		requireNoSecret(t, resp, "whsec_")
		page := decode[listResponse[webhookResponse]](t, resp)
		sizes = append(sizes, len(page.Data))
		for _, w := range page.Data {
			require.Equal(t, "survey-1", w.SurveyID)
			got = append(got, w.ID)
		}
		if page.NextCursor == nil {
			break
		}
		path = webhooksPath + "?limit=3&cursor=" + *page.NextCursor
	}
	require.Equal(t, []int{3, 3, 1}, sizes)
	require.Equal(t, want, got, "creation order, no duplicates, nothing missing")

	// Asking again gives the same pages.
	resp := b.do(t, http.MethodGet, webhooksPath+"?limit=3", "")
	first := decode[listResponse[webhookResponse]](t, resp)
	require.Equal(t, want[:3], []uuid.UUID{first.Data[0].ID, first.Data[1].ID, first.Data[2].ID})

	// A page that ends exactly at the last webhook has no next cursor.
	resp = b.do(t, http.MethodGet, webhooksPath+"?limit=7", "")
	page := decode[listResponse[webhookResponse]](t, resp)
	require.Len(t, page.Data, 7)
	require.Nil(t, page.NextCursor)
	resp = b.do(t, http.MethodGet, webhooksPath+"?limit=200", "")
	require.Equal(t, http.StatusOK, resp.status)

	for _, q := range []string{"limit=0", "limit=201", "limit=-1", "limit=abc", "limit=", "limit=1.5",
		"cursor=", "cursor=***", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("short")), "cursor=" + want[0].String()} {
		resp := b.do(t, http.MethodGet, webhooksPath+"?"+q, "")
		require.Equal(t, http.StatusBadRequest, resp.status, q)
		e := apiError(t, resp)
		require.Len(t, e.Fields, 1, q)
		require.Contains(t, []string{"limit", "cursor"}, e.Fields[0].Field)
	}
}

func TestWebhookListDefaultLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range defaultListLimit + 1 {
		_, err := b.store.CreateWebhook(t.Context(), store.Webhook{
			AccountID: store.DefaultAccount, SurveyID: "survey-1", Name: fmt.Sprint(i), URL: "https://example.com/h",
			Events: []string{"*"}, IsActive: true, Secret: "whsec_x",
		})
		require.NoError(t, err)
	}
	resp := b.do(t, http.MethodGet, webhooksPath, "")
	page := decode[listResponse[webhookResponse]](t, resp)
	require.Len(t, page.Data, defaultListLimit)
	require.NotNil(t, page.NextCursor)
	resp = b.do(t, http.MethodGet, webhooksPath+"?cursor="+*page.NextCursor, "")
	page = decode[listResponse[webhookResponse]](t, resp)
	require.Len(t, page.Data, 1)
	require.Equal(t, "50", page.Data[0].Name)
	require.Nil(t, page.NextCursor)
}

func TestWebhookConcurrentCreates(t *testing.T) {
	t.Parallel()
	b := setup(t)

	const n = 20
	ids := make([]uuid.UUID, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp := b.do(t, http.MethodPost, webhooksPath, fmt.Sprintf(`{"name":"hook %d","url":"https://example.com/h","events":["*"]}`, i))
			if !assertStatus(t, http.StatusCreated, resp) {
				return
			}
			ids[i] = decode[webhookResponse](t, resp).ID
		})
	}
	wg.Wait()
	require.Equal(t, n, countWebhooks(t, b))

	resp := b.do(t, http.MethodGet, webhooksPath+"?limit=200", "")
	page := decode[listResponse[webhookResponse]](t, resp)
	listed := make([]uuid.UUID, 0, n)
	for _, w := range page.Data {
		listed = append(listed, w.ID)
	}
	require.ElementsMatch(t, ids, listed, "every create answered with its stored id")
	require.True(t, slices.IsSortedFunc(listed, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) }))
}

// assertStatus checks a status from a goroutine other than the test's (no FailNow).
func assertStatus(t *testing.T, want int, resp response) bool {
	if resp.status != want {
		t.Errorf("status %d, want %d: %s", resp.status, want, resp.body)
		return false
	}
	return true
}

func TestWebhookSecretRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", validCreateBody)
	path := webhooksPath + "/" + created.ID.String()

	// No body: a generated secret, the old one kept for the default overlap (24 h).
	resp := b.do(t, http.MethodPost, path+"/secret/rotate", "")
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	require.Equal(t, "no-store", resp.header.Get("Cache-Control"))
	rotated := decode[secretResponse](t, resp)
	require.True(t, strings.HasPrefix(rotated.Secret, "whsec_"))
	require.NotNil(t, rotated.PreviousSecretExpiresAt)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), *rotated.PreviousSecretExpiresAt, time.Minute)

	stored, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	require.Equal(t, rotated.Secret, stored.Secret)
	require.Equal(t, "your-webhook-secret", *stored.PreviousSecret)
	require.Equal(t, []string{rotated.Secret, "your-webhook-secret"}, stored.SigningSecrets(time.Now()))

	resp = b.do(t, http.MethodGet, path+"/secret", "")
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, rotated, decode[secretResponse](t, resp))

	// Rotating again during the overlap is refused: it would drop the secret before it.
	resp = b.do(t, http.MethodPost, path+"/secret/rotate", `{"secret":"my-own-secret-0123456789","overlapSeconds":60}`)
	require.Equal(t, http.StatusConflict, resp.status, string(resp.body))
	require.Contains(t, apiError(t, resp).Message, rotated.PreviousSecretExpiresAt.UTC().Format(time.RFC3339))

	// Own secret and overlap, once the overlap is over.
	_, err = b.db.ExecContext(t.Context(), `UPDATE webhooks SET previous_secret_expires_at = now() - interval '1 second'`)
	require.NoError(t, err)
	resp = b.do(t, http.MethodPost, path+"/secret/rotate", `{"secret":"my-own-secret-0123456789","overlapSeconds":60}`)
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	own := decode[secretResponse](t, resp)
	require.Equal(t, "my-own-secret-0123456789", own.Secret)
	require.WithinDuration(t, time.Now().Add(time.Minute), *own.PreviousSecretExpiresAt, 30*time.Second)
	stored, err = b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	require.Equal(t, rotated.Secret, *stored.PreviousSecret)

	// Invalid rotations change nothing.
	for _, tt := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"overlapSeconds":-1}`, http.StatusBadRequest, "overlapSeconds"},
		{`{"overlapSeconds":604801}`, http.StatusBadRequest, "overlapSeconds"},
		{`{"overlapSeconds":1.5}`, http.StatusBadRequest, "overlapSeconds"},
		{`{"overlapSeconds":"60"}`, http.StatusBadRequest, "overlapSeconds"},
		{`{"overlapSeconds":null}`, http.StatusBadRequest, "overlapSeconds"},
		{`{"secret":"short"}`, http.StatusBadRequest, "secret"},
		{`{"secret":7}`, http.StatusBadRequest, "secret"},
		{`{"overlap":60}`, http.StatusBadRequest, "overlap"},
		{`[]`, http.StatusBadRequest, ""},
	} {
		resp := b.do(t, http.MethodPost, path+"/secret/rotate", tt.body)
		require.Equal(t, tt.status, resp.status, tt.body)
		e := apiError(t, resp)
		if tt.field != "" {
			require.Equal(t, []string{tt.field}, fieldNames(e), tt.body)
		}
	}
	resp = b.do(t, http.MethodPost, path+"/secret/rotate", `{}`, withHeader("Content-Type", "text/plain"))
	require.Equal(t, http.StatusUnsupportedMediaType, resp.status)
	after, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	require.Equal(t, stored, after)

	// No overlap, even during one: the previous secret is gone at once.
	resp = b.do(t, http.MethodPost, path+"/secret/rotate", `{"overlapSeconds":0}`)
	require.Equal(t, http.StatusOK, resp.status)
	require.NotContains(t, string(resp.body), "previousSecretExpiresAt")
	stored, err = b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	require.Nil(t, stored.PreviousSecret)
	require.Len(t, stored.SigningSecrets(time.Now()), 1)
}

func TestWebhookRotationOverlapDefaultFromConfig(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.SecretOverlap = time.Hour })
	created := createWebhook(t, b, "survey-1", validCreateBody)
	resp := b.do(t, http.MethodPost, webhooksPath+"/"+created.ID.String()+"/secret/rotate", `{}`)
	require.Equal(t, http.StatusOK, resp.status)
	rotated := decode[secretResponse](t, resp)
	require.WithinDuration(t, time.Now().Add(time.Hour), *rotated.PreviousSecretExpiresAt, time.Minute)
}

func TestWebhookDeleteRemovesHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	doomed := createWebhook(t, b, "survey-1", validCreateBody)
	kept := createWebhook(t, b, "survey-1", validCreateBody)

	ctx := t.Context()
	eventID := "evt-1"
	_, err := b.db.ExecContext(ctx, `INSERT INTO events (id, account_id, event_type, survey_id, body) VALUES ($1, 'default', 'survey.response.completed', 'survey-1', '{}')`, eventID)
	require.NoError(t, err)
	for _, hook := range []uuid.UUID{doomed.ID, kept.ID} {
		deliveryID := uuid.New()
		_, err = b.db.ExecContext(ctx, `INSERT INTO deliveries (id, account_id, event_id, webhook_id) VALUES ($1, 'default', $2, $3)`, deliveryID, eventID, hook)
		require.NoError(t, err)
		_, err = b.db.ExecContext(ctx, `INSERT INTO delivery_attempts
			(id, delivery_id, number, trigger, started_at, duration_ms, request_url, request_headers, request_body)
			VALUES ($1, $2, 1, 'auto', now(), 2, 'https://example.com', '{}', '{}')`, uuid.New(), deliveryID)
		require.NoError(t, err)
	}
	history := func(hook uuid.UUID) (deliveries, attempts int) {
		require.NoError(t, b.db.GetContext(ctx, &deliveries, `SELECT count(*) FROM deliveries WHERE webhook_id = $1`, hook))
		require.NoError(t, b.db.GetContext(ctx, &attempts,
			`SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = $1`, hook))
		return deliveries, attempts
	}
	d, a := history(doomed.ID)
	require.Equal(t, []int{1, 1}, []int{d, a})

	resp := b.do(t, http.MethodDelete, webhooksPath+"/"+doomed.ID.String(), "")
	require.Equal(t, http.StatusNoContent, resp.status)

	d, a = history(doomed.ID)
	require.Equal(t, []int{0, 0}, []int{d, a}, "the deleted webhook's history is gone")
	d, a = history(kept.ID)
	require.Equal(t, []int{1, 1}, []int{d, a}, "other webhooks keep theirs")
}

func TestWebhookMaxBodyBytes(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.MaxBodyBytes = 64 })
	resp := b.do(t, http.MethodPost, webhooksPath, validCreateBody)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.status)
	require.Equal(t, CodePayloadTooLarge, apiError(t, resp).Code)
	require.Equal(t, 0, countWebhooks(t, b))
	resp = b.do(t, http.MethodPost, webhooksPath, `{"name":"n","url":"https://a.io","events":["*"]}`)
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
}

// A webhook's rate limit is set at creation, shown, changed, kept by other changes and
// removed with null.
func TestWebhookRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", `{"name":"n","url":"https://example.com/h","events":["*"],"rateLimit":{"perSecond":2.5}}`)
	require.Equal(t, &rateLimitResponse{PerSecond: 2.5, Burst: 1}, created.RateLimit, "burst defaults to 1")
	path := webhooksPath + "/" + created.ID.String()
	for _, step := range []struct {
		body string
		want *rateLimitResponse
	}{
		{`{"rateLimit":{"perSecond":5,"burst":10}}`, &rateLimitResponse{PerSecond: 5, Burst: 10}},
		{`{"name":"renamed"}`, &rateLimitResponse{PerSecond: 5, Burst: 10}},
		{`{"rateLimit":null}`, nil},
	} {
		resp := b.do(t, http.MethodPatch, path, step.body)
		require.Equal(t, http.StatusOK, resp.status, string(resp.body))
		require.Equal(t, step.want, decode[webhookResponse](t, resp).RateLimit, step.body)
		resp = b.do(t, http.MethodGet, path, "")
		require.Contains(t, string(resp.body), `"rateLimit":`, "shown, null when none")
	}
}
