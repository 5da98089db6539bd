package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

const engineKey = "engine-test-key"

// engine is the whole delivery path: API, PostgreSQL, an in-process Temporal server and a
// worker, on a short schedule (3 attempts, 200 ms then 400 ms apart).
type engine struct {
	url string
	st  *store.Store
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// setupEngine starts the stack. deliveryPolicy is where the worker may deliver; the API
// accepts http URLs so that receivers can be httptest servers. delays replace the short
// default schedule.
func setupEngine(t *testing.T, deliveryPolicy netguard.Policy, delays ...time.Duration) *engine {
	t.Helper()
	return setupEngineSigning(t, deliveryPolicy, signature.Profile{}, delays...)
}

// setupEngineSigning is setupEngine with the worker signing under profile.
func setupEngineSigning(t *testing.T, deliveryPolicy netguard.Policy, profile signature.Profile, delays ...time.Duration) *engine {
	t.Helper()
	if len(delays) == 0 {
		delays = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
	}
	db := testenv.Postgres(t)
	st := store.New(db, testenv.Keyring())
	te := testenv.Temporal(t)
	acts := activities.New(st, deliveryPolicy.Client(), activities.Config{
		Schedule: delivery.Schedule{Delays: delays, AttemptTimeout: 2 * time.Second}, Signature: profile}, nil)
	// Recoveries go 4 retries a batch, 8 a second, so that a test sees one run.
	// The outbox runs as in serve, quickly, so that notices (which the worker stores for it
	// to start) go out within a second.
	d := delivery.New(st, te.Client, delivery.Config{TaskQueue: te.TaskQueue, Schedule: delivery.Schedule{Delays: delays, AttemptTimeout: 2 * time.Second},
		RecoveryRate: 8, RecoveryBatch: 4, Outbox: delivery.OutboxConfig{Interval: 200 * time.Millisecond, Grace: time.Second}}, nil)
	outboxCtx, stopOutbox := context.WithCancel(context.Background())
	go func() { _ = d.Run(outboxCtx) }()
	t.Cleanup(stopOutbox)
	te.StartWorker(t, func(r worker.Registry) {
		workflows.Register(r, acts)
		workflows.RegisterRecovery(r, delivery.NewRecoverer(d))
	})
	srv := api.New(api.Config{
		APIKeys:   []string{engineKey},
		URLPolicy: netguard.Policy{AllowHTTP: true, Allowed: loopback},
	}, st, d, nil)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &engine{url: hs.URL, st: st}
}

func (e *engine) do(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	status, raw := e.request(t, engineKey, method, path, body)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	return status, out
}

// request sends a request with key ("" for none) and returns the status and raw body.
// path goes on the wire as written, escapes and all.
func (e *engine) request(t *testing.T, key, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, raw
}

// createWebhook creates a webhook of survey-1 and returns its id and secret.
func (e *engine) createWebhook(t *testing.T, url string, events []string, secret string) (string, string) {
	t.Helper()
	body := map[string]any{"name": "hook", "url": url, "events": events}
	if secret != "" {
		body["secret"] = secret
	}
	status, out := e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks", body)
	require.Equal(t, http.StatusCreated, status, out)
	return out["id"].(string), out["secret"].(string)
}

func (e *engine) publish(t *testing.T, eventID string) (int, map[string]any) {
	t.Helper()
	body := map[string]any{"event_type": "survey.response.completed", "survey_id": "survey-1",
		"data": map[string]any{"survey": map[string]any{"id": "survey-1", "title": "NPS"},
			"response": map[string]any{"id": "r-1", "answers": []any{map[string]any{"questionId": "q1", "value": 9}}}}}
	if eventID != "" {
		body["event_id"] = eventID
	}
	return e.do(t, http.MethodPost, "/api/events", body)
}

// deliveriesOf waits until every delivery of the event has ended and returns them.
func (e *engine) deliveriesOf(t *testing.T, eventID string, want int) []map[string]any {
	t.Helper()
	var ds []map[string]any
	require.Eventually(t, func() bool {
		status, out := e.do(t, http.MethodGet, "/api/events/"+eventID, nil)
		require.Equal(t, http.StatusOK, status)
		ds = nil
		for _, d := range out["deliveries"].([]any) {
			ds = append(ds, d.(map[string]any))
		}
		if len(ds) != want {
			return false
		}
		for _, d := range ds {
			if s := d["status"]; s == delivery.StatusPending || s == delivery.StatusRetrying {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond)
	return ds
}

// receiver records the requests it gets and answers with the statuses of answers in turn
// (the last one repeats).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
	answers  []int
}

type recorded struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	t.Helper()
	if len(answers) == 0 {
		answers = []int{http.StatusOK}
	}
	rc := &receiver{answers: answers}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.requests = append(rc.requests, recorded{header: r.Header.Clone(), body: body})
		status := rc.answers[min(len(rc.requests), len(rc.answers))-1]
		rc.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d", status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.requests...)
}

// verifySeed002 is seed 002's documented Go verifier, unchanged but for the header.
func verifySeed002(payload []byte, signature, secret string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(payload)
	expected := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(expected), []byte(signature))
}

func TestEngineFanOutSignsEveryDelivery(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	r1, r2, r3 := newReceiver(t), newReceiver(t), newReceiver(t)
	other := newReceiver(t)
	_, secret1 := e.createWebhook(t, r1.URL, []string{"survey.response.completed"}, "")
	_, secret2 := e.createWebhook(t, r2.URL, []string{"survey.response.*"}, "")
	_, secret3 := e.createWebhook(t, r3.URL, []string{"*"}, "my-own-secret-of-32-characters!!")
	e.createWebhook(t, other.URL, []string{"survey.response.disqualified"}, "")
	inactiveID, _ := e.createWebhook(t, other.URL, []string{"*"}, "")
	status, _ := e.do(t, http.MethodPatch, "/api/surveys/survey-1/webhooks/"+inactiveID, map[string]any{"isActive": false})
	require.Equal(t, http.StatusOK, status)

	status, ev := e.publish(t, "")
	require.Equal(t, http.StatusCreated, status, ev)
	eventID := ev["eventId"].(string)
	require.Equal(t, "event-"+eventID, ev["workflowId"])

	ds := e.deliveriesOf(t, eventID, 3)
	for _, d := range ds {
		require.Equal(t, delivery.StatusDelivered, d["status"])
	}
	for i, tc := range []struct {
		rc     *receiver
		secret string
	}{{r1, secret1}, {r2, secret2}, {r3, secret3}} {
		got := tc.rc.got()
		require.Len(t, got, 1, "receiver %d", i+1)
		req := got[0]
		require.True(t, verifySeed002(req.body, req.header.Get("X-Webhook-Signature"), tc.secret), "seed 002 verifier, receiver %d", i+1)
		var wh *standardwebhooks.Webhook
		var err error
		if strings.HasPrefix(tc.secret, "whsec_") {
			wh, err = standardwebhooks.NewWebhook(tc.secret)
		} else {
			wh, err = standardwebhooks.NewWebhookRaw([]byte(tc.secret))
		}
		require.NoError(t, err)
		require.NoError(t, wh.Verify(req.body, req.header), "standard webhooks library, receiver %d", i+1)

		var env signature.Event
		require.NoError(t, json.Unmarshal(req.body, &env))
		require.Equal(t, eventID, env.EventID)
		require.Equal(t, "survey.response.completed", env.EventType)
		require.JSONEq(t, `{"survey":{"id":"survey-1","title":"NPS"},"response":{"id":"r-1","answers":[{"questionId":"q1","value":9}]}}`, string(env.Data))
		require.Equal(t, "survey.response.completed", req.header.Get("X-Webhook-Event"))
		require.NotEmpty(t, req.header.Get("X-Webhook-Delivery"))
		require.Equal(t, req.header.Get("X-Webhook-Delivery"), req.header.Get("webhook-id"))
		require.Contains(t, req.header.Get("User-Agent"), "surveyhooks")
	}
	require.Empty(t, other.got(), "neither the unsubscribed nor the inactive webhook gets the event")
}

func TestEngineDuplicateEventIDIsOneEvent(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t)
	e.createWebhook(t, rc.URL, []string{"*"}, "")

	status, first := e.publish(t, "evt-dup-1")
	require.Equal(t, http.StatusCreated, status)
	status, second := e.publish(t, "evt-dup-1")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, first["workflowId"], second["workflowId"])
	e.deliveriesOf(t, "evt-dup-1", 1)

	// Also once the first workflow has completed.
	status, _ = e.publish(t, "evt-dup-1")
	require.Equal(t, http.StatusOK, status)
	e.deliveriesOf(t, "evt-dup-1", 1)
	require.Len(t, rc.got(), 1)
}

