package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

const ed25519CreateBody = `{"name":"n","url":"https://example.com/h","events":["*"],"signing":"ed25519"}`

// TestEd25519Webhook: an ed25519 webhook's answers show its signing and, on create and
// under .../public-key, its whpk_ key; never a secret or the private key.
func TestEd25519Webhook(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", ed25519CreateBody)
	require.Equal(t, store.SigningEd25519, created.Signing)
	require.Empty(t, created.Secret)
	require.True(t, strings.HasPrefix(created.PublicKey, "whpk_"), created.PublicKey)
	_, err := signature.ParsePublicKey(created.PublicKey)
	require.NoError(t, err)

	stored, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	public, err := signature.PublicKey(stored.SigningKey)
	require.NoError(t, err)
	require.Equal(t, public, created.PublicKey, "the key that signs is the one shown")

	hookPath := webhooksPath + "/" + created.ID.String()
	for _, path := range []string{hookPath, webhooksPath} {
		resp := b.do(t, http.MethodGet, path, "")
		require.Equal(t, http.StatusOK, resp.status)
		require.Contains(t, string(resp.body), `"signing":"ed25519"`)
		require.NotContains(t, string(resp.body), "whpk_", "gets and lists show no key")
		require.NotContains(t, string(resp.body), "whsk_")
	}

	resp := b.do(t, http.MethodGet, hookPath+"/public-key", "")
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	require.Equal(t, publicKeyResponse{PublicKey: created.PublicKey}, decode[publicKeyResponse](t, resp))

	// No shared secret: 409, and nothing is recorded as shown.
	resp = b.do(t, http.MethodGet, hookPath+"/secret", "")
	require.Equal(t, http.StatusConflict, resp.status)
	require.Contains(t, apiError(t, resp).Message, "public-key")
	var shown int
	require.NoError(t, b.db.GetContext(t.Context(), &shown, `SELECT count(*) FROM audit_log WHERE action = 'webhook.secret_shown'`))
	require.Zero(t, shown)

	// Signing never changes.
	resp = b.do(t, http.MethodPatch, hookPath, `{"signing":"hmac"}`)
	require.Equal(t, http.StatusBadRequest, resp.status)
	require.Equal(t, []string{"signing"}, fieldNames(apiError(t, resp)))

	// An HMAC webhook has no public key, and shows "hmac".
	hmac := createWebhook(t, b, "survey-1", validCreateBody)
	require.Equal(t, store.SigningHMAC, hmac.Signing)
	require.Empty(t, hmac.PublicKey)
	resp = b.do(t, http.MethodGet, webhooksPath+"/"+hmac.ID.String()+"/public-key", "")
	require.Equal(t, http.StatusConflict, resp.status)
	require.Contains(t, apiError(t, resp).Message, "secret")
	resp = b.do(t, http.MethodGet, webhooksPath+"/"+hmac.ID.String()+"/secret", "")
	require.Equal(t, http.StatusOK, resp.status)
	explicit := createWebhook(t, b, "survey-1", `{"name":"n","url":"https://example.com/h","events":["*"],"signing":"hmac"}`)
	require.True(t, strings.HasPrefix(explicit.Secret, "whsec_"))

	resp = b.do(t, http.MethodGet, "/api/surveys/survey-2/webhooks/"+created.ID.String()+"/public-key", "")
	require.Equal(t, http.StatusNotFound, resp.status, "another survey's path does not reach it")
}

func TestEd25519WebhookValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct{ body, field string }{
		{`{"name":"n","url":"https://example.com/h","events":["*"],"signing":"rsa"}`, "signing"},
		{`{"name":"n","url":"https://example.com/h","events":["*"],"signing":"ED25519"}`, "signing"},
		{`{"name":"n","url":"https://example.com/h","events":["*"],"signing":null}`, "signing"},
		{`{"name":"n","url":"https://example.com/h","events":["*"],"signing":1}`, "signing"},
		{`{"name":"n","url":"https://example.com/h","events":["*"],"signing":"ed25519","secret":"my-own-secret-0123456789"}`, "secret"},
	} {
		resp := b.do(t, http.MethodPost, webhooksPath, tt.body)
		require.Equal(t, http.StatusBadRequest, resp.status, tt.body)
		require.Equal(t, []string{tt.field}, fieldNames(apiError(t, resp)), tt.body)
	}
	require.Zero(t, countWebhooks(t, b))
}

