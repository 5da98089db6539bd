package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// Two keys are configured so that tests can show that any of them works.
const (
	testKey  = "test-key-0123456789abcdef"
	otherKey = "second-key-abcdef0123456789"
)

// bundle is what a test gets from setup: a Server over its own database, reachable over
// loopback HTTP.
type bundle struct {
	db    *sqlx.DB
	store *store.Store
	srv   *Server
	http  *httptest.Server
	logs  *syncBuffer
}

// setup starts a Server on a fresh database; opts adjust the Config.
func setup(t testing.TB, opts ...func(*Config)) *bundle {
	t.Helper()
	return setupOn(t, testenv.Postgres(t), opts...)
}

// setupOn starts a Server on db.
func setupOn(t testing.TB, db *sqlx.DB, opts ...func(*Config)) *bundle {
	t.Helper()
	cfg := Config{
		APIKeys:   []string{testKey, otherKey},
		URLPolicy: netguard.Policy{},
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	logs := &syncBuffer{}
	st := store.New(db, testenv.Keyring())
	srv := New(cfg, st, nil, slog.New(slog.NewJSONHandler(logs, nil)))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &bundle{db: db, store: st, srv: srv, http: ts, logs: logs}
}

// syncBuffer collects log output written from handler goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the test key; a non-empty body is sent as application/json.
// edit may change the request before it is sent.
func (b *bundle) do(t testing.TB, method, path, body string, edit ...func(*http.Request)) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.http.URL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, e := range edit {
		e(req)
	}
	resp, err := b.http.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func withHeader(name, value string) func(*http.Request) {
	return func(r *http.Request) {
		if value == "" {
			r.Header.Del(name)
			return
		}
		r.Header.Set(name, value)
	}
}

// apiError decodes an error body, checking its shape and content type.
func apiError(t testing.TB, resp response) Error {
	t.Helper()
	require.Equal(t, "application/json", resp.header.Get("Content-Type"), string(resp.body))
	var e Error
	dec := json.NewDecoder(bytes.NewReader(resp.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e), string(resp.body))
	require.NotEmpty(t, e.Code)
	require.NotEmpty(t, e.Message)
	require.NotNil(t, e.Fields, "fields is always an array")
	require.Equal(t, statusOf(e.Code), resp.status, "status matches code")
	return e
}

func fieldNames(e Error) []string {
	names := []string{}
	for _, f := range e.Fields {
		names = append(names, f.Field)
	}
	return names
}

func decode[T any](t testing.TB, resp response) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(resp.body, &v), string(resp.body))
	return v
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const path = "/api/surveys/survey-1/webhooks"

	refused := []struct {
		name   string
		header string
	}{
		{"missing", ""},
		{"wrong scheme", "Basic " + testKey},
		{"no scheme", testKey},
		{"empty token", "Bearer "},
		{"wrong key", "Bearer not-a-key"},
		{"key prefix", "Bearer " + testKey[:10]},
		{"key with suffix", "Bearer " + testKey + "x"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := b.do(t, http.MethodGet, path, "", withHeader("Authorization", tt.header))
			require.Equal(t, http.StatusUnauthorized, resp.status)
			require.Equal(t, CodeUnauthorized, apiError(t, resp).Code)
			require.Contains(t, resp.header.Get("WWW-Authenticate"), "Bearer")
		})
	}

	// Refused before anything is read or written.
	resp := b.do(t, http.MethodPost, path, validCreateBody, withHeader("Authorization", "Bearer nope"))
	require.Equal(t, http.StatusUnauthorized, resp.status)
	require.Equal(t, 0, countWebhooks(t, b))

	accepted := []string{"Bearer " + testKey, "Bearer " + otherKey, "bearer " + otherKey}
	for _, header := range accepted {
		resp := b.do(t, http.MethodGet, path, "", withHeader("Authorization", header))
		require.Equal(t, http.StatusOK, resp.status, header[:8])
	}

	// Health and the document need no key.
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json"} {
		resp := b.do(t, http.MethodGet, p, "", withHeader("Authorization", ""))
		require.Equal(t, http.StatusOK, resp.status, p)
	}
}

func TestAuthWithoutKeysRefusesEverything(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.APIKeys = []string{""} })
	for _, header := range []string{"", "Bearer ", "Bearer " + testKey} {
		resp := b.do(t, http.MethodGet, "/api/event-types", "", withHeader("Authorization", header))
		require.Equal(t, http.StatusUnauthorized, resp.status)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.do(t, http.MethodGet, "/healthz", "")
	require.Equal(t, http.StatusOK, resp.status)
	require.JSONEq(t, `{"status":"ok"}`, string(resp.body))

	resp = b.do(t, http.MethodGet, "/readyz", "")
	require.Equal(t, http.StatusOK, resp.status)
	require.JSONEq(t, `{"status":"ready","checks":{"postgres":"ok"}}`, string(resp.body))
}

