package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/jsoncanon"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

const eventsPath = "/api/events"

// validEventBody is a publish request that is accepted.
const validEventBody = `{"event_type":"survey.response.completed","survey_id":"survey-1",` +
	`"data":{"survey":{"id":"survey-1","title":"NPS"},"response":{"id":"r-1","answers":[{"questionId":"q1","value":9}]}}}`

// setupPublish is setup with a Temporal server, so that accepted events start their
// workflow (no worker runs them: these tests look at what the API answers and stores).
func setupPublish(t testing.TB) *bundle {
	t.Helper()
	te := testenv.Temporal(t)
	db := testenv.Postgres(t)
	st := store.New(db, testenv.Keyring())
	d := delivery.New(st, te.Client, delivery.Config{TaskQueue: te.TaskQueue, Schedule: delivery.Schedule{Delays: []time.Duration{time.Second, time.Second}, AttemptTimeout: time.Second}}, nil)
	logs := &syncBuffer{}
	srv := New(Config{APIKeys: []string{testKey}}, st, d, slog.New(slog.NewJSONHandler(logs, nil)))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &bundle{db: db, store: st, srv: srv, http: ts, logs: logs}
}

func countEvents(t testing.TB, b *bundle) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.GetContext(t.Context(), &n, `SELECT count(*) FROM events`))
	return n
}

