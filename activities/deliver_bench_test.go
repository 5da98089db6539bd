package activities_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// This benchmark is outside package activities because testenv imports workflows, which
// imports activities.

// BenchmarkDeliver is the whole activity, as a worker runs it but for the SDK's test
// environment around it: load the target, sign, POST, record the attempt in PostgreSQL.
// Every iteration re-sends one delivery (Force), so the attempt log grows by one each time.
func BenchmarkDeliver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	db := testenv.Postgres(b)
	st := store.New(db, testenv.Keyring())
	ctx := context.Background()
	_, err := st.CreateWebhook(ctx, store.Webhook{AccountID: store.DefaultAccount, SurveyID: "s-1", Name: "bench", URL: srv.URL,
		Events: []string{"survey.response.completed"}, IsActive: true, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	require.NoError(b, err)
	p, err := st.PublishEvent(ctx, store.Event{ID: uuid.NewString(), AccountID: store.DefaultAccount, EventType: "survey.response.completed", SurveyID: "s-1", Body: deliverBody(b)})
	require.NoError(b, err)
	require.Len(b, p.Deliveries, 1)

	policy := netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	acts := activities.New(st, policy.Client(), activities.Config{Schedule: delivery.Schedule{Delays: []time.Duration{time.Minute}}}, slog.New(slog.DiscardHandler))
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	in := activities.DeliverInput{DeliveryID: p.Deliveries[0].ID, Trigger: delivery.TriggerManual, Force: true}

	b.ReportAllocs()
	for b.Loop() {
		v, err := env.ExecuteActivity(acts.Deliver, in)
		if err != nil {
			b.Fatal(err)
		}
		var res activities.DeliverResult
		if err := v.Get(&res); err != nil || res.Status != delivery.StatusDelivered {
			b.Fatalf("result %+v, %v", res, err)
		}
	}
}

func deliverBody(b *testing.B) []byte {
	b.Helper()
	data := json.RawMessage(`{"survey":{"id":"s-1","title":"NPS"},"response":{"id":"r-1","answers":[{"questionId":"q1","value":"` +
		strings.Repeat("x", 850) + `"}]}}`)
	body, err := json.Marshal(signature.Event{EventID: uuid.NewString(), EventType: "survey.response.completed", Timestamp: time.Now(), Data: data})
	require.NoError(b, err)
	return body
}