func TestNotFoundAndMethodNotAllowedAreJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for _, path := range []string{"/nope", "/api/nope", "/api/surveys/s/webhooks/x/y/z"} {
		resp := b.do(t, http.MethodGet, path, "")
		require.Equal(t, http.StatusNotFound, resp.status, path)
		require.Equal(t, CodeNotFound, apiError(t, resp).Code, path)
	}

	tests := []struct {
		method, path, allow string
	}{
		{http.MethodPut, "/api/surveys/s/webhooks", "GET, POST"},
		{http.MethodDelete, "/api/surveys/s/webhooks", "GET, POST"},
		{http.MethodPost, "/api/surveys/s/webhooks/0190f5a2-7c1e-7d3a-9b1a-2f4c5d6e7f80", "GET, PATCH, DELETE"},
		{http.MethodGet, "/api/surveys/s/webhooks/0190f5a2-7c1e-7d3a-9b1a-2f4c5d6e7f80/secret/rotate", "POST"},
		{http.MethodPost, "/healthz", "GET"},
		{http.MethodDelete, "/api/event-types", "GET, POST"},
	}
	for _, tt := range tests {
		resp := b.do(t, tt.method, tt.path, "")
		require.Equal(t, http.StatusMethodNotAllowed, resp.status, tt.method+" "+tt.path)
		require.Equal(t, CodeMethodNotAllowed, apiError(t, resp).Code)
		require.Equal(t, tt.allow, resp.header.Get("Allow"), tt.method+" "+tt.path)
	}
}

// A broken database gives a generic 500 (and a 503 readiness answer); the cause is logged
// with the request, never sent.
func TestInternalErrorHidesCause(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.db.Close())

	for _, tt := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/surveys/survey-1/webhooks", validCreateBody},
		{http.MethodGet, "/api/surveys/survey-1/webhooks", ""},
		{http.MethodGet, "/api/surveys/survey-1/webhooks/0190f5a2-7c1e-7d3a-9b1a-2f4c5d6e7f80", ""},
	} {
		resp := b.do(t, tt.method, tt.path, tt.body)
		require.Equal(t, http.StatusInternalServerError, resp.status)
		e := apiError(t, resp)
		require.Equal(t, Error{Code: CodeInternal, Message: "Internal server error.", Fields: []FieldError{}}, e)
		require.NotContains(t, strings.ToLower(string(resp.body)), "sql")
	}
	logs := b.logs.String()
	require.Contains(t, logs, `"msg":"request failed"`)
	require.Contains(t, logs, `"method":"POST"`)
	require.Contains(t, logs, `"path":"/api/surveys/survey-1/webhooks"`)
	require.Contains(t, logs, "database is closed")

	resp := b.do(t, http.MethodGet, "/readyz", "")
	require.Equal(t, http.StatusServiceUnavailable, resp.status)
	require.JSONEq(t, `{"status":"unready","checks":{"postgres":"unavailable"}}`, string(resp.body))
}

func TestPanicBecomesGeneric500(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	s := &Server{logger: slog.New(slog.NewJSONHandler(logs, nil))}
	h := s.recoverPanic(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret internal detail")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.NotContains(t, rec.Body.String(), "secret internal detail")
	require.Contains(t, logs.String(), "secret internal detail")
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"Bearer  abc ", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		token, ok := bearerToken(tt.header)
		require.Equal(t, tt.ok, ok, tt.header)
		require.Equal(t, tt.token, token, tt.header)
	}
}

// A statement that cannot finish (here, waiting for a table lock) ends at the request's
// deadline: the client gets a 503 it may retry, the statement is cancelled in PostgreSQL
// rather than left holding a pooled connection, and the API answers again once the
// database does.
func TestRequestDeadlineEndsHungStatement(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	const list = "/api/surveys/survey-1/webhooks"

	lock, err := b.db.BeginTxx(t.Context(), nil)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback() }()
	_, err = lock.ExecContext(t.Context(), `LOCK TABLE webhooks IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	// Without the deadline the request would wait for the lock for ever: give up well after it.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	resp := b.do(t, http.MethodGet, list, "", func(r *http.Request) { *r = *r.WithContext(ctx) })
	require.Equal(t, http.StatusServiceUnavailable, resp.status, string(resp.body))
	e := apiError(t, resp)
	require.Equal(t, CodeUnavailable, e.Code)
	require.Equal(t, "The request did not finish in time; try again shortly.", e.Message)
	require.Contains(t, b.logs.String(), `"msg":"request timed out"`)

	// The lock is still held, and no statement waits for it any more.
	require.Eventually(t, func() bool {
		var waiting int
		err := b.db.GetContext(t.Context(), &waiting,
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		return err == nil && waiting == 0
	}, 5*time.Second, 20*time.Millisecond, "the timed-out statement still waits in PostgreSQL")

	require.NoError(t, lock.Rollback())
	resp = b.do(t, http.MethodGet, list, "")
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
}

// The webhook test endpoint waits for a delivery attempt, so its deadline follows the
// attempt timeout; the server's write timeout is derived from the longest deadline.
func TestLongestRequestCoversWebhookTest(t *testing.T) {
	t.Parallel()
	shortService := delivery.New(nil, nil, delivery.Config{Schedule: delivery.Schedule{AttemptTimeout: time.Second}}, nil)
	short := New(Config{RequestTimeout: time.Hour}, nil, shortService, nil)
	require.Equal(t, time.Hour, short.LongestRequest())
	longService := delivery.New(nil, nil, delivery.Config{Schedule: delivery.Schedule{AttemptTimeout: time.Minute}}, nil)
	long := New(Config{RequestTimeout: 10 * time.Second}, nil, longService, nil)
	require.Equal(t, longService.TestWait()+readyTimeout, long.LongestRequest())
	require.Greater(t, long.LongestRequest(), time.Minute+30*time.Second, "the attempt, and room to load and record it")
}
