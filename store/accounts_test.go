package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/store"
)

// publishOf publishes an event of the account's survey with the given type and returns it.
func publishOf(t *testing.T, st *store.Store, accountID, surveyID, eventType string) store.Event {
	t.Helper()
	ev := completedEvent(uuid.NewString(), surveyID)
	ev.AccountID, ev.EventType = accountID, eventType
	p, err := st.PublishEvent(t.Context(), ev)
	require.NoError(t, err)
	return p.Event
}

func TestListAccounts(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	for range 3 {
		scopedHook(t, st, store.Scope{AccountID: "acct-hooks"}, "hook")
		scopedHook(t, st, store.Scope{AccountID: "acct-both", SurveyID: "s1"}, "hook")
		publishOf(t, st, "acct-events", "s1", eventtype.SurveyResponseCompleted)
		publishOf(t, st, "acct-both", "s1", eventtype.SurveyResponseCompleted)
	}
	// Keys alone make no account to list.
	createKey(t, st, "acct-keys", "sk_keys", nil)

	all, err := st.ListAccounts(ctx, "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"acct-both", "acct-events", "acct-hooks"}, all)

	var pages [][]string
	after := ""
	for {
		page, err := st.ListAccounts(ctx, after, 2)
		require.NoError(t, err)
		pages = append(pages, page)
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1]
	}
	require.Equal(t, [][]string{{"acct-both", "acct-events"}, {"acct-hooks"}, {}}, pages)
}

// accountRows counts an account's rows of each kind, named as DeleteAccount names them.
func accountRows(t *testing.T, db *sqlx.DB, accountID string) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	for kind, query := range map[string]string{
		"delivery attempts": `SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.account_id = $1`,
		"deliveries":        `SELECT count(*) FROM deliveries WHERE account_id = $1`,
		"events":            `SELECT count(*) FROM events WHERE account_id = $1`,
		"webhook stats":     `SELECT count(*) FROM webhook_stats s JOIN webhooks w ON w.id = s.webhook_id WHERE w.account_id = $1`,
		"webhook health":    `SELECT count(*) FROM webhook_health h JOIN webhooks w ON w.id = h.webhook_id WHERE w.account_id = $1`,
		"webhook throttles": `SELECT count(*) FROM webhook_throttle x JOIN webhooks w ON w.id = x.webhook_id WHERE w.account_id = $1`,
		"webhooks":          `SELECT count(*) FROM webhooks WHERE account_id = $1`,
		"console links":     `SELECT count(*) FROM console_links WHERE account_id = $1`,
		"api keys":          `SELECT count(*) FROM api_keys WHERE account_id = $1`,
		"audit entries":     `SELECT count(*) FROM audit_log WHERE account_id = $1`,
	} {
		var n int64
		require.NoError(t, db.GetContext(t.Context(), &n, query, accountID))
		counts[kind] = n
	}
	return counts
}

// requireNoOrphanHealth checks that no health or stats row outlives its webhook.
func requireNoOrphanHealth(t *testing.T, db *sqlx.DB) {
	t.Helper()
	for _, table := range []string{"webhook_health", "webhook_stats", "webhook_throttle"} {
		var n int
		require.NoError(t, db.Get(&n, `SELECT count(*) FROM `+table+` x WHERE NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.id = x.webhook_id)`))
		require.Zero(t, n, table)
	}
}

