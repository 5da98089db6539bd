package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// createKey makes an account key with the test's platform key and returns the answer.
func createKey(t *testing.T, b *bundle, account, name string) keyResponse {
	t.Helper()
	resp := b.do(t, http.MethodPost, "/api/accounts/"+account+"/keys", `{"name":"`+name+`"}`)
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	k := decode[keyResponse](t, resp)
	require.True(t, strings.HasPrefix(k.Key, k.Prefix+"_"), "the key starts with its prefix")
	return k
}

func withKey(key string) func(*http.Request) {
	return withHeader("Authorization", "Bearer "+key)
}

// TestDumpHoldsNoSecret dumps the database after webhooks are created (with a secret of
// their own and a generated one), a secret is rotated with an overlap and keys are made:
// no secret and no key is in the dump, in any column or form.
func TestDumpHoldsNoSecret(t *testing.T) {
	t.Parallel()
	url := testenv.PostgresURL(t)
	db, err := sqlx.Open(store.DriverName, url)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	b := setupOn(t, db)

	own := createWebhook(t, b, "survey-1", validCreateBody)
	generated := createWebhook(t, b, "survey-1", `{"name":"g","url":"https://example.com/g","events":["*"]}`)
	wide := b.do(t, http.MethodPost, "/api/accounts/acme/webhooks", `{"name":"w","url":"https://example.com/w","events":["*"],"secret":"an-account-wide-secret-0123456789"}`)
	require.Equal(t, http.StatusCreated, wide.status)
	rotated := b.do(t, http.MethodPost, webhooksPath+"/"+generated.ID.String()+"/secret/rotate", `{"overlapSeconds":3600}`)
	require.Equal(t, http.StatusOK, rotated.status)
	newSecret := decode[secretResponse](t, rotated).Secret
	k1, k2 := createKey(t, b, "acme", "ci"), createKey(t, b, store.DefaultAccount, "ops")

	dump := pgDump(t, url)
	require.Contains(t, dump, generated.ID.String(), "the dump holds the webhooks")
	require.Contains(t, dump, k1.Prefix, "the dump holds the keys")
	for _, secret := range []string{own.Secret, generated.Secret, newSecret, decode[webhookResponse](t, wide).Secret, k1.Key, k2.Key} {
		require.NotEmpty(t, secret)
		forms := []string{secret, fmt.Sprintf("%x", secret)}
		if _, body, ok := strings.Cut(secret, "_"); ok && len(body) >= 16 {
			forms = append(forms, body) // without a whsec_ or key prefix
		}
		for _, form := range forms {
			require.False(t, strings.Contains(dump, form), "the dump holds a secret in clear")
		}
	}
}

// pgDump dumps the database at url with the installed pg_dump.
func pgDump(t *testing.T, url string) string {
	t.Helper()
	path, err := exec.LookPath("pg_dump")
	if err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
		require.NotEmpty(t, matches, "pg_dump is installed with the PostgreSQL server binaries")
		path = matches[len(matches)-1]
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(t.Context(), path, "--dbname="+url)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), errOut.String())
	return out.String()
}

// TestRateLimitPerKey sends three times a key's limit at once: past its burst the key gets
// 429 with Retry-After, while another key, sending at the same time, gets every answer.
func TestRateLimitPerKey(t *testing.T) {
	t.Parallel()
	const limit, burst = 5, 5
	b := setup(t, func(c *Config) { c.RateLimit, c.RateBurst = limit, burst })
	acme := createKey(t, b, "acme", "busy")

	ok, limited := 0, 0
	for i := range 3 * limit {
		resp := b.do(t, http.MethodGet, "/api/accounts/acme/webhooks", "", withKey(acme.Key))
		switch resp.status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			e := apiError(t, resp)
			require.Equal(t, CodeTooManyRequests, e.Code)
			wait, err := strconv.Atoi(resp.header.Get("Retry-After"))
			require.NoError(t, err, "Retry-After is whole seconds")
			require.GreaterOrEqual(t, wait, 1)
		default:
			t.Fatalf("status %d: %s", resp.status, resp.body)
		}
		if i%3 == 0 { // within its own limit
			other := b.do(t, http.MethodGet, "/api/accounts/acme/webhooks", "", withKey(otherKey))
			require.Equal(t, http.StatusOK, other.status, "another key is not limited")
		}
	}
	require.Positive(t, limited, "a key past its rate is refused")
	require.GreaterOrEqual(t, ok, burst, "the burst goes through")
	require.Less(t, ok, 3*limit)
	require.Contains(t, b.logs.String(), acme.Prefix, "the refusals are logged with the key's prefix")
}

