package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/schema"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// legacyHook is a webhook as version 1 of the schema stores it: its secrets in clear.
type legacyHook struct {
	ID             uuid.UUID
	SurveyID       string
	Secret         string
	PreviousSecret *string
	// EventIDs are the events it has a delivery of.
	EventIDs []string
}

// atVersion1 returns a database of the test's own rolled back to version 1, the schema
// before accounts and sealed secrets.
func atVersion1(t *testing.T) *sqlx.DB {
	t.Helper()
	db := testenv.Postgres(t)
	require.NoError(t, store.Rollback(t.Context(), db.DB, testenv.Keyring(), 1))
	require.Equal(t, []int{1}, appliedVersions(t, db))
	return db
}

func appliedVersions(t *testing.T, db *sqlx.DB) []int {
	t.Helper()
	versions := []int{}
	require.NoError(t, db.SelectContext(t.Context(), &versions, `SELECT version FROM schema_migrations ORDER BY version`))
	return versions
}

// latestVersions lists every migration's version, as a migrated database has applied them.
func latestVersions(t *testing.T) []int {
	t.Helper()
	all, err := schema.Versions()
	require.NoError(t, err)
	versions := []int{}
	for _, m := range all {
		versions = append(versions, m.Version)
	}
	return versions
}

// seedVersion1 stores, with version 1's SQL, a webhook in the middle of a rotation and
// another of a second survey, an event of each survey, a test event aimed at the first,
// a delivery of each event and attempts of every delivery.
func seedVersion1(t *testing.T, db *sqlx.DB) []legacyHook {
	t.Helper()
	previous := "whsec_before-the-rotation-0123456789"
	hooks := []legacyHook{
		{ID: uuid.Must(uuid.NewV7()), SurveyID: "survey-1", Secret: "whsec_after-the-rotation-0123456789",
			PreviousSecret: &previous, EventIDs: []string{"evt-1", "test-1"}},
		{ID: uuid.Must(uuid.NewV7()), SurveyID: "survey-2", Secret: "whsec_never-rotated-0123456789",
			EventIDs: []string{"evt-2"}},
	}
	exec := func(query string, args ...any) {
		t.Helper()
		_, err := db.ExecContext(t.Context(), query, args...)
		require.NoError(t, err)
	}
	for _, h := range hooks {
		exec(`INSERT INTO webhooks (id, survey_id, name, url, events, secret, previous_secret, previous_secret_expires_at)
			VALUES ($1, $2, 'legacy', 'https://receiver.example.com/hooks', '{*}', $3, $4::text,
				CASE WHEN $4::text IS NOT NULL THEN now() + interval '1 hour' END)`,
			h.ID, h.SurveyID, h.Secret, h.PreviousSecret)
	}
	exec(`INSERT INTO events (id, event_type, survey_id, body, dispatched_at)
		VALUES ('evt-1', 'survey.response.completed', 'survey-1', '\x7b7d', now()),
		       ('evt-2', 'survey.response.updated', 'survey-2', '\x7b2261223a317d', NULL)`)
	exec(`INSERT INTO events (id, event_type, survey_id, body, target_webhook_id)
		VALUES ('test-1', 'webhook.test', 'survey-1', '\x7b7d', $1)`, hooks[0].ID)
	for _, h := range hooks {
		for _, eventID := range h.EventIDs {
			delivery := uuid.Must(uuid.NewV7())
			exec(`INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, last_status_code, last_error)
				VALUES ($1, $2, $3, 'retrying', 2, 503, 'receiver answered 503')`, delivery, eventID, h.ID)
			for number := 1; number <= 2; number++ {
				exec(`INSERT INTO delivery_attempts (id, delivery_id, number, trigger, started_at, duration_ms,
					request_url, request_headers, request_body, response_status, response_headers, response_body, error)
					VALUES ($1, $2, $3, 'auto', now(), 12.5, 'https://receiver.example.com/hooks', '{"A":["b"]}', '{}',
						503, '{"Retry-After":["1"]}', 'busy', 'receiver answered 503')`,
					uuid.Must(uuid.NewV7()), delivery, number)
			}
		}
	}
	return hooks
}

// version1Rows returns every row of version 1's tables as JSON, secrets left out, in a
// fixed order: what a migration must carry over unchanged.
func version1Rows(t *testing.T, db *sqlx.DB) []string {
	t.Helper()
	var rows []string
	for _, query := range []string{
		`SELECT id, survey_id, name, url, events, description, is_active, previous_secret_expires_at,
			created_at, updated_at FROM webhooks ORDER BY id`,
		`SELECT id, event_type, survey_id, body, target_webhook_id, created_at, dispatched_at FROM events ORDER BY id`,
		`SELECT id, event_id, webhook_id, status, attempt_count, next_attempt_at, last_status_code, last_error,
			created_at, updated_at, delivered_at FROM deliveries ORDER BY id`,
		`SELECT * FROM delivery_attempts ORDER BY id`,
	} {
		var table []string
		require.NoError(t, db.SelectContext(t.Context(), &table, `SELECT row_to_json(r)::text FROM (`+query+`) r`))
		rows = append(rows, table...)
	}
	return rows
}

