package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// setupWebhooks returns a Store over a fresh database of the test's own.
func setupWebhooks(t *testing.T) (*store.Store, *sqlx.DB) {
	t.Helper()
	db := testenv.Postgres(t)
	return store.New(db, testenv.Keyring()), db
}

// inSurvey is the scope of a survey's webhooks in the default account, where the tests of
// survey-scoped behaviour keep their webhooks.
func inSurvey(surveyID string) store.Scope {
	return store.Scope{AccountID: store.DefaultAccount, SurveyID: surveyID}
}

// newWebhook returns a webhook of the default account's survey surveyID, ready to create.
func newWebhook(surveyID, name string) store.Webhook {
	return store.Webhook{
		AccountID:   store.DefaultAccount,
		SurveyID:    surveyID,
		Name:        name,
		URL:         "https://receiver.example.com/hooks",
		Events:      []string{"survey.response.completed", "form.*"},
		Description: "for tests",
		IsActive:    true,
		Secret:      "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==",
	}
}

func TestCreateGetWebhook(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()

	before := time.Now().Add(-time.Minute)
	created, err := st.CreateWebhook(ctx, newWebhook("survey-1", "first"))
	require.NoError(t, err)
	require.Equal(t, uuid.Version(7), created.ID.Version())
	require.Equal(t, store.DefaultAccount, created.AccountID)
	require.Equal(t, "survey-1", created.SurveyID)
	require.Nil(t, created.SurveyIDs, "a survey's webhook has no survey filter")
	require.Equal(t, "first", created.Name)
	require.Equal(t, []string{"survey.response.completed", "form.*"}, []string(created.Events))
	require.Equal(t, "for tests", created.Description)
	require.True(t, created.IsActive)
	require.Equal(t, "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==", created.Secret)
	require.Nil(t, created.PreviousSecret)
	require.Nil(t, created.PreviousSecretExpiresAt)
	require.True(t, created.CreatedAt.After(before))
	require.Equal(t, created.CreatedAt, created.UpdatedAt)

	got, err := st.GetWebhook(ctx, inSurvey("survey-1"), created.ID)
	require.NoError(t, err)
	require.Equal(t, created, got)

	// The right id under another survey does not exist.
	_, err = st.GetWebhook(ctx, inSurvey("survey-2"), created.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.GetWebhook(ctx, inSurvey("survey-1"), uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestListWebhooks(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()

	var want []uuid.UUID
	for i := range 5 {
		w, err := st.CreateWebhook(ctx, newWebhook("survey-1", fmt.Sprintf("hook %d", i)))
		require.NoError(t, err)
		want = append(want, w.ID)
		_, err = st.CreateWebhook(ctx, newWebhook("survey-2", fmt.Sprintf("other %d", i)))
		require.NoError(t, err)
	}

	var got []uuid.UUID
	var sizes []int
	page := store.Page{Limit: 2}
	for {
		hooks, err := st.ListWebhooks(ctx, inSurvey("survey-1"), page)
		require.NoError(t, err)
		sizes = append(sizes, len(hooks))
		if len(hooks) == 0 {
			break
		}
		for _, h := range hooks {
			require.Equal(t, "survey-1", h.SurveyID)
			got = append(got, h.ID)
		}
		last := hooks[len(hooks)-1].ID
		page.After = &last
	}
	require.Equal(t, []int{2, 2, 1, 0}, sizes)
	require.Equal(t, want, got, "creation order")

	_, err := st.ListWebhooks(ctx, inSurvey("survey-1"), store.Page{})
	require.Error(t, err)

	none, err := st.ListWebhooks(ctx, inSurvey("survey-3"), store.Page{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, none)
}

// The metrics gauge counts the active webhooks of every survey and every account.
func TestCountActiveWebhooks(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()

	_, err := st.CreateWebhook(ctx, newWebhook("survey-1", "active"))
	require.NoError(t, err)
	inactive := newWebhook("survey-1", "inactive")
	inactive.IsActive = false
	_, err = st.CreateWebhook(ctx, inactive)
	require.NoError(t, err)
	_, err = st.CreateWebhook(ctx, newWebhook("survey-2", "other survey"))
	require.NoError(t, err)
	accountWide := newWebhook("", "other account")
	accountWide.AccountID = "acct-other"
	_, err = st.CreateWebhook(ctx, accountWide)
	require.NoError(t, err)

	n, err := st.CountActiveWebhooks(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
}

func TestUpdateWebhook(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()

	created, err := st.CreateWebhook(ctx, newWebhook("survey-1", "before"))
	require.NoError(t, err)

	// An empty update changes nothing, not even updated_at.
	same, err := st.UpdateWebhook(ctx, inSurvey("survey-1"), created.ID, store.WebhookUpdate{})
	require.NoError(t, err)
	require.Equal(t, created, same)

	name := "after"
	inactive := false
	updated, err := st.UpdateWebhook(ctx, inSurvey("survey-1"), created.ID, store.WebhookUpdate{Name: &name, IsActive: &inactive})
	require.NoError(t, err)
	require.Equal(t, "after", updated.Name)
	require.False(t, updated.IsActive)
	require.Equal(t, created.URL, updated.URL, "not given, kept")
	require.Equal(t, created.Events, updated.Events)
	require.Equal(t, created.Description, updated.Description)
	require.Equal(t, created.Secret, updated.Secret)
	require.Equal(t, created.CreatedAt, updated.CreatedAt)
	require.False(t, updated.UpdatedAt.Before(created.UpdatedAt))

	url := "https://other.example.com/x"
	events := []string{"*"}
	empty := ""
	updated, err = st.UpdateWebhook(ctx, inSurvey("survey-1"), created.ID, store.WebhookUpdate{URL: &url, Events: &events, Description: &empty})
	require.NoError(t, err)
	require.Equal(t, url, updated.URL)
	require.Equal(t, events, []string(updated.Events))
	require.Empty(t, updated.Description)
	require.Equal(t, "after", updated.Name)

	got, err := st.GetWebhook(ctx, inSurvey("survey-1"), created.ID)
	require.NoError(t, err)
	require.Equal(t, updated, got)

	_, err = st.UpdateWebhook(ctx, inSurvey("survey-2"), created.ID, store.WebhookUpdate{Name: &name})
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.UpdateWebhook(ctx, inSurvey("survey-2"), created.ID, store.WebhookUpdate{})
	require.ErrorIs(t, err, store.ErrNotFound)
}

// insertHistory gives webhook id one delivery with one attempt, and a test event aimed at it.
func insertHistory(t *testing.T, db *sqlx.DB, surveyID string, id uuid.UUID) {
	t.Helper()
	ctx := t.Context()
	eventID := "evt-" + uuid.NewString()
	_, err := db.ExecContext(ctx, `INSERT INTO events (id, account_id, event_type, survey_id, body)
		VALUES ($1, 'default', 'survey.response.completed', $2, '{}')`, eventID, surveyID)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO events (id, account_id, event_type, survey_id, body, target_webhook_id)
		VALUES ($1, 'default', 'webhook.test', $2, '{}', $3)`, "test-"+eventID, surveyID, id)
	require.NoError(t, err)
	deliveryID := uuid.New()
	_, err = db.ExecContext(ctx, `INSERT INTO deliveries (id, account_id, event_id, webhook_id) VALUES ($1, 'default', $2, $3)`, deliveryID, eventID, id)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO delivery_attempts
		(id, delivery_id, number, trigger, started_at, duration_ms, request_url, request_headers, request_body)
		VALUES ($1, $2, 1, 'auto', now(), 1.5, 'https://receiver.example.com/hooks', '{}', '{}')`, uuid.New(), deliveryID)
	require.NoError(t, err)
}

// historyCounts counts the rows that belong to webhook id: deliveries, attempts, test events.
func historyCounts(t *testing.T, db *sqlx.DB, id uuid.UUID) [3]int {
	t.Helper()
	var n [3]int
	require.NoError(t, db.GetContext(t.Context(), &n[0], `SELECT count(*) FROM deliveries WHERE webhook_id = $1`, id))
	require.NoError(t, db.GetContext(t.Context(), &n[1], `SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = $1`, id))
	require.NoError(t, db.GetContext(t.Context(), &n[2], `SELECT count(*) FROM events WHERE target_webhook_id = $1`, id))
	return n
}

func TestDeleteWebhook(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()

	doomed, err := st.CreateWebhook(ctx, newWebhook("survey-1", "doomed"))
	require.NoError(t, err)
	kept, err := st.CreateWebhook(ctx, newWebhook("survey-1", "kept"))
	require.NoError(t, err)
	insertHistory(t, db, "survey-1", doomed.ID)
	insertHistory(t, db, "survey-1", kept.ID)
	require.Equal(t, [3]int{1, 1, 1}, historyCounts(t, db, doomed.ID))
	for _, id := range []uuid.UUID{doomed.ID, kept.ID} {
		_, err := db.Exec(`INSERT INTO webhook_health (webhook_id, consecutive_failures) VALUES ($1, 1)`, id)
		require.NoError(t, err)
		_, err = db.Exec(`INSERT INTO webhook_stats (webhook_id, bucket, attempts, successes, failures, latency_counts)
			VALUES ($1, date_trunc('hour', now()), 1, 0, 1, '{1}')`, id)
		require.NoError(t, err)
	}

	// Another survey's path cannot delete it.
	require.ErrorIs(t, st.DeleteWebhook(ctx, inSurvey("survey-2"), doomed.ID), store.ErrNotFound)

	require.NoError(t, st.DeleteWebhook(ctx, inSurvey("survey-1"), doomed.ID))
	_, err = st.GetWebhook(ctx, inSurvey("survey-1"), doomed.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, [3]int{0, 0, 0}, historyCounts(t, db, doomed.ID), "history goes with the webhook")
	require.Equal(t, [3]int{1, 1, 1}, historyCounts(t, db, kept.ID), "other webhooks keep theirs")
	requireNoOrphanHealth(t, db)
	health, err := st.WebhookHealths(ctx, []uuid.UUID{kept.ID})
	require.NoError(t, err)
	require.Equal(t, 1, health[kept.ID].ConsecutiveFailures, "other webhooks keep their health")

	require.ErrorIs(t, st.DeleteWebhook(ctx, inSurvey("survey-1"), doomed.ID), store.ErrNotFound)
}

func TestRotateWebhookSecret(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()

	created, err := st.CreateWebhook(ctx, newWebhook("survey-1", "rotating"))
	require.NoError(t, err)
	first := created.Secret

	rotated, err := st.RotateWebhookSecret(ctx, inSurvey("survey-1"), created.ID, "second-secret-0123456789", time.Hour)
	require.NoError(t, err)
	require.Equal(t, "second-secret-0123456789", rotated.Secret)
	require.NotNil(t, rotated.PreviousSecret)
	require.Equal(t, first, *rotated.PreviousSecret)
	require.NotNil(t, rotated.PreviousSecretExpiresAt)
	require.WithinDuration(t, rotated.UpdatedAt.Add(time.Hour), *rotated.PreviousSecretExpiresAt, time.Second)
	now := rotated.UpdatedAt
	require.Equal(t, []string{"second-secret-0123456789", first}, rotated.SigningSecrets(now))
	require.Equal(t, []string{"second-secret-0123456789"}, rotated.SigningSecrets(now.Add(2*time.Hour)))

	// Rotating again during the overlap is refused: it would drop first, which receivers may
	// still be using.
	_, err = st.RotateWebhookSecret(ctx, inSurvey("survey-1"), created.ID, "third-secret-0123456789", 2*time.Hour)
	var overlap *store.RotationOverlapError
	require.ErrorAs(t, err, &overlap)
	require.True(t, overlap.Until.Equal(*rotated.PreviousSecretExpiresAt))
	got, err := st.GetWebhook(ctx, inSurvey("survey-1"), created.ID)
	require.NoError(t, err)
	require.Equal(t, rotated, got, "unchanged by the refused rotation")

	// Once the overlap is over, the webhook rotates again.
	expirePreviousSecret(t, db, created.ID)
	again, err := st.RotateWebhookSecret(ctx, inSurvey("survey-1"), created.ID, "third-secret-0123456789", 2*time.Hour)
	require.NoError(t, err)
	require.Equal(t, "third-secret-0123456789", again.Secret)
	require.Equal(t, "second-secret-0123456789", *again.PreviousSecret)
	require.WithinDuration(t, again.UpdatedAt.Add(2*time.Hour), *again.PreviousSecretExpiresAt, time.Second)

	// No overlap, even during one: every older secret stops signing at once.
	abrupt, err := st.RotateWebhookSecret(ctx, inSurvey("survey-1"), created.ID, "fourth-secret-0123456789", 0)
	require.NoError(t, err)
	require.Equal(t, "fourth-secret-0123456789", abrupt.Secret)
	require.Nil(t, abrupt.PreviousSecret)
	require.Nil(t, abrupt.PreviousSecretExpiresAt)

	_, err = st.RotateWebhookSecret(ctx, inSurvey("survey-2"), created.ID, "fifth-secret-0123456789", time.Hour)
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err = st.GetWebhook(ctx, inSurvey("survey-1"), created.ID)
	require.NoError(t, err)
	require.Equal(t, "fourth-secret-0123456789", got.Secret, "unchanged by the refused rotation")
}

// expirePreviousSecret moves the end of id's overlap a second into the past, as if the
// overlap had run out.
func expirePreviousSecret(t *testing.T, db *sqlx.DB, id uuid.UUID) {
	t.Helper()
	_, err := db.ExecContext(t.Context(), `UPDATE webhooks
		SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1`, id)
	require.NoError(t, err)
}

// storedPreviousSecret reads id's previous_secret_sealed column as it is, expired or not.
func storedPreviousSecret(t *testing.T, db *sqlx.DB, id uuid.UUID) []byte {
	t.Helper()
	var sealed []byte
	require.NoError(t, db.GetContext(t.Context(), &sealed, `SELECT previous_secret_sealed FROM webhooks WHERE id = $1`, id))
	return sealed
}

// TestConcurrentRotationsKeepTheOriginalSecret rotates one webhook from many callers at
// once: exactly one succeeds, the others are refused, and the secret they all replaced stays
// the previous secret for the overlap.
func TestConcurrentRotationsKeepTheOriginalSecret(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	created, err := st.CreateWebhook(ctx, newWebhook("survey-1", "rotating"))
	require.NoError(t, err)

	const callers = 8
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			_, errs[i] = st.RotateWebhookSecret(ctx, inSurvey("survey-1"), created.ID, fmt.Sprintf("rotated-secret-%02d-0123456789", i), time.Hour)
		})
	}
	wg.Wait()

	var won []int
	for i, err := range errs {
		if err == nil {
			won = append(won, i)
			continue
		}
		var overlap *store.RotationOverlapError
		require.ErrorAs(t, err, &overlap)
	}
	require.Len(t, won, 1, "exactly one rotation applies")
	got, err := st.GetWebhook(ctx, inSurvey("survey-1"), created.ID)
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("rotated-secret-%02d-0123456789", won[0]), got.Secret)
	require.NotNil(t, got.PreviousSecret)
	require.Equal(t, created.Secret, *got.PreviousSecret, "the original secret keeps signing through the overlap")
}