func TestEngineManualRetryOfFailedDelivery(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK)
	hookID, _ := e.createWebhook(t, rc.URL, []string{"*"}, "")

	_, ev := e.publish(t, "")
	eventID := ev["eventId"].(string)
	ds := e.deliveriesOf(t, eventID, 1)
	require.Equal(t, delivery.StatusFailed, ds[0]["status"])
	require.EqualValues(t, 3, ds[0]["attemptCount"])
	deliveryPath := fmt.Sprintf("/api/surveys/survey-1/webhooks/%s/deliveries/%s", hookID, ds[0]["id"])

	status, out := e.do(t, http.MethodPost, deliveryPath+"/retry", nil)
	require.Equal(t, http.StatusAccepted, status, out)
	require.Eventually(t, func() bool {
		_, d := e.do(t, http.MethodGet, deliveryPath, nil)
		return d["status"] == delivery.StatusDelivered
	}, 30*time.Second, 50*time.Millisecond)

	_, d := e.do(t, http.MethodGet, deliveryPath, nil)
	var triggers []string
	for _, a := range d["attempts"].([]any) {
		triggers = append(triggers, a.(map[string]any)["trigger"].(string))
	}
	require.Equal(t, []string{"auto", "auto", "auto", "manual"}, triggers)
	got := rc.got()
	require.Len(t, got, 4)
	for _, req := range got {
		require.Equal(t, got[0].body, req.body, "every attempt sends the same bytes")
		require.Equal(t, got[0].header.Get("webhook-id"), req.header.Get("webhook-id"))
	}

	// Delivered: a retry needs force.
	status, out = e.do(t, http.MethodPost, deliveryPath+"/retry", nil)
	require.Equal(t, http.StatusConflict, status, out)
	status, _ = e.do(t, http.MethodPost, deliveryPath+"/retry?force=true", nil)
	require.Equal(t, http.StatusAccepted, status)
	require.Eventually(t, func() bool { return len(rc.got()) == 5 }, 30*time.Second, 50*time.Millisecond)
}

func TestEngineRotationOverlapSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t)
	hookID, oldSecret := e.createWebhook(t, rc.URL, []string{"*"}, "")
	status, rotated := e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks/"+hookID+"/secret/rotate", nil)
	require.Equal(t, http.StatusOK, status, rotated)
	newSecret := rotated["secret"].(string)
	require.NotEqual(t, oldSecret, newSecret)

	_, ev := e.publish(t, "")
	e.deliveriesOf(t, ev["eventId"].(string), 1)
	req := rc.got()[0]
	for _, secret := range []string{oldSecret, newSecret} {
		require.NoError(t, signature.Verify(secret, req.header.Get("X-Webhook-Signature"), req.body))
		wh, err := standardwebhooks.NewWebhook(secret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(req.body, req.header))
	}
	other, err := signature.GenerateSecret()
	require.NoError(t, err)
	require.Error(t, signature.Verify(other, req.header.Get("X-Webhook-Signature"), req.body))
}

func TestEngineSSRFRefusalIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	// The worker may not deliver to loopback; the receiver must see nothing.
	e := setupEngine(t, netguard.Policy{AllowHTTP: true})
	rc := newReceiver(t)
	// A hostname passes URL validation: the address is checked when connecting.
	url := strings.Replace(rc.URL, "127.0.0.1", "localhost", 1)
	hookID, _ := e.createWebhook(t, url, []string{"*"}, "")

	_, ev := e.publish(t, "")
	ds := e.deliveriesOf(t, ev["eventId"].(string), 1)
	require.Equal(t, delivery.StatusFailed, ds[0]["status"])
	require.EqualValues(t, 1, ds[0]["attemptCount"], "a refused address is not retried")
	require.Contains(t, ds[0]["lastError"], "refused")
	require.NotContains(t, ds[0]["lastError"], "127.0.0.1", "the resolved address is not shown")
	require.Contains(t, ds[0]["lastError"], "SURVEYHOOKS_ALLOWED_CIDRS")
	status, d := e.do(t, http.MethodGet, fmt.Sprintf("/api/surveys/survey-1/webhooks/%s/deliveries/%s", hookID, ds[0]["id"]), nil)
	require.Equal(t, http.StatusOK, status, d)
	attempt := d["attempts"].([]any)[0].(map[string]any)
	require.Nil(t, attempt["response"])
	require.Contains(t, attempt["error"], "loopback")
	require.Empty(t, rc.got())
}

