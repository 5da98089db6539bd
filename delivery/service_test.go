package delivery_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/jsoncanon"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

type bundle struct {
	st       *store.Store
	te       *testenv.TemporalEnv
	svc      *delivery.Service
	hook     store.Webhook
	requests atomic.Int32
}

var schedule = delivery.Schedule{Delays: []time.Duration{time.Second}, AttemptTimeout: 2 * time.Second}

// setup stores a webhook of survey-1 at a receiver that counts requests and answers 200,
// and a service over a Temporal server; no worker runs until startWorker.
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{st: store.New(testenv.Postgres(t), testenv.Keyring()), te: testenv.Temporal(t)}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.requests.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(receiver.Close)
	hook, err := b.st.CreateWebhook(t.Context(), store.Webhook{AccountID: store.DefaultAccount, SurveyID: "survey-1", Name: "hook", URL: receiver.URL,
		Events: []string{"*"}, IsActive: true, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	require.NoError(t, err)
	b.hook = hook
	b.svc = delivery.New(b.st, b.te.Client, delivery.Config{TaskQueue: b.te.TaskQueue, Schedule: schedule}, slog.New(slog.DiscardHandler))
	return b
}

func (b *bundle) startWorker(t *testing.T) {
	t.Helper()
	policy := netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	acts := activities.New(b.st, policy.Client(), activities.Config{Schedule: schedule}, slog.New(slog.DiscardHandler))
	b.te.StartWorker(t, func(r worker.Registry) { workflows.Register(r, acts) })
}

func (b *bundle) deactivate(t *testing.T) {
	t.Helper()
	inactive := false
	_, err := b.st.UpdateWebhook(t.Context(), b.hook.Scope(), b.hook.ID, store.WebhookUpdate{IsActive: &inactive})
	require.NoError(t, err)
}

// wait returns the event's workflow result.
func (b *bundle) wait(t *testing.T, eventID string) delivery.EventResult {
	t.Helper()
	var res delivery.EventResult
	require.NoError(t, b.te.Client.GetWorkflow(t.Context(), delivery.WorkflowID(eventID), "").Get(t.Context(), &res))
	return res
}

// The first attempt reads the webhook as it is when the attempt is made: a webhook
// deactivated after the publish gets nothing, even when the same process published.
func TestFirstAttemptSeesChangesAfterPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, err := b.svc.Publish(t.Context(), delivery.NewEvent{ID: "e-1", AccountID: store.DefaultAccount, Type: "survey.response.completed", SurveyID: "survey-1", Data: []byte(`{}`)})
	require.NoError(t, err)
	require.True(t, p.Created)
	require.True(t, p.Dispatched)

	b.deactivate(t)
	b.startWorker(t)

	res := b.wait(t, "e-1")
	require.Len(t, res.Deliveries, 1)
	require.Equal(t, delivery.StatusFailed, res.Deliveries[0].Status)
	require.Equal(t, "the webhook is inactive", res.Deliveries[0].Error)
	require.Zero(t, b.requests.Load())
}

// A retry asks the rule first: a delivered delivery needs force, an inactive webhook none.
func TestRetryAppliesTheRule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startWorker(t)
	_, err := b.svc.Publish(t.Context(), delivery.NewEvent{ID: "e-2", AccountID: store.DefaultAccount, Type: "survey.response.completed", SurveyID: "survey-1", Data: []byte(`{}`)})
	require.NoError(t, err)
	res := b.wait(t, "e-2")
	require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
	id := res.Deliveries[0].DeliveryID

	_, err = b.svc.Retry(t.Context(), b.hook.ID, id, false)
	require.ErrorIs(t, err, delivery.ErrDelivered)
	workflowID, err := b.svc.Retry(t.Context(), b.hook.ID, id, true)
	require.NoError(t, err)
	require.Equal(t, delivery.WorkflowID("e-2"), workflowID)
	require.Eventually(t, func() bool { return b.requests.Load() == 2 }, 20*time.Second, 20*time.Millisecond)

	other, err := b.st.CreateWebhook(t.Context(), store.Webhook{AccountID: store.DefaultAccount, SurveyID: "survey-2", Name: "other", URL: b.hook.URL,
		Events: []string{"*"}, IsActive: true, Secret: b.hook.Secret})
	require.NoError(t, err)
	_, err = b.svc.Retry(t.Context(), other.ID, id, true)
	require.ErrorIs(t, err, store.ErrNotFound, "a delivery of another webhook")

	b.deactivate(t)
	_, err = b.svc.Retry(t.Context(), b.hook.ID, id, true)
	require.ErrorIs(t, err, delivery.ErrInactive)
}

// A test is an ordinary delivery with trigger test: it reaches an inactive webhook, once.
func TestTestReachesAnInactiveWebhookOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startWorker(t)
	b.deactivate(t)
	tested, err := b.svc.Test(t.Context(), b.hook)
	require.NoError(t, err)
	as, err := b.st.ListAttempts(t.Context(), tested.DeliveryID)
	require.NoError(t, err)
	require.Len(t, as, 1)
	require.Equal(t, delivery.TriggerTest, as[0].Trigger)
	require.Equal(t, int32(1), b.requests.Load())
}

// Publish stores the envelope in canonical form (the bytes JSON.stringify(JSON.parse(body))
// gives), whatever the spelling of the publisher's data, so another spelling of the same
// data is the same event. A number a double changes is refused with its JSON pointer, and
// nothing is stored.
func TestPublishStoresCanonicalEnvelope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	publish := func(id, data string) (delivery.Published, error) {
		return b.svc.Publish(t.Context(), delivery.NewEvent{ID: id, AccountID: store.DefaultAccount,
			Type: "survey.response.completed", SurveyID: "survey-1", Data: []byte(data)})
	}
	data := `{"b":"<&>", "2":1.0, "1":[1e3,-0], "a":"Caf\u00e9"}`
	p, err := publish("e-canonical", data)
	require.NoError(t, err)
	require.True(t, p.Created)
	stored, err := b.st.GetEvent(t.Context(), "e-canonical")
	require.NoError(t, err)
	require.Equal(t, string(p.Event.Body), string(stored.Body))
	canonical, err := jsoncanon.Canonical(stored.Body)
	require.NoError(t, err)
	require.Equal(t, string(canonical), string(stored.Body), "the stored envelope is in canonical form")
	canonicalData, err := jsoncanon.Canonical([]byte(data))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(stored.Body), `,"data":`+string(canonicalData)+`}`), string(stored.Body))

	again, err := publish("e-canonical", `{"b":"\u003c\u0026\u003e","1":[1000,0],"2":1,"a":"Café"}`)
	require.NoError(t, err, "the same data spelled otherwise is the same event")
	require.False(t, again.Created)

	_, err = publish("e-inexact", `{"answers":[{"value":1},{"value":9007199254740993}]}`)
	var number *jsoncanon.NumberError
	require.ErrorAs(t, err, &number)
	require.Equal(t, "/data/answers/1/value", number.Pointer)
	require.Equal(t, "9007199254740993", number.Number)
	_, err = b.st.GetEvent(t.Context(), "e-inexact")
	require.ErrorIs(t, err, store.ErrNotFound, "nothing stored")
}
