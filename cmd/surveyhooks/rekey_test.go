package main

import (
	"bytes"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/keyring"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// TestRekeyResealsUnderTheFirstKey replaces key A by key B as the README says: with "B,A"
// set, rekey re-seals the secrets sealed under A, after which B alone reads them and A
// alone does not.
func TestRekeyResealsUnderTheFirstKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := testenv.PostgresURL(t)
	db, err := sqlx.Open(store.DriverName, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	keyA, keyB := keyring.Generate(), keyring.Generate()
	only := func(key string) *store.Store {
		t.Helper()
		keys, err := keyring.Parse(key)
		require.NoError(t, err)
		return store.New(db, keys)
	}

	const secret = "whsec_rekey-test-secret-of-32-chars!"
	hook, err := only(keyA).CreateWebhook(ctx, store.Webhook{
		AccountID: "default", SurveyID: "s1", Name: "n", URL: "https://example.com/h",
		Events: []string{"survey.response_completed"}, IsActive: true, Secret: secret,
	})
	require.NoError(t, err)
	scope := store.Scope{AccountID: "default", SurveyID: "s1"}

	cfg, err := loadConfig(mapLookup(map[string]string{
		"DATABASE_URL":                dbURL,
		"SURVEYHOOKS_ENCRYPTION_KEYS": keyB + "," + keyA,
	}))
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, rekey(ctx, cfg, &out))
	require.Contains(t, out.String(), "re-sealed the secrets of 1 webhooks")
	require.NotContains(t, out.String(), keyA)
	require.NotContains(t, out.String(), keyB)

	got, err := only(keyB).GetWebhook(ctx, scope, hook.ID)
	require.NoError(t, err)
	require.Equal(t, secret, got.Secret)
	_, err = only(keyA).GetWebhook(ctx, scope, hook.ID)
	require.ErrorIs(t, err, keyring.ErrUnknownKey, "the old key no longer reads it")

	// Everything is under B already: a second run has nothing to do.
	out.Reset()
	require.NoError(t, rekey(ctx, cfg, &out))
	require.Contains(t, out.String(), "re-sealed the secrets of 0 webhooks")
}