// FuzzEventPublish posts arbitrary bodies to POST /api/events: never a 5xx or a panic; a
// 201 or 202 stores exactly one event with a valid JSON envelope, a 200 (same event_id
// again) stores nothing new, and a 4xx stores nothing.
func FuzzEventPublish(f *testing.F) {
	for _, seed := range []string{
		validEventBody,
		`{"event_id":"evt-1","event_type":"survey.response.updated","survey_id":"s","data":{}}`,
		`{"event_id":"evt-1","event_type":"survey.response.updated","survey_id":"s","data":{}}`,
		`{"event_type":"form.submission.created","survey_id":"s","data":{"a":[1,2,{"b":null}]}}`,
		`{"event_type":"webhook.test","survey_id":"s","data":{}}`,
		`{"event_type":"survey.response.*","survey_id":"s","data":{}}`,
		`{"event_id":"","event_type":"survey.response.completed","survey_id":"s","data":{}}`,
		`{"event_id":"a/b","event_type":"survey.response.completed","survey_id":"s","data":{}}`,
		`{"account_id":"acme","event_type":"survey.response.completed","survey_id":"s","data":{}}`,
		`{"account_id":"","event_type":"survey.response.completed","survey_id":"s","data":{}}`,
		`{"account_id":null,"event_type":"survey.response.completed","survey_id":"s","data":{}}`,
		`{"account_id":"acme ","event_type":"survey.response.completed","survey_id":"s","data":{}}`,
		`{"account_id":"a/b","event_type":"survey.response.completed","survey_id":"s","data":{}}`,
		`{"account_id":7,"event_type":"survey.response.completed","survey_id":"s","data":{}}`,
		`{"event_id":null,"event_type":null,"survey_id":null,"data":null}`,
		`{"event_type":1,"survey_id":[],"data":"x"}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":[]}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{},"extra":1}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"n":1e999}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"s":"\u0000\ud800"}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{}} {}`,
		"{\"event_type\":\"survey.response.completed\",\"survey_id\":\"s\",\"data\":{\"x\":\"\xff\"}}",
		`{"data":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200) + `}`,
		// At and just past the depth limit of data.
		`{"event_type":"survey.response.completed","survey_id":"s","data":` + nested(maxDepth) + `}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":` + nested(maxDepth+1) + `}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}}`,
		// Repeated member names, at the top and inside data, plainly and escaped.
		`{"event_type":"survey.response.completed","survey_id":"s","survey_id":"t","data":{}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"a":1,"a":2}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"a":1,"\u0061":2}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"a":{"b":1},"c":{"b":1}}}`,
		// Surrogates: lone, reversed, escaped backslash, and a valid pair.
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"s":"\ud800"}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"s":"\udc00\ud800"}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"s":"\\ud800"}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"s":"\ud83d\ude00"}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"\udbff":1}}`,
		// Numbers at and past the edge of float64.
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"n":1.7976931348623157e308,"m":-1e-400}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"n":[-1e400]}}`,
		// Numbers that a double changes, and numbers it holds however they are spelled.
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"a":[{"v":9007199254740993}]}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"n":1.00000000000000001,"m":1e-400}}`,
		`{"event_type":"survey.response.completed","survey_id":"s","data":{"a":0.1,"b":1.0,"c":1e3,"d":-0,"e":1E-7}}`,
		// What JavaScript writes differently from encoding/json.
		"{\"event_type\":\"survey.response.completed\",\"survey_id\":\"s\",\"data\":{\"b\":\"<b>&\\u00e9\u2028\",\"1\":{\"0\":1,\"01\":2},\"0\":\"\\u003c\"}}",
		strings.Repeat("[", 1000),
		``, `null`, `[]`, `"x"`, `{`, `{"a":`,
	} {
		f.Add([]byte(seed))
	}
	b := setupPublish(f)

	f.Fuzz(func(t *testing.T, body []byte) {
		before := countEvents(t, b)
		rec := fuzzRequest(t, b, http.MethodPost, eventsPath, body)
		after := countEvents(t, b)
		switch rec.Code {
		case http.StatusCreated, http.StatusAccepted:
			require.Equal(t, before+1, after)
			var ev eventResponse
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ev), rec.Body.String())
			stored, err := b.store.GetEvent(t.Context(), ev.EventID)
			require.NoError(t, err)
			require.True(t, json.Valid(stored.Body), "the stored envelope is JSON")
			// Compared as bytes: the answer shows the envelope as stored.
			var want, got bytes.Buffer
			require.NoError(t, json.Compact(&want, stored.Body))
			require.NoError(t, json.Compact(&got, ev.Payload))
			require.Equal(t, want.String(), got.String())
			// The envelope is in canonical form, and its data is the canonical form of the
			// data sent.
			canonical, err := jsoncanon.Canonical(stored.Body)
			require.NoError(t, err)
			require.Equal(t, string(canonical), string(stored.Body))
			var sent, envelope struct {
				Data json.RawMessage `json:"data"`
			}
			require.NoError(t, json.Unmarshal(body, &sent))
			require.NoError(t, json.Unmarshal(stored.Body, &envelope))
			data, err := jsoncanon.Canonical(sent.Data)
			require.NoError(t, err)
			require.Equal(t, string(data), string(envelope.Data))
		case http.StatusOK:
			require.Equal(t, before, after, "the same event_id again stores nothing")
		default:
			require.GreaterOrEqual(t, rec.Code, 400, rec.Body.String())
			require.Equal(t, before, after, "nothing stored on a %d", rec.Code)
		}
	})
}

// TestEventPublishBadInput sends what a broken or hostile publisher might: each gets its
// 4xx as JSON, over a real connection, and nothing is stored.
func TestEventPublishBadInput(t *testing.T) {
	t.Parallel()
	b := setupPublish(t)
	huge := `{"event_type":"survey.response.completed","survey_id":"s","data":{"x":"` +
		strings.Repeat("a", DefaultMaxBodyBytes) + `"}}`
	for _, tc := range []struct {
		name        string
		body        string
		contentType string
		want        []int
	}{
		{"oversized", huge, "application/json", []int{http.StatusRequestEntityTooLarge}},
		{"text/plain", validEventBody, "text/plain", []int{http.StatusUnsupportedMediaType}},
		{"form", "event_type=survey.response.completed", "application/x-www-form-urlencoded", []int{http.StatusUnsupportedMediaType}},
		{"no content type", validEventBody, "", []int{http.StatusUnsupportedMediaType}},
		{"latin-1", validEventBody, "application/json; charset=iso-8859-1", []int{http.StatusUnsupportedMediaType}},
		{"invalid UTF-8", "{\"event_type\":\"survey.response.completed\",\"survey_id\":\"s\",\"data\":{\"x\":\"\xc3\x28\"}}", "application/json", []int{http.StatusBadRequest}},
		{"invalid UTF-8 in a name", "{\"event_type\":\"survey.response.completed\",\"survey_id\":\"s\",\"data\":{\"\xff\":1}}", "application/json", []int{http.StatusBadRequest}},
		{"100k [", strings.Repeat("[", 100_000), "application/json", []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}},
		{"100k nested objects in data", `{"event_type":"survey.response.completed","survey_id":"s","data":` +
			strings.Repeat(`{"a":`, 100_000) + `1` + strings.Repeat(`}`, 100_000) + `}`, "application/json",
			[]int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}},
		{"1M [", strings.Repeat("[", 1_000_000), "application/json", []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}},
		{"empty", "", "application/json", []int{http.StatusBadRequest}},
		{"two objects", validEventBody + validEventBody, "application/json", []int{http.StatusBadRequest}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countEvents(t, b)
			resp := b.do(t, http.MethodPost, eventsPath, "", func(r *http.Request) {
				r.Body = nil
				if tc.body != "" {
					r.Body = readCloser{bytes.NewReader([]byte(tc.body))}
					r.ContentLength = int64(len(tc.body))
				}
				r.Header.Del("Content-Type")
				if tc.contentType != "" {
					r.Header.Set("Content-Type", tc.contentType)
				}
			})
			t.Logf("%d bytes: %d", len(tc.body), resp.status)
			require.Contains(t, tc.want, resp.status, string(resp.body))
			apiError(t, resp)
			require.Equal(t, before, countEvents(t, b), "nothing stored")
		})
	}

}