// TestExpiredPreviousSecretIsCleared shows that a previous secret past its overlap is not
// handed out, is removed by the next write to the webhook, and by ClearExpiredSecrets
// (retention) for webhooks nobody writes to.
func TestExpiredPreviousSecretIsCleared(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	patched, err := st.CreateWebhook(ctx, newWebhook("survey-1", "patched"))
	require.NoError(t, err)
	idle, err := st.CreateWebhook(ctx, newWebhook("survey-1", "idle"))
	require.NoError(t, err)
	live, err := st.CreateWebhook(ctx, newWebhook("survey-1", "live"))
	require.NoError(t, err)
	for _, w := range []store.Webhook{patched, idle, live} {
		_, err := st.RotateWebhookSecret(ctx, inSurvey("survey-1"), w.ID, "rotated-secret-0123456789", time.Hour)
		require.NoError(t, err)
	}
	expirePreviousSecret(t, db, patched.ID)
	expirePreviousSecret(t, db, idle.ID)

	// Reads no longer return it.
	got, err := st.GetWebhook(ctx, inSurvey("survey-1"), idle.ID)
	require.NoError(t, err)
	require.Nil(t, got.PreviousSecret)
	require.Nil(t, got.PreviousSecretExpiresAt)
	listed, err := st.ListWebhooks(ctx, inSurvey("survey-1"), store.Page{Limit: 10})
	require.NoError(t, err)
	require.Len(t, listed, 3)
	for _, w := range listed {
		require.Equal(t, w.ID == live.ID, w.PreviousSecret != nil, w.Name)
	}

	// A write to the webhook removes it from the row.
	name := "renamed"
	updated, err := st.UpdateWebhook(ctx, inSurvey("survey-1"), patched.ID, store.WebhookUpdate{Name: &name})
	require.NoError(t, err)
	require.Nil(t, updated.PreviousSecret)
	require.Nil(t, storedPreviousSecret(t, db, patched.ID))

	// Retention removes it from rows nobody writes to, and leaves a running overlap alone.
	require.NotNil(t, storedPreviousSecret(t, db, idle.ID))
	n, err := st.ClearExpiredSecrets(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Nil(t, storedPreviousSecret(t, db, idle.ID))
	require.NotNil(t, storedPreviousSecret(t, db, live.ID))
	stillLive, err := st.GetWebhook(ctx, inSurvey("survey-1"), live.ID)
	require.NoError(t, err)
	require.Equal(t, live.Secret, *stillLive.PreviousSecret)
	n, err = st.ClearExpiredSecrets(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestWebhookQueriesFailOnClosedDB(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	require.NoError(t, db.Close())
	ctx := context.WithoutCancel(t.Context())
	_, err := st.CreateWebhook(ctx, newWebhook("survey-1", "x"))
	require.Error(t, err)
	require.NotErrorIs(t, err, store.ErrNotFound)
}
