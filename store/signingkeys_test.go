package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/keyring"
	"github.com/surveyhooks/surveyhooks/store"
)

// newEd25519Webhook returns an ed25519 webhook of survey-1, ready to create. The store
// keeps signing keys as opaque strings; signature makes real ones.
func newEd25519Webhook(name string) store.Webhook {
	w := newWebhook("survey-1", name)
	w.Secret = ""
	w.Signing = store.SigningEd25519
	w.SigningKey = "whsk_first-key-of-" + name
	return w
}

func TestEd25519WebhookKeepsItsSigningKey(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()

	hmac, err := st.CreateWebhook(ctx, newWebhook("survey-1", "hmac"))
	require.NoError(t, err)
	require.Equal(t, store.SigningHMAC, hmac.Signing, "the default")
	require.Empty(t, hmac.SigningKey)
	require.Equal(t, []string{hmac.Secret}, hmac.SigningSecrets(time.Now()))
	require.Empty(t, hmac.SigningKeys(time.Now()))

	created, err := st.CreateWebhook(ctx, newEd25519Webhook("ed"))
	require.NoError(t, err)
	require.Equal(t, store.SigningEd25519, created.Signing)
	require.Equal(t, "whsk_first-key-of-ed", created.SigningKey)
	require.Empty(t, created.Secret, "no shared secret")
	require.Empty(t, created.SigningSecrets(time.Now()))
	require.Equal(t, []string{"whsk_first-key-of-ed"}, created.SigningKeys(time.Now()))
	got, err := st.GetWebhook(ctx, inSurvey("survey-1"), created.ID)
	require.NoError(t, err)
	require.Equal(t, created, got)

	// The key is sealed, bound to its row and apart from secrets.
	var row string
	require.NoError(t, db.GetContext(ctx, &row, `SELECT row_to_json(w)::text FROM webhooks w WHERE id = $1`, created.ID))
	require.NotContains(t, row, "first-key-of-ed")
	_, err = db.ExecContext(ctx, `INSERT INTO webhooks (id, account_id, survey_id, name, url, events, signing, secret_sealed)
		VALUES (gen_random_uuid(), 'default', 'survey-1', 'both', 'https://x.example', '{"*"}', 'ed25519', '\x00')`)
	require.ErrorContains(t, err, "webhooks_signing_keys_check", "an ed25519 webhook holds no secret")
	_, err = db.ExecContext(ctx, `UPDATE webhooks SET signing_key_sealed = secret_sealed, secret_sealed = NULL,
		signing = 'ed25519' WHERE id = $1`, hmac.ID)
	require.NoError(t, err)
	_, err = st.GetWebhook(ctx, inSurvey("survey-1"), hmac.ID)
	require.ErrorContains(t, err, "belongs to another row", "a sealed secret does not open as a signing key")
}

func TestRotateWebhookSigningKey(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	created, err := st.CreateWebhook(ctx, newEd25519Webhook("rotating"))
	require.NoError(t, err)

	// Each kind of webhook rotates by its own method only.
	_, err = st.RotateWebhookSecret(ctx, inSurvey("survey-1"), created.ID, "a-secret-0123456789", time.Hour)
	require.ErrorIs(t, err, store.ErrNotFound)
	hmac, err := st.CreateWebhook(ctx, newWebhook("survey-1", "hmac"))
	require.NoError(t, err)
	_, err = st.RotateWebhookSigningKey(ctx, inSurvey("survey-1"), hmac.ID, "whsk_key", time.Hour)
	require.ErrorIs(t, err, store.ErrNotFound)

	rotated, err := st.RotateWebhookSigningKey(ctx, inSurvey("survey-1"), created.ID, "whsk_second", time.Hour)
	require.NoError(t, err)
	require.Equal(t, "whsk_second", rotated.SigningKey)
	require.Equal(t, "whsk_first-key-of-rotating", *rotated.PreviousSigningKey)
	require.Nil(t, rotated.PreviousSecret)
	require.Empty(t, rotated.Secret)
	now := rotated.UpdatedAt
	require.True(t, rotated.PreviousSecretLive(now))
	require.Equal(t, []string{"whsk_second", "whsk_first-key-of-rotating"}, rotated.SigningKeys(now), "both sign, newest first")
	require.Equal(t, []string{"whsk_second"}, rotated.SigningKeys(now.Add(2*time.Hour)))

	_, err = st.RotateWebhookSigningKey(ctx, inSurvey("survey-1"), created.ID, "whsk_third", time.Hour)
	var overlap *store.RotationOverlapError
	require.ErrorAs(t, err, &overlap, "as for secrets: no second rotation during the overlap")

	// The overlap's end forgets the previous key: on reads, on writes and by retention.
	expirePreviousSecret(t, db, created.ID)
	got, err := st.GetWebhook(ctx, inSurvey("survey-1"), created.ID)
	require.NoError(t, err)
	require.Nil(t, got.PreviousSigningKey)
	n, err := st.ClearExpiredSecrets(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	var stored []byte
	require.NoError(t, db.GetContext(ctx, &stored, `SELECT previous_signing_key_sealed FROM webhooks WHERE id = $1`, created.ID))
	require.Nil(t, stored)

	abrupt, err := st.RotateWebhookSigningKey(ctx, inSurvey("survey-1"), created.ID, "whsk_fourth", 0)
	require.NoError(t, err)
	require.Nil(t, abrupt.PreviousSigningKey)
	require.Equal(t, []string{"whsk_fourth"}, abrupt.SigningKeys(time.Now()))
}

// Rekey re-seals signing keys as it does secrets, previous keys of a running rotation
// included.
func TestRekeyMovesSigningKeysToTheFirstKey(t *testing.T) {
	t.Parallel()
	_, db := setupWebhooks(t)
	ctx := t.Context()
	keyA, keyB := keyring.Generate(), keyring.Generate()
	underA, both, underB := storeWithKeys(t, db, keyA), storeWithKeys(t, db, keyB, keyA), storeWithKeys(t, db, keyB)

	plain, err := underA.CreateWebhook(ctx, newEd25519Webhook("plain"))
	require.NoError(t, err)
	overlapping, err := underA.CreateWebhook(ctx, newEd25519Webhook("overlapping"))
	require.NoError(t, err)
	overlapping, err = both.RotateWebhookSigningKey(ctx, inSurvey("survey-1"), overlapping.ID, "whsk_rotated", time.Hour)
	require.NoError(t, err)
	hmac := rotated(t, underA, underA, "hmac")

	n, err := both.Rekey(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	for _, want := range []store.Webhook{plain, overlapping, hmac} {
		got, err := underB.GetWebhook(ctx, inSurvey("survey-1"), want.ID)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	require.NotNil(t, overlapping.PreviousSigningKey)
}
