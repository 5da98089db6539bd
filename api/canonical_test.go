package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/jsoncanon/jsoncanontest"
	"github.com/surveyhooks/surveyhooks/netguard"
)

// canonicalData is data as a publisher might send it: HTML characters, é raw and escaped,
// emoji raw and as an escaped surrogate pair, a raw U+2028, numbers spelled as JavaScript
// does not print them, and member names that are array indices out of order.
const canonicalData = `{"comment":"<b>Tom & Jerry</b> <3","city":"Café","escaped":"Caf\u00e9",` +
	`"emoji":"😀 \ud83d\ude0a","separator":"a` + "\u2028" + `b\u2029c","scores":[1.0, 1e3, -0, 0.1, 1E-7, 25e-1],` +
	`"10":"ten","2":"two","0":"zero","01":"no index","answers":{"3":{"value":9},"1":{"value":7.50}}}`

// TestEngineDeliversCanonicalBody publishes data whose encoding/json and JavaScript forms
// differ: the receiver gets exactly JSON.stringify(JSON.parse(envelope)) as Node.js writes
// it, on every attempt, signed over those bytes, and the stored event is those bytes.
func TestEngineDeliversCanonicalBody(t *testing.T) {
	t.Parallel()
	node := jsoncanontest.Start(t)
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t, http.StatusServiceUnavailable, http.StatusOK)
	_, secret := e.createWebhook(t, rc.URL, []string{"*"}, "")

	published := `{"event_id":"evt-canonical","event_type":"survey.response.completed","survey_id":"survey-1","data":` + canonicalData + `}`
	status, raw := postRaw(t, e, "/api/events", published)
	require.Equal(t, http.StatusCreated, status, string(raw))
	ds := e.deliveriesOf(t, "evt-canonical", 1)
	require.Equal(t, delivery.StatusDelivered, ds[0]["status"])

	got := rc.got()
	require.Len(t, got, 2, "a failed attempt, then a delivered one")
	body := got[0].body
	var envelope struct {
		Timestamp string `json:"timestamp"`
	}
	require.NoError(t, json.Unmarshal(body, &envelope))
	// What the publisher sent, in the envelope the service adds, as JavaScript writes it back.
	sent := `{"event_id":"evt-canonical","event_type":"survey.response.completed","timestamp":"` + envelope.Timestamp + `","data":` + canonicalData + `}`
	want := node.MustStringify(t, sent, string(body))
	require.Equal(t, want[0], string(body), "the body is JSON.stringify(JSON.parse(...)) of what was published")
	require.Equal(t, want[1], string(body), "a receiver's JSON.stringify(JSON.parse(body)) is the body")
	for _, s := range []string{`"comment":"<b>Tom & Jerry</b> <3"`, `"city":"Café","escaped":"Café"`, "a\u2028b\u2029c", `[1,1000,0,0.1,1e-7,2.5]`, `"data":{"0":"zero","2":"two","10":"ten","comment"`} {
		require.Contains(t, string(body), s)
	}

	for i, req := range got {
		require.Equal(t, body, req.body, "attempt %d sends the same bytes", i+1)
		require.True(t, verifySeed002(req.body, req.header.Get("X-Webhook-Signature"), secret), "seed 002 verifier, attempt %d", i+1)
	}

	// The stored event, and each attempt's recorded request, are those bytes.
	status, raw = e.request(t, engineKey, http.MethodGet, "/api/events/evt-canonical", nil)
	require.Equal(t, http.StatusOK, status, string(raw))
	var ev struct {
		Payload json.RawMessage `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(raw, &ev))
	require.Equal(t, string(body), string(ev.Payload))
	stored, err := e.st.GetEvent(t.Context(), "evt-canonical")
	require.NoError(t, err)
	require.Equal(t, string(body), string(stored.Body))
	attempts, err := e.st.ListAttempts(t.Context(), uuid.MustParse(ds[0]["id"].(string)))
	require.NoError(t, err)
	require.Len(t, attempts, 2)
	for _, a := range attempts {
		require.Equal(t, string(body), a.RequestBody)
	}
}

// postRaw posts body exactly as written, escapes and all.
func postRaw(t *testing.T, e *engine, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+engineKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, raw
}