func TestEngineWebhookTestEndpoint(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t, http.StatusAccepted)
	hookID, secret := e.createWebhook(t, rc.URL, []string{"survey.response.completed"}, "")

	status, out := e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks/"+hookID+"/test", nil)
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, true, out["delivered"])
	attempt := out["attempt"].(map[string]any)
	require.Equal(t, "test", attempt["trigger"])
	require.Greater(t, attempt["durationMs"].(float64), 0.0)
	require.EqualValues(t, http.StatusAccepted, attempt["response"].(map[string]any)["status"])
	require.Equal(t, "answer 202", attempt["response"].(map[string]any)["body"])

	got := rc.got()
	require.Len(t, got, 1)
	require.Equal(t, "webhook.test", got[0].header.Get("X-Webhook-Event"))
	require.NoError(t, signature.Verify(secret, got[0].header.Get("X-Webhook-Signature"), got[0].body))

	// A failing receiver: one attempt, reported, no retries.
	bad := newReceiver(t, http.StatusInternalServerError)
	badID, _ := e.createWebhook(t, bad.URL, []string{"*"}, "")
	status, out = e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks/"+badID+"/test", nil)
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, false, out["delivered"])
	require.Len(t, bad.got(), 1)

	// An inactive webhook gets the test (and only the test): it can be checked before it
	// is activated.
	status, _ = e.do(t, http.MethodPatch, "/api/surveys/survey-1/webhooks/"+hookID, map[string]any{"isActive": false})
	require.Equal(t, http.StatusOK, status)
	status, out = e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks/"+hookID+"/test", nil)
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, true, out["delivered"])
	require.Len(t, rc.got(), 2)
}

func TestEngineDeactivatedMidScheduleGetsNoMoreAttempts(t *testing.T) {
	t.Parallel()
	// Long enough waits that the webhook is deactivated before attempt 2.
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback}, 2*time.Second, 2*time.Second)
	rc := newReceiver(t, http.StatusInternalServerError)
	hookID, _ := e.createWebhook(t, rc.URL, []string{"*"}, "")

	_, ev := e.publish(t, "")
	require.Eventually(t, func() bool { return len(rc.got()) >= 1 }, 30*time.Second, 20*time.Millisecond)
	status, _ := e.do(t, http.MethodPatch, "/api/surveys/survey-1/webhooks/"+hookID, map[string]any{"isActive": false})
	require.Equal(t, http.StatusOK, status)
	ds := e.deliveriesOf(t, ev["eventId"].(string), 1)
	require.Equal(t, delivery.StatusFailed, ds[0]["status"])
	require.Contains(t, ds[0]["lastError"], "inactive")
	require.Len(t, rc.got(), 1)
}

func TestEngineDeliveryListFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	ok := newReceiver(t)
	hookID, _ := e.createWebhook(t, ok.URL, []string{"*"}, "")
	var ids []string
	for i := 0; i < 5; i++ {
		_, ev := e.publish(t, fmt.Sprintf("evt-page-%d", i))
		ids = append(ids, ev["eventId"].(string))
	}
	for _, id := range ids {
		e.deliveriesOf(t, id, 1)
	}
	base := "/api/surveys/survey-1/webhooks/" + hookID + "/deliveries"
	seen := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		path := base + "?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		status, out := e.do(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, status, out)
		pages++
		for _, d := range out["data"].([]any) {
			id := d.(map[string]any)["id"].(string)
			require.False(t, seen[id], "no delivery twice")
			seen[id] = true
		}
		next, _ := out["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, 3, pages)
	require.Len(t, seen, 5)

	status, out := e.do(t, http.MethodGet, base+"?status=failed", nil)
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, out["data"])
	status, out = e.do(t, http.MethodGet, base+"?status=delivered", nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, out["data"], 5)
	status, _ = e.do(t, http.MethodGet, base+"?status=bogus", nil)
	require.Equal(t, http.StatusBadRequest, status)

	// Another survey's path does not reach the webhook's deliveries.
	status, _ = e.do(t, http.MethodGet, "/api/surveys/survey-2/webhooks/"+hookID+"/deliveries", nil)
	require.Equal(t, http.StatusNotFound, status)
}
