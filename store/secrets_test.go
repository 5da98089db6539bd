package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/keyring"
	"github.com/surveyhooks/surveyhooks/store"
)

// storeWithKeys returns a Store over db whose keyring holds keys (keyring.Generate
// values), the first one sealing.
func storeWithKeys(t *testing.T, db *sqlx.DB, keys ...string) *store.Store {
	t.Helper()
	k, err := keyring.Parse(strings.Join(keys, ","))
	require.NoError(t, err)
	return store.New(db, k)
}

// rotated creates a webhook through create and rotates its secret through rotate, so that
// its previous secret is sealed by create's keyring and its secret by rotate's.
func rotated(t *testing.T, create, rotate *store.Store, name string) store.Webhook {
	t.Helper()
	w, err := create.CreateWebhook(t.Context(), newWebhook("survey-1", name))
	require.NoError(t, err)
	w, err = rotate.RotateWebhookSecret(t.Context(), inSurvey("survey-1"), w.ID, "whsec_rotated-"+name+"-0123456789", time.Hour)
	require.NoError(t, err)
	return w
}

// After a rekey, every secret opens under the new key alone, previous secrets of a running
// rotation included, and no longer under the old one.
func TestRekeyMovesSecretsToTheFirstKey(t *testing.T) {
	t.Parallel()
	_, db := setupWebhooks(t)
	ctx := t.Context()
	keyA, keyB := keyring.Generate(), keyring.Generate()
	underA, both, underB := storeWithKeys(t, db, keyA), storeWithKeys(t, db, keyB, keyA), storeWithKeys(t, db, keyB)

	plain, err := underA.CreateWebhook(ctx, newWebhook("survey-1", "plain"))
	require.NoError(t, err)
	overlapping := rotated(t, underA, underA, "overlapping")
	// Rotated once B seals: only its previous secret is under A.
	halfway := rotated(t, underA, both, "halfway")
	_, err = underB.GetWebhook(ctx, inSurvey("survey-1"), halfway.ID)
	require.ErrorIs(t, err, keyring.ErrUnknownKey, "its previous secret is still under A")

	n, err := both.Rekey(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = both.Rekey(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing is left to re-seal")

	for _, want := range []store.Webhook{plain, overlapping, halfway} {
		got, err := underB.GetWebhook(ctx, inSurvey("survey-1"), want.ID)
		require.NoError(t, err)
		require.Equal(t, want, got, "secrets, previous secret and its expiry kept, nothing else touched")
		_, err = underA.GetWebhook(ctx, inSurvey("survey-1"), want.ID)
		require.ErrorIs(t, err, keyring.ErrUnknownKey)
	}
	require.NotNil(t, overlapping.PreviousSecret)
}

// The database holds no secret in clear, and a sealed secret opens only in its own row: one
// copied into another webhook's row makes that row unreadable rather than hand out another
// webhook's secret.
func TestSealedSecretsHideTheSecretAndBindTheirRow(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	first := rotated(t, st, st, "first")
	second, err := st.CreateWebhook(ctx, newWebhook("survey-1", "second"))
	require.NoError(t, err)

	var rows []string
	require.NoError(t, db.SelectContext(ctx, &rows, `SELECT row_to_json(w)::text FROM webhooks w`))
	require.Len(t, rows, 2)
	var sealed [][]byte
	require.NoError(t, db.SelectContext(ctx, &sealed, `SELECT secret_sealed FROM webhooks
		UNION ALL SELECT previous_secret_sealed FROM webhooks WHERE previous_secret_sealed IS NOT NULL`))
	require.Len(t, sealed, 3)
	for _, secret := range []string{first.Secret, *first.PreviousSecret, second.Secret} {
		for _, row := range rows {
			require.NotContains(t, row, secret)
		}
		for _, value := range sealed {
			require.NotContains(t, string(value), secret)
		}
	}

	_, err = db.ExecContext(ctx, `UPDATE webhooks SET secret_sealed = (SELECT secret_sealed FROM webhooks WHERE id = $1)
		WHERE id = $2`, first.ID, second.ID)
	require.NoError(t, err)
	_, err = st.GetWebhook(ctx, inSurvey("survey-1"), second.ID)
	require.ErrorContains(t, err, "belongs to another row")
	require.NotErrorIs(t, err, store.ErrNotFound)
	got, err := st.GetWebhook(ctx, inSurvey("survey-1"), first.ID)
	require.NoError(t, err)
	require.Equal(t, first, got)
}
