package activities_test

import (
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
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// testAttempt makes one test attempt to url through policy's client and returns what was
// recorded.
func testAttempt(t *testing.T, url string, policy netguard.Policy) store.Attempt {
	t.Helper()
	st := store.New(testenv.Postgres(t), testenv.Keyring())
	ctx := t.Context()
	hook, err := st.CreateWebhook(ctx, store.Webhook{AccountID: store.DefaultAccount, SurveyID: "s-1", Name: "probe", URL: url,
		Events: []string{"*"}, IsActive: true, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
	require.NoError(t, err)
	p, err := st.PublishEvent(ctx, store.Event{ID: "test-" + uuid.NewString(), AccountID: store.DefaultAccount, EventType: "webhook.test",
		SurveyID: "s-1", Body: []byte(`{}`), TargetWebhookID: &hook.ID})
	require.NoError(t, err)
	acts := activities.New(st, policy.Client(), activities.Config{Schedule: delivery.Schedule{
		Delays: []time.Duration{time.Minute}, AttemptTimeout: 5 * time.Second}}, slog.New(slog.DiscardHandler))
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	_, _ = env.ExecuteActivity(acts.Deliver, activities.DeliverInput{DeliveryID: p.Deliveries[0].ID, Trigger: delivery.TriggerTest})
	as, err := st.ListAttempts(ctx, p.Deliveries[0].ID)
	require.NoError(t, err)
	require.Len(t, as, 1)
	return as[0]
}

var loopbackAllowed = netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// A receiver's response headers are logged within a cap, as its body is; a header block
// past what the client reads fails the attempt instead of being stored.
func TestResponseHeadersAreCapped(t *testing.T) {
	t.Parallel()
	many := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 40 {
			w.Header().Set("X-Filler-"+string(rune('A'+i%26))+string(rune('a'+i/26)), strings.Repeat("x", 1500))
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(many.Close)
	a := testAttempt(t, many.URL, loopbackAllowed)
	require.NotNil(t, a.ResponseStatus)
	require.Equal(t, http.StatusOK, *a.ResponseStatus)
	require.Less(t, len(a.ResponseHeaders), 12<<10, "40 values of 1,500 bytes are cut to the cap")
	require.Contains(t, string(a.ResponseHeaders), "X-Surveyhooks-Truncated")
	require.Contains(t, string(a.ResponseHeaders), "[truncated at 1024 bytes]")

	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 5 {
			w.Header().Set("X-Huge-"+string(rune('A'+i)), strings.Repeat("y", 100_000))
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(huge.Close)
	a = testAttempt(t, huge.URL, loopbackAllowed)
	require.Nil(t, a.ResponseStatus, "a header block past the client's limit is no answer")
	require.Less(t, len(a.ResponseHeaders), 1<<10)
	require.Contains(t, a.Error, "header")
}

// Attempt errors say what went wrong without the addresses a host resolved to or the DNS
// server asked: any key holder reads them through the test endpoint.
func TestAttemptErrorsKeepInternalAddressesOut(t *testing.T) {
	t.Parallel()
	strict := netguard.Policy{}
	a := testAttempt(t, "https://localhost:8443/hook", strict)
	require.Contains(t, a.Error, "refused")
	for _, internal := range []string{"127.0.0.1", "::1", "8443"} {
		require.NotContains(t, a.Error, internal)
	}

	a = testAttempt(t, "https://no-such-host.invalid/hook", strict)
	require.Contains(t, a.Error, "no-such-host.invalid")
	require.NotContains(t, a.Error, ":53", "the DNS server is not shown")
	require.NotContains(t, a.Error, "lookup")

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens on its port now
	a = testAttempt(t, closed.URL, loopbackAllowed)
	require.Contains(t, a.Error, "could not connect to the receiver")
	require.NotContains(t, a.Error, "127.0.0.1")
}
