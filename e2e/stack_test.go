// Package e2e_test checks that nothing is lost when the pieces around the delivery engine
// fail: Temporal down at ingest, a worker killed mid-flight, `dev` restarted mid-schedule,
// PostgreSQL stopped, receivers misbehaving. Every test runs real processes on loopback
// with short schedules; RELIABILITY.md records their figures.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/surveyhooks/surveyhooks/api"
	apiclient "github.com/surveyhooks/surveyhooks/client"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/e2e/temporalcluster"
	"github.com/surveyhooks/surveyhooks/localtemporal"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

// apiKey is the API key of every API a test starts in-process.
const apiKey = "e2e-test-key-0123456789"

// surveyID is the survey every test publishes to.
const surveyID = "survey-e2e"

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// loopbackPolicy lets webhooks and deliveries reach httptest receivers.
var loopbackPolicy = netguard.Policy{AllowHTTP: true, Allowed: loopback}

// freeAddr returns a loopback address nothing listens on, for a server the test starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := temporalcluster.FreePorts(1)
	require.NoError(t, err)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
}

// testLogger writes records of level or above to the test's output until the test ends;
// servers and clients may log while they wind down, and writing to a finished test panics.
func testLogger(t *testing.T, level slog.Level) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.w = nil
}

// temporalOptions describe a Temporal server with its SQLite files in a directory of the
// test's own, on a free port, so that it can be stopped and started again on the same data.
func temporalOptions(t *testing.T) localtemporal.Options {
	t.Helper()
	return localtemporal.Options{
		DataDir:          filepath.Join(t.TempDir(), "temporal"),
		FrontendAddr:     freeAddr(t),
		Namespace:        "default",
		SearchAttributes: delivery.SearchAttributes(),
		Logger:           testLogger(t, slog.LevelError),
	}
}

// startTemporal starts a server as opts say; it stops when the test ends at the latest.
func startTemporal(t *testing.T, opts localtemporal.Options) *localtemporal.Server {
	t.Helper()
	began := time.Now()
	s, err := localtemporal.Start(t.Context(), opts)
	require.NoError(t, err)
	t.Logf("temporal started in %v", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { require.NoError(t, s.Stop()) })
	return s
}

// dialTemporal connects a client to the frontend at addr; it closes when the test ends.
// Only errors are logged: a test that stops the server makes the SDK warn at every poll.
func dialTemporal(t *testing.T, addr string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  addr,
		Namespace: "default",
		Logger:    sdklog.NewStructuredLogger(testLogger(t, slog.LevelError)),
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// apiClient talks to a surveyhooks API with an API key.
type apiClient struct {
	url  string
	key  string
	http *http.Client
}

// runOutbox runs d's outbox (Service.Run) until the test ends.
func runOutbox(t *testing.T, d *delivery.Service) {
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(t.Context()))
	runDone := make(chan error, 1)
	go func() { runDone <- d.Run(runCtx) }()
	t.Cleanup(func() {
		stopRun()
		require.NoError(t, <-runDone)
	})
}

// startAPI serves the REST API over st and d on loopback with apiKey.
func startAPI(t *testing.T, st *store.Store, d *delivery.Service) *apiClient {
	t.Helper()
	srv := api.New(api.Config{
		APIKeys:   []string{apiKey},
		URLPolicy: loopbackPolicy,
	}, st, d, testLogger(t, slog.LevelError))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &apiClient{url: hs.URL, key: apiKey, http: &http.Client{Timeout: 30 * time.Second}}
}

// send sends body (JSON-encoded unless it is []byte) and returns the status and the raw
// answer, which must be JSON.
func (c *apiClient) send(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.url+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s: %s", method, path, raw)
	return resp.StatusCode, raw
}

// do is send with the answer decoded as an object.
func (c *apiClient) do(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	status, raw := c.send(t, method, path, body)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return status, out
}

// typed is the generated client (package client) of the same API, key and HTTP client:
// the calls below go through it, so that they follow the OpenAPI document and its types
// decode every answer.
func (c *apiClient) typed() *apiclient.ClientWithResponses {
	typed, err := apiclient.NewClientWithResponses(c.url, apiclient.WithHTTPClient(c.http), apiclient.WithKey(c.key))
	if err != nil {
		panic(err) // its options never fail
	}
	return typed
}

// requireJSON checks what send checks of every answer.
func requireJSON(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"), "%s %s: %s", resp.Request.Method, resp.Request.URL.Path, body)
}

// createWebhook subscribes url to events of surveyID and returns the webhook's id.
func (c *apiClient) createWebhook(t *testing.T, url string, events ...string) string {
	t.Helper()
	resp, err := c.typed().CreateWebhookWithResponse(t.Context(), surveyID,
		apiclient.WebhookCreate{Name: "e2e", URL: url, Events: events})
	require.NoError(t, err)
	requireJSON(t, resp.HTTPResponse, resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body))
	return resp.JSON201.ID.String()
}

// publish posts an event of eventType with the given id and returns the status and answer.
func (c *apiClient) publish(t *testing.T, eventID, eventType string) (int, map[string]any) {
	t.Helper()
	resp, err := c.typed().PublishEventWithResponse(t.Context(), eventBody(eventID, eventType))
	require.NoError(t, err)
	requireJSON(t, resp.HTTPResponse, resp.Body)
	var out map[string]any
	require.NoError(t, json.Unmarshal(resp.Body, &out), string(resp.Body))
	return resp.StatusCode(), out
}

