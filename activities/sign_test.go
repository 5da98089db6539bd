package activities_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// signedAttempt delivers one test event to hook (its URL set to a receiver here) under cfg
// and returns the request's headers as the receiver got them (nil when nothing arrived)
// and the recorded attempt.
func signedAttempt(t *testing.T, hook store.Webhook, cfg activities.Config) (http.Header, store.Attempt) {
	t.Helper()
	var mu sync.Mutex
	var got http.Header
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
	}))
	t.Cleanup(rc.Close)

	st := store.New(testenv.Postgres(t), testenv.Keyring())
	ctx := t.Context()
	hook.AccountID, hook.SurveyID, hook.Name, hook.URL = store.DefaultAccount, "s-1", "signed", rc.URL
	hook.Events, hook.IsActive = []string{"*"}, true
	created, err := st.CreateWebhook(ctx, hook)
	require.NoError(t, err)
	p, err := st.PublishEvent(ctx, store.Event{ID: "test-" + uuid.NewString(), AccountID: store.DefaultAccount, EventType: "webhook.test",
		SurveyID: "s-1", Body: []byte(`{"a":"<b>&é"}`), TargetWebhookID: &created.ID})
	require.NoError(t, err)
	cfg.Schedule = delivery.Schedule{Delays: []time.Duration{time.Minute}, AttemptTimeout: 5 * time.Second}
	acts := activities.New(st, loopbackAllowed.Client(), cfg, slog.New(slog.DiscardHandler))
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	_, _ = env.ExecuteActivity(acts.Deliver, activities.DeliverInput{DeliveryID: p.Deliveries[0].ID, Trigger: delivery.TriggerTest})
	as, err := st.ListAttempts(ctx, p.Deliveries[0].ID)
	require.NoError(t, err)
	require.Len(t, as, 1)
	mu.Lock()
	defer mu.Unlock()
	return got, as[0]
}

func TestDeliverSignsWithTheProfile(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"a":"<b>&é"}`)
	profile, err := signature.ParseProfile("X-SmartSurvey-Signature", "hex")
	require.NoError(t, err)
	h, attempt := signedAttempt(t, store.Webhook{Secret: secret}, activities.Config{Signature: profile})
	require.NotNil(t, h, attempt.Error)
	require.Equal(t, profile.Value([]string{secret}, body), h.Get("X-SmartSurvey-Signature"))
	require.Len(t, h.Get("X-SmartSurvey-Signature"), 64, "bare hex")
	require.Empty(t, h.Get(signature.HeaderSignature), "the profile's header replaces the default one")
	require.NoError(t, signature.VerifyStandard(secret, h, body, time.Now(), 0), "Standard Webhooks is always sent")
	require.Contains(t, string(attempt.RequestHeaders), "X-Smartsurvey-Signature", "the delivery log shows what was sent")

	// The zero Config is the default profile.
	h, _ = signedAttempt(t, store.Webhook{Secret: secret}, activities.Config{})
	require.NoError(t, signature.Verify(secret, h.Get(signature.HeaderSignature), body))
}

func TestDeliverSignsWithEd25519(t *testing.T) {
	t.Parallel()
	key, err := signature.GenerateSigningKey()
	require.NoError(t, err)
	public, err := signature.PublicKey(key)
	require.NoError(t, err)
	profile, err := signature.ParseProfile("X-SmartSurvey-Signature", "hex")
	require.NoError(t, err)
	h, _ := signedAttempt(t, store.Webhook{Signing: store.SigningEd25519, SigningKey: key}, activities.Config{Signature: profile})
	require.NotNil(t, h)
	require.NoError(t, signature.VerifyAsymmetric([]string{public}, h, []byte(`{"a":"<b>&é"}`), time.Now(), 0))
	require.Empty(t, h.Get("X-SmartSurvey-Signature"), "no shared secret, no HMAC")
	require.Empty(t, h.Get(signature.HeaderSignature))

	// A key that does not parse sends nothing unsigned.
	h, attempt := signedAttempt(t, store.Webhook{Signing: store.SigningEd25519, SigningKey: "whsk_damaged"}, activities.Config{})
	require.Nil(t, h)
	require.Contains(t, attempt.Error, "signing key cannot be read")
	require.NotContains(t, string(attempt.RequestHeaders), "whsk_")
}