// TestEd25519Rotation: a rotation makes a new key pair, and the old key keeps signing for
// the overlap, shown as previousPublicKey.
func TestEd25519Rotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", ed25519CreateBody)
	hookPath := webhooksPath + "/" + created.ID.String()

	resp := b.do(t, http.MethodPost, hookPath+"/secret/rotate", `{"secret":"my-own-secret-0123456789"}`)
	require.Equal(t, http.StatusBadRequest, resp.status)
	require.Equal(t, []string{"secret"}, fieldNames(apiError(t, resp)))

	resp = b.do(t, http.MethodPost, hookPath+"/secret/rotate", `{"overlapSeconds":3600}`)
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	rotated := decode[publicKeyResponse](t, resp)
	require.NotEqual(t, created.PublicKey, rotated.PublicKey)
	require.Equal(t, created.PublicKey, rotated.PreviousPublicKey)
	require.NotNil(t, rotated.PreviousKeyExpiresAt)
	require.WithinDuration(t, time.Now().Add(time.Hour), *rotated.PreviousKeyExpiresAt, time.Minute)
	require.NotContains(t, string(resp.body), "secret")

	resp = b.do(t, http.MethodGet, hookPath+"/public-key", "")
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, rotated, decode[publicKeyResponse](t, resp))

	stored, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	require.Len(t, stored.SigningKeys(time.Now()), 2, "both keys sign during the overlap")

	// As for secrets, no second rotation during the overlap, unless it drops every old key.
	resp = b.do(t, http.MethodPost, hookPath+"/secret/rotate", "")
	require.Equal(t, http.StatusConflict, resp.status)
	resp = b.do(t, http.MethodPost, hookPath+"/secret/rotate", `{"overlapSeconds":0}`)
	require.Equal(t, http.StatusOK, resp.status)
	abrupt := decode[publicKeyResponse](t, resp)
	require.Empty(t, abrupt.PreviousPublicKey)
	require.Nil(t, abrupt.PreviousKeyExpiresAt)
}

// TestEd25519AuditHoldsNoKey: the audit entries of an ed25519 webhook's life name its signing
// but hold no key, private or public.
func TestEd25519AuditHoldsNoKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", ed25519CreateBody)
	hookPath := webhooksPath + "/" + created.ID.String()
	resp := b.do(t, http.MethodPost, hookPath+"/secret/rotate", "")
	require.Equal(t, http.StatusOK, resp.status)
	b.do(t, http.MethodGet, hookPath+"/public-key", "")
	b.do(t, http.MethodGet, hookPath+"/secret", "")

	var entries []struct {
		Action  string `db:"action"`
		Changes string `db:"changes"`
	}
	require.NoError(t, b.db.SelectContext(t.Context(), &entries, `SELECT action, changes::text AS changes FROM audit_log ORDER BY id`))
	require.Len(t, entries, 2)
	require.Equal(t, "webhook.created", entries[0].Action)
	require.Contains(t, entries[0].Changes, `"signing": "ed25519"`)
	require.Equal(t, "webhook.secret_rotated", entries[1].Action)
	stored, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	for _, e := range entries {
		for _, material := range []string{"whsk_", "whpk_", "whsec_", strings.TrimPrefix(stored.SigningKey, "whsk_")[:16],
			strings.TrimPrefix(created.PublicKey, "whpk_")[:16]} {
			require.NotContains(t, e.Changes, material, e.Action)
		}
	}
}