// tryPublish is publish for goroutines other than the test's: it returns errors instead
// of failing the test, and the status even when the answer does not decode.
func (c *apiClient) tryPublish(ctx context.Context, eventID, eventType string) (int, error) {
	resp, err := c.typed().PublishEvent(ctx, eventBody(eventID, eventType))
	if err != nil {
		return 0, err
	}
	_, err = apiclient.ParsePublishEventResponse(resp) // reads and closes the body
	return resp.StatusCode, err
}

// eventBody is a publish request.
func eventBody(eventID, eventType string) apiclient.EventPublish {
	return apiclient.EventPublish{
		EventID: &eventID, EventType: eventType, SurveyID: surveyID,
		Data: map[string]any{
			"survey":   map[string]any{"id": surveyID, "title": "Reliability"},
			"response": map[string]any{"id": "r-" + eventID, "answers": []any{map[string]any{"questionId": "q1", "value": 7}}},
		},
	}
}

// hit is one request a receiver got.
type hit struct {
	// WebhookID is the Standard Webhooks id header: the delivery's id, the same on every
	// attempt of a delivery.
	WebhookID string
	// DeliveryHeader is X-Webhook-Delivery.
	DeliveryHeader string
	EventID        string
	Body           []byte
	// Nth counts the requests with this WebhookID that came before this one.
	Nth int
	At  time.Time
	// Answer says how the receiver answered ("200", "500", "timeout", ...).
	Answer string
}

// receiver is a webhook receiver that records every request and answers as respond says;
// respond gets how many requests of the same delivery came before and returns a label of
// its answer.
type receiver struct {
	*httptest.Server
	respond func(w http.ResponseWriter, r *http.Request, nth int) string

	mu    sync.Mutex
	hits  []hit
	count map[string]int
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, nth int) string) *receiver {
	t.Helper()
	rc := &receiver{respond: respond, count: map[string]int{}}
	rc.Server = httptest.NewUnstartedServer(http.HandlerFunc(rc.serve))
	// Keep-alive on both sides, as a real receiver; handlers that hang until the client
	// gives up end with the connection.
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	var env signature.Event
	_ = json.Unmarshal(body, &env)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	nth := rc.count[id]
	rc.count[id]++
	rc.mu.Unlock()
	answer := rc.respond(w, r, nth)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.hits = append(rc.hits, hit{
		WebhookID: id, DeliveryHeader: r.Header.Get(signature.HeaderDelivery), EventID: env.EventID,
		Body: body, Nth: nth, At: at, Answer: answer,
	})
}

// got returns the requests answered so far.
func (rc *receiver) got() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.hits)
}

// okReceiver answers 200 to everything.
func okReceiver(t *testing.T) *receiver {
	return newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ int) string {
		w.WriteHeader(http.StatusOK)
		return "200"
	})
}

// deliveryCounts counts the deliveries of the store's database by status.
func deliveryCounts(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	rows, err := st.DB().QueryContext(t.Context(), `SELECT status, count(*) FROM deliveries GROUP BY status`)
	require.NoError(t, err)
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var status string
		var n int
		require.NoError(t, rows.Scan(&status, &n))
		counts[status] = n
	}
	require.NoError(t, rows.Err())
	return counts
}

// waitSettled waits until the database holds want deliveries, none of them pending or
// retrying, and returns the counts by status.
func waitSettled(t *testing.T, st *store.Store, want int, timeout time.Duration) map[string]int {
	t.Helper()
	var counts map[string]int
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		counts = deliveryCounts(t, st)
		assert.Equal(c, want, counts[delivery.StatusDelivered]+counts[delivery.StatusFailed], "settled deliveries: %v", counts)
		assert.Zero(c, counts[delivery.StatusPending]+counts[delivery.StatusRetrying], "unsettled deliveries: %v", counts)
	}, timeout, 100*time.Millisecond)
	return counts
}

// duplicates summarises what a receiver got: requests per delivery, and the deliveries it
// got more than once with a 2xx answer among them.
type duplicates struct {
	requests  int
	delivered int // distinct webhook ids answered 2xx
	extra2xx  int // 2xx answers beyond the first per webhook id
}

func countDuplicates(t *testing.T, hits []hit) duplicates {
	t.Helper()
	var d duplicates
	ok := map[string]int{}
	first := map[string]hit{}
	for _, h := range hits {
		d.requests++
		// Every attempt of a delivery carries the same id in both headers and the same bytes.
		require.Equal(t, h.WebhookID, h.DeliveryHeader)
		if f, seen := first[h.WebhookID]; seen {
			require.Equal(t, f.Body, h.Body, "webhook-id %s: every attempt sends the same bytes", h.WebhookID)
		} else {
			first[h.WebhookID] = h
		}
		if h.Answer == "200" {
			ok[h.WebhookID]++
		}
	}
	for _, n := range ok {
		d.delivered++
		d.extra2xx += n - 1
	}
	return d
}

// uniqueQueue names a task queue of the test's own.
func uniqueQueue(name string) string {
	return fmt.Sprintf("%s-%s", name, uuid.NewString()[:8])
}

// runsPerEvent checks that Temporal holds exactly one run of the workflow of each event
// and none of any other event (its visibility store is eventually consistent).
func runsPerEvent(t *testing.T, tc client.Client, eventIDs []string) {
	t.Helper()
	want := map[string]int{}
	for _, id := range eventIDs {
		want[delivery.WorkflowID(id)] = 1
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := map[string]int{}
		var token []byte
		for {
			resp, err := tc.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
				Query: "WorkflowType = 'Event'", PageSize: 1000, NextPageToken: token,
			})
			if !assert.NoError(c, err) {
				return
			}
			for _, e := range resp.GetExecutions() {
				got[e.GetExecution().GetWorkflowId()]++
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
		assert.Equal(c, want, got)
	}, 30*time.Second, 200*time.Millisecond)
}
