package activities

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

// benchData is a survey response of about 1 KiB, the size `surveyhooks bench` sends.
var benchData = json.RawMessage(`{"survey":{"id":"s-1","title":"NPS"},"response":{"id":"r-1","completed_at":"2026-01-01T00:00:00Z","answers":[{"questionId":"q1","value":"` +
	strings.Repeat("x", 850) + `"}]}}`)

const benchSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func benchBody(b *testing.B) []byte {
	b.Helper()
	body, err := json.Marshal(signature.Event{EventID: uuid.NewString(), EventType: "survey.response.completed", Timestamp: time.Now(), Data: benchData})
	require.NoError(b, err)
	return body
}

// BenchmarkEnvelope is the payload the API builds once per event (every attempt sends
// the stored bytes).
func BenchmarkEnvelope(b *testing.B) {
	b.ReportAllocs()
	ev := signature.Event{EventID: uuid.NewString(), EventType: "survey.response.completed", Timestamp: time.Now(), Data: benchData}
	for b.Loop() {
		if _, err := json.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAttemptRecord is what send prepares for the attempt's log row besides signing:
// the request headers as JSON and the body as loggable text.
func BenchmarkAttemptRecord(b *testing.B) {
	b.ReportAllocs()
	a := New(nil, nil, Config{}, nil)
	body := benchBody(b)
	h := signature.Headers([]string{benchSecret}, uuid.NewString(), time.Now(), body)
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		_ = headersJSON(h)
		_ = a.loggable(body)
	}
}

// BenchmarkSend is one attempt's HTTP side, signing included, against a local receiver over
// a pooled connection: the part of Deliver that does not touch the database.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	policy := netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	a := New(nil, policy.Client(), Config{}, nil)
	target := store.Target{
		DeliveryID: uuid.Must(uuid.NewV7()), EventType: "survey.response.completed", Body: benchBody(b),
		Webhook: store.Webhook{URL: srv.URL, Secret: benchSecret, IsActive: true},
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(target.Body)))
	for b.Loop() {
		if s := a.send(ctx, target); s.statusCode != http.StatusOK {
			b.Fatalf("status %d: %s", s.statusCode, s.attempt.Error)
		}
	}
}