// TestEventPublishDataLimits publishes data that encoding/json accepts but a receiver would
// read differently or not at all: each is a 400 naming the problem, and nothing is stored.
// data at the depth limit is stored exactly as sent.
func TestEventPublishDataLimits(t *testing.T) {
	t.Parallel()
	b := setupPublish(t)
	publish := func(data string) response {
		return b.do(t, http.MethodPost, eventsPath,
			`{"event_type":"survey.response.completed","survey_id":"s","data":`+data+`}`)
	}
	for _, tc := range []struct {
		name, data, message string
		// field names a refused number by its JSON pointer, without the leading '/'.
		field string
	}{
		{"9,000 levels of nesting", `{"x":` + strings.Repeat("[", 9_000) + strings.Repeat("]", 9_000) + `}`,
			"nests objects and arrays more than 64 levels deep", ""},
		{"one level past the limit", nested(maxDepth + 1), "nests objects and arrays more than 64 levels deep", ""},
		{"number past float64", `{"n":1e400}`, "a number that does not fit a 64-bit float", "data/n"},
		{"number past float64 in an array", `{"a":[1,{"n~/":-1.5E+309}]}`, "a number that does not fit a 64-bit float", "data/a/1/n~0~1"},
		{"integer past 2^53", `{"answers":[{"value":1},{"value":9007199254740993}]}`,
			"The number at /data/answers/1/value changes when read as a 64-bit float", "data/answers/1/value"},
		{"more digits than a double keeps", `{"score":1.00000000000000001}`, "The number at /data/score changes", "data/score"},
		{"number that underflows to zero", `{"tiny":[-1e-400]}`, "The number at /data/tiny/0 changes", "data/tiny/0"},
		{"repeated member", `{"answers":[{"q":1,"q":2}]}`, `repeats the member "q"`, ""},
		{"lone surrogate", `{"comment":"\ud800"}`, `an escaped lone surrogate (\ud800)`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countEvents(t, b)
			resp := publish(tc.data)
			require.Equal(t, http.StatusBadRequest, resp.status, string(resp.body))
			e := apiError(t, resp)
			require.Equal(t, CodeInvalidRequest, e.Code)
			require.Contains(t, e.Message, tc.message)
			if tc.field != "" {
				require.Equal(t, []string{tc.field}, fieldNames(e))
				require.Contains(t, e.Fields[0].Message, "(JSON pointer /"+tc.field+")")
			}
			require.Equal(t, before, countEvents(t, b), "nothing stored")
		})
	}

	resp := publish(nested(maxDepth))
	require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, resp.status, string(resp.body))
	ev := decode[eventResponse](t, resp)
	var envelope struct {
		Data json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(ev.Payload, &envelope))
	require.JSONEq(t, nested(maxDepth), string(envelope.Data))
}

// readCloser gives a reader the Close an http.Request body needs.
type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