// webhookColumns lists the columns of the webhooks table.
func webhookColumns(t *testing.T, db *sqlx.DB) []string {
	t.Helper()
	var columns []string
	require.NoError(t, db.SelectContext(t.Context(), &columns, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = 'public' AND table_name = 'webhooks' ORDER BY column_name`))
	return columns
}

// accountsOf returns the distinct account ids in table.
func accountsOf(t *testing.T, db *sqlx.DB, table string) []string {
	t.Helper()
	var accounts []string
	require.NoError(t, db.SelectContext(t.Context(), &accounts, `SELECT DISTINCT account_id FROM `+table))
	return accounts
}

// A database of version 1 migrates with every row kept, in the default account, and the
// secrets sealed: the store reads each webhook back with the secrets it had.
func TestMigrateFromVersion1KeepsEveryRow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := atVersion1(t)
	hooks := seedVersion1(t, db)
	before := version1Rows(t, db)
	require.Len(t, before, 2+3+3+6)

	require.NoError(t, store.Migrate(ctx, db.DB, testenv.Keyring()))

	require.Equal(t, before, version1Rows(t, db))
	for _, table := range []string{"webhooks", "events", "deliveries"} {
		require.Equal(t, []string{store.DefaultAccount}, accountsOf(t, db, table), table)
	}
	require.NotContains(t, webhookColumns(t, db), "secret")
	require.NotContains(t, webhookColumns(t, db), "previous_secret")

	st := store.New(db, testenv.Keyring())
	for _, h := range hooks {
		got, err := st.GetWebhook(ctx, inSurvey(h.SurveyID), h.ID)
		require.NoError(t, err)
		require.Equal(t, store.DefaultAccount, got.AccountID)
		require.Nil(t, got.SurveyIDs)
		require.Equal(t, h.Secret, got.Secret)
		require.Equal(t, h.PreviousSecret, got.PreviousSecret)
	}
	events, err := st.ListAccountEvents(ctx, store.DefaultAccount, store.EventFilter{Limit: 10})
	require.NoError(t, err)
	require.Len(t, events, 3, "the old events are listed with the account's")
}

// Without a key, a database holding secrets in clear cannot migrate: the migration that
// seals them fails as a whole and leaves the database at version 1, ready for a run with
// the key.
func TestMigrateWithoutKeysKeepsVersion1(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := atVersion1(t)
	hooks := seedVersion1(t, db)
	before, columns := version1Rows(t, db), webhookColumns(t, db)

	err := store.Migrate(ctx, db.DB, nil)
	require.ErrorContains(t, err, "apply migration 0002_accounts")
	require.ErrorContains(t, err, "no encryption key is set: set SURVEYHOOKS_ENCRYPTION_KEYS")

	require.Equal(t, []int{1}, appliedVersions(t, db))
	require.Equal(t, columns, webhookColumns(t, db), "no column of 0002 is left")
	require.Equal(t, before, version1Rows(t, db))
	var secret string
	require.NoError(t, db.GetContext(ctx, &secret, `SELECT secret FROM webhooks WHERE id = $1`, hooks[1].ID))
	require.Equal(t, hooks[1].Secret, secret)

	require.NoError(t, store.Migrate(ctx, db.DB, testenv.Keyring()))
	require.Equal(t, before, version1Rows(t, db))
}

// Rolling back to version 1 opens the secrets into their clear columns, and migrating again
// seals them: the webhook reads back as it was, previous secret included. What version 1
// cannot hold (other accounts, account-wide webhooks, ed25519 webhooks) does not stop the
// rollback.
func TestRollbackAndMigrateRoundTripSecrets(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	created, err := st.CreateWebhook(ctx, newWebhook("survey-1", "round trip"))
	require.NoError(t, err)
	rotated, err := st.RotateWebhookSecret(ctx, inSurvey("survey-1"), created.ID, "whsec_rotated-0123456789", time.Hour)
	require.NoError(t, err)
	scopedHook(t, st, store.Scope{AccountID: store.DefaultAccount}, "account-wide")
	scopedHook(t, st, store.Scope{AccountID: "acct-b", SurveyID: "survey-1"}, "other account")
	_, err = st.CreateWebhook(ctx, newEd25519Webhook("ed25519"))
	require.NoError(t, err)
	publishedTo(t, st, "acct-b", "survey-1")
	publishedTo(t, st, store.DefaultAccount, "survey-1")

	// Without the key, the sealed secrets cannot be opened: the rollback stops at 0003, whose
	// way down opens them, and leaves it and the older ones applied.
	require.ErrorContains(t, store.Rollback(ctx, db.DB, nil, 1), "no encryption key is set")
	require.Equal(t, latestVersions(t)[:3], appliedVersions(t, db))

	require.NoError(t, store.Rollback(ctx, db.DB, testenv.Keyring(), 1))
	var clear struct {
		Secret   string  `db:"secret"`
		Previous *string `db:"previous_secret"`
	}
	require.NoError(t, db.GetContext(ctx, &clear, `SELECT secret, previous_secret FROM webhooks WHERE id = $1`, created.ID))
	require.Equal(t, rotated.Secret, clear.Secret)
	require.Equal(t, created.Secret, *clear.Previous)
	var hooks, events int
	require.NoError(t, db.GetContext(ctx, &hooks, `SELECT count(*) FROM webhooks`))
	require.NoError(t, db.GetContext(ctx, &events, `SELECT count(*) FROM events`))
	require.Equal(t, [2]int{1, 1}, [2]int{hooks, events}, "only the default account's survey webhook and event fit version 1")

	require.NoError(t, store.Migrate(ctx, db.DB, testenv.Keyring()))
	got, err := st.GetWebhook(ctx, inSurvey("survey-1"), created.ID)
	require.NoError(t, err)
	require.Equal(t, rotated, got)
}