// seedAccount gives the account a survey webhook and an account-wide one, an event to both,
// a test event, attemptsEach attempts of each of the three deliveries, the webhooks' health
// and two hours of stats each, a key and an audit entry.
func seedAccount(t *testing.T, st *store.Store, db *sqlx.DB, accountID string, attemptsEach int) {
	t.Helper()
	ctx := t.Context()
	scopedHook(t, st, store.Scope{AccountID: accountID}, "account-wide")
	s1 := scopedHook(t, st, store.Scope{AccountID: accountID, SurveyID: "s1"}, "s1")
	publishOf(t, st, accountID, "s1", eventtype.SurveyResponseCompleted)
	test := webhookTestEvent(uuid.NewString(), "s1", s1.ID)
	test.AccountID = accountID
	_, err := st.PublishEvent(ctx, test)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO delivery_attempts
		(id, delivery_id, number, trigger, started_at, duration_ms, request_url, request_headers, request_body)
		SELECT gen_random_uuid(), d.id, n, 'auto', now(), 1, 'https://receiver.example.com/hooks', '{}', '{}'
		FROM deliveries d, generate_series(1, $2) n WHERE d.account_id = $1`, accountID, attemptsEach)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO webhook_health (webhook_id, consecutive_failures)
		SELECT id, 1 FROM webhooks WHERE account_id = $1`, accountID)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO webhook_throttle (webhook_id, paused_until)
		SELECT id, now() FROM webhooks WHERE account_id = $1`, accountID)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO webhook_stats (webhook_id, bucket, attempts, successes, failures, latency_counts)
		SELECT id, date_trunc('hour', now()) - h * interval '1 hour', 1, 1, 0, '{1}'
		FROM webhooks, generate_series(0, 1) h WHERE account_id = $1`, accountID)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO console_links (token_hash, account_id, expires_at)
		VALUES (sha256(convert_to($1, 'UTF8')), $1, now() + interval '1 hour')`, accountID)
	require.NoError(t, err)
	createKey(t, st, accountID, "sk_"+accountID, nil)
	require.NoError(t, st.Audited(ctx, &store.AuditEntry{AccountID: accountID, Action: "webhook.created"},
		func(*store.Store) error { return nil }))
}

// DeleteAccount removes every row of the account, in batches (its 2,700 attempts take
// three), and nothing of another account; a second call finds nothing left.
func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	seedAccount(t, st, db, "acct-doomed", 900)
	seedAccount(t, st, db, "acct-kept", 400)
	doomed, kept := accountRows(t, db, "acct-doomed"), accountRows(t, db, "acct-kept")
	require.Equal(t, int64(2700), doomed["delivery attempts"])
	require.Equal(t, int64(3), doomed["deliveries"])

	deleted, err := st.DeleteAccount(ctx, "acct-doomed")
	require.NoError(t, err)
	require.Equal(t, doomed, deleted)
	nothing := map[string]int64{"delivery attempts": 0, "deliveries": 0, "events": 0, "webhook stats": 0,
		"webhook health": 0, "webhook throttles": 0, "webhooks": 0, "console links": 0, "api keys": 0, "audit entries": 0}
	require.Equal(t, nothing, accountRows(t, db, "acct-doomed"))
	require.Equal(t, kept, accountRows(t, db, "acct-kept"))
	requireNoOrphanHealth(t, db)

	again, err := st.DeleteAccount(ctx, "acct-doomed")
	require.NoError(t, err)
	require.Equal(t, nothing, again)
	require.Equal(t, kept, accountRows(t, db, "acct-kept"))
}

// eventIDs returns the ids of events, in their order.
func eventIDs(events []store.Event) []string {
	ids := []string{}
	for _, e := range events {
		ids = append(ids, e.ID)
	}
	return ids
}

// listEvents pages through the account's events matching f, f.Limit at a time, and returns
// their ids with the size of each page.
func listEvents(t *testing.T, st *store.Store, accountID string, f store.EventFilter) ([]string, []int) {
	t.Helper()
	ids := []string{}
	var sizes []int
	for {
		events, err := st.ListAccountEvents(t.Context(), accountID, f)
		require.NoError(t, err)
		sizes = append(sizes, len(events))
		if len(events) == 0 {
			return ids, sizes
		}
		for _, e := range events {
			require.Equal(t, accountID, e.AccountID)
		}
		ids = append(ids, eventIDs(events)...)
		f.Before = events[len(events)-1].Seq
	}
}

func TestListAccountEvents(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// Six events of acct-a an hour apart, alternating surveys and types; acct-b publishes
	// the same surveys and types in between.
	var a []store.Event
	for i := range 6 {
		survey, eventType := fmt.Sprintf("s%d", i%2+1), eventtype.SurveyResponseCompleted
		if i%3 == 2 {
			eventType = eventtype.SurveyResponseUpdated
		}
		for _, account := range []string{"acct-a", "acct-b"} {
			ev := publishOf(t, st, account, survey, eventType)
			_, err := db.ExecContext(ctx, `UPDATE events SET created_at = $2 WHERE id = $1`, ev.ID, start.Add(time.Duration(i)*time.Hour))
			require.NoError(t, err)
			if account == "acct-a" {
				a = append(a, ev)
			}
		}
	}
	// newest lists a's events of the given indexes, newest first.
	newest := func(indexes ...int) []string {
		ids := []string{}
		for i := len(indexes) - 1; i >= 0; i-- {
			ids = append(ids, a[indexes[i]].ID)
		}
		return ids
	}

	for name, tc := range map[string]struct {
		filter store.EventFilter
		want   []string
	}{
		"all":               {store.EventFilter{}, newest(0, 1, 2, 3, 4, 5)},
		"survey":            {store.EventFilter{SurveyID: "s1"}, newest(0, 2, 4)},
		"type":              {store.EventFilter{EventType: eventtype.SurveyResponseUpdated}, newest(2, 5)},
		"survey and type":   {store.EventFilter{SurveyID: "s2", EventType: eventtype.SurveyResponseCompleted}, newest(1, 3)},
		"since, until":      {store.EventFilter{Since: start.Add(2 * time.Hour), Until: start.Add(4 * time.Hour)}, newest(2, 3)},
		"since":             {store.EventFilter{Since: start.Add(4 * time.Hour)}, newest(4, 5)},
		"until":             {store.EventFilter{Until: start.Add(time.Hour)}, newest(0)},
		"survey, no events": {store.EventFilter{SurveyID: "s3"}, []string{}},
	} {
		all, _ := listEvents(t, st, "acct-a", store.EventFilter{SurveyID: tc.filter.SurveyID, EventType: tc.filter.EventType,
			Since: tc.filter.Since, Until: tc.filter.Until, Limit: 100})
		require.Equal(t, tc.want, all, name)
	}

	ids, sizes := listEvents(t, st, "acct-a", store.EventFilter{Limit: 4})
	require.Equal(t, []int{4, 2, 0}, sizes)
	require.Equal(t, newest(0, 1, 2, 3, 4, 5), ids)
	ids, sizes = listEvents(t, st, "acct-a", store.EventFilter{SurveyID: "s1", Limit: 2})
	require.Equal(t, []int{2, 1, 0}, sizes)
	require.Equal(t, newest(0, 2, 4), ids)

	_, err := st.ListAccountEvents(ctx, "acct-a", store.EventFilter{})
	require.Error(t, err, "a listing needs a limit")
}