// TestAuditRecordsChanges makes each kind of change and reads the account's audit log:
// one entry per change, newest first, naming the key, never holding a secret.
func TestAuditRecordsChanges(t *testing.T) {
	t.Parallel()
	b := setup(t)
	key := createKey(t, b, "acme", "ci")
	as := withKey(key.Key)
	const secret = "an-own-secret-of-32-characters!!"
	created := b.do(t, http.MethodPost, "/api/accounts/acme/webhooks",
		`{"name":"w","url":"https://example.com/w?token=abc","events":["*"],"secret":"`+secret+`"}`, as)
	require.Equal(t, http.StatusCreated, created.status, string(created.body))
	hook := decode[webhookResponse](t, created)
	path := "/api/accounts/acme/webhooks/" + hook.ID.String()
	for _, step := range []struct{ method, path, body string }{
		{http.MethodPatch, path, `{"surveyIds":["s2"],"description":"d"}`},
		{http.MethodGet, path + "/secret", ""},
		{http.MethodPost, path + "/secret/rotate", `{"overlapSeconds":0,"secret":"a-second-secret-of-32-characters"}`},
		{http.MethodDelete, path, ""},
	} {
		resp := b.do(t, step.method, step.path, step.body, as)
		require.Less(t, resp.status, 300, string(resp.body))
	}
	revoked := createKey(t, b, "acme", "old")
	require.Equal(t, http.StatusOK, b.do(t, http.MethodDelete, "/api/accounts/acme/keys/"+revoked.ID.String(), "").status)
	// A refused change is not recorded.
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/api/accounts/acme/webhooks", `{"name":""}`, as).status)

	resp := b.do(t, http.MethodGet, "/api/accounts/acme/audit", "", as)
	require.Equal(t, http.StatusOK, resp.status)
	require.NotContains(t, string(resp.body), secret)
	require.NotContains(t, string(resp.body), "a-second-secret")
	require.NotContains(t, string(resp.body), "token=abc", "URLs are recorded without their query")
	require.NotContains(t, string(resp.body), revoked.Key)
	entries := decode[listResponse[auditResponse]](t, resp).Data
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
		require.Equal(t, "acme", e.AccountID)
	}
	require.Equal(t, []string{"key.revoked", "key.created", "webhook.deleted", "webhook.secret_rotated",
		"webhook.secret_shown", "webhook.updated", "webhook.created", "key.created"}, actions)
	byAction := map[string]auditResponse{}
	for _, e := range entries {
		byAction[e.Action] = e
	}
	require.Equal(t, key.Prefix, byAction["webhook.created"].Key)
	require.Equal(t, hook.ID.String(), byAction["webhook.created"].Resource)
	require.Equal(t, revoked.ID.String(), byAction["key.revoked"].Resource)
	require.True(t, strings.HasPrefix(byAction["key.revoked"].Key, "platform-"), "platform keys are named by their digest")
	var changes map[string]any
	require.NoError(t, json.Unmarshal(byAction["webhook.updated"].Changes, &changes))
	require.Equal(t, map[string]any{"surveyIds": []any{"s2"}, "description": "d"}, changes)
	require.NoError(t, json.Unmarshal(byAction["webhook.created"].Changes, &changes))
	require.Equal(t, "https://example.com/w", changes["url"])

	// Another account sees none of it.
	other := decode[listResponse[auditResponse]](t, b.do(t, http.MethodGet, "/api/accounts/globex/audit", ""))
	require.Empty(t, other.Data)
}
