package activities_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// recordingReceiver keeps every request's signature header and body.
type recordingReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

type recorded struct {
	signature string
	body      []byte
}

func newRecordingReceiver(t *testing.T) *recordingReceiver {
	r := &recordingReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, recorded{signature: req.Header.Get(signature.HeaderSignature), body: body})
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recordingReceiver) got() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.requests...)
}

// The first attempt after a fan-out takes its target from FanOut instead of reading it back:
// it is sent as the fan-out read it, even when the webhook changed in between (here the URL;
// in production the window is the milliseconds between two local activities). It is handed
// over once: the next attempt of the delivery reads the webhook afresh.
func TestFirstAttemptUsesFanOutTargetAndLaterAttemptsReadAgain(t *testing.T) {
	t.Parallel()
	first, second := newRecordingReceiver(t), newRecordingReceiver(t)
	st := store.New(testenv.Postgres(t))
	ctx := context.Background()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hook, err := st.CreateWebhook(ctx, store.Webhook{SurveyID: "s-1", Name: "handover", URL: first.URL,
		Events: []string{"survey.response.completed"}, IsActive: true, Secret: secret})
	require.NoError(t, err)
	body := []byte(`{"event_id":"e-1","event_type":"survey.response.completed","data":{}}`)
	ev, _, err := st.InsertEvent(ctx, store.Event{ID: uuid.NewString(), EventType: "survey.response.completed", SurveyID: "s-1", Body: body})
	require.NoError(t, err)

	policy := netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	acts := activities.New(st, policy.Client(), activities.Config{Schedule: activities.Schedule{Delays: []time.Duration{time.Minute}}}, slog.New(slog.DiscardHandler))
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)

	v, err := env.ExecuteActivity(acts.FanOut, activities.FanOutInput{EventID: ev.ID})
	require.NoError(t, err)
	var fan activities.FanOutResult
	require.NoError(t, v.Get(&fan))
	require.Len(t, fan.Deliveries, 1)
	deliveryID := fan.Deliveries[0].DeliveryID

	newURL := second.URL
	_, err = st.UpdateWebhook(ctx, "s-1", hook.ID, store.WebhookUpdate{URL: &newURL})
	require.NoError(t, err)

	deliver := func(in activities.DeliverInput) activities.DeliverResult {
		t.Helper()
		v, err := env.ExecuteActivity(acts.Deliver, in)
		require.NoError(t, err)
		var res activities.DeliverResult
		require.NoError(t, v.Get(&res))
		return res
	}
	res := deliver(activities.DeliverInput{DeliveryID: deliveryID, Trigger: store.TriggerAuto})
	require.Equal(t, store.StatusDelivered, res.Status)
	require.Equal(t, 1, res.Attempts)
	got := first.got()
	require.Len(t, got, 1)
	require.Equal(t, body, got[0].body)
	require.NoError(t, signature.Verify(secret, got[0].signature, got[0].body))

	res = deliver(activities.DeliverInput{DeliveryID: deliveryID, Trigger: store.TriggerManual, Single: true, Force: true})
	require.Equal(t, store.StatusDelivered, res.Status)
	require.Equal(t, 2, res.Attempts)
	require.Len(t, first.got(), 1)
	require.Len(t, second.got(), 1, "the manual attempt reads the changed URL")

	attempts, err := st.ListAttempts(ctx, deliveryID)
	require.NoError(t, err)
	require.Len(t, attempts, 2)
	require.Equal(t, first.URL, attempts[0].RequestURL)
	require.Equal(t, second.URL, attempts[1].RequestURL)
}
