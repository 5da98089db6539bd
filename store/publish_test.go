package store_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/store"
)

// createHook stores a webhook of the default account's survey surveyID subscribed to
// events.
func createHook(t *testing.T, st *store.Store, surveyID, name string, active bool, events ...string) store.Webhook {
	t.Helper()
	w := newWebhook(surveyID, name)
	w.IsActive, w.Events = active, events
	hook, err := st.CreateWebhook(t.Context(), w)
	require.NoError(t, err)
	return hook
}

func completedEvent(id, surveyID string) store.Event {
	return store.Event{ID: id, AccountID: store.DefaultAccount, EventType: eventtype.SurveyResponseCompleted, SurveyID: surveyID,
		Body: []byte(`{"event_id":"` + id + `"}`)}
}

// webhookTestEvent is a test event of the default account aimed at the webhook target.
func webhookTestEvent(id, surveyID string, target uuid.UUID) store.Event {
	return store.Event{ID: id, AccountID: store.DefaultAccount, EventType: eventtype.WebhookTest,
		SurveyID: surveyID, Body: []byte(`{}`), TargetWebhookID: &target}
}

// An event goes to the survey's active webhooks whose patterns select its type.
func TestPublishEventFansOutToSubscribedWebhooks(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	exact := createHook(t, st, "survey-1", "exact", true, eventtype.SurveyResponseCompleted)
	wildcard := createHook(t, st, "survey-1", "wildcard", true, "*")
	prefix := createHook(t, st, "survey-1", "prefix", true, "form.*", "survey.response.*")
	createHook(t, st, "survey-1", "other type", true, eventtype.SurveyResponseUpdated, "form.*")
	createHook(t, st, "survey-1", "inactive", false, "*")
	createHook(t, st, "survey-2", "other survey", true, "*")

	before := time.Now().Truncate(time.Millisecond)
	p, err := st.PublishEvent(ctx, completedEvent("e-1", "survey-1"))
	require.NoError(t, err)
	require.True(t, p.Created)
	require.Equal(t, "e-1", p.Event.ID)
	require.Nil(t, p.Event.DispatchedAt, "dispatched once its workflow starts")

	got := map[uuid.UUID]store.EventDelivery{}
	for i, d := range p.Deliveries {
		if i > 0 {
			require.Less(t, p.Deliveries[i-1].ID.String(), d.ID.String(), "in id order")
		}
		require.Equal(t, uuid.Version(7), d.ID.Version())
		require.Equal(t, uuid.RFC4122, d.ID.Variant())
		sec, nsec := d.ID.Time().UnixTime()
		require.WithinDuration(t, before, time.Unix(sec, nsec), time.Minute, "the id carries its creation time")
		require.Equal(t, delivery.StatusPending, d.Status)
		got[d.WebhookID] = d
	}
	require.Len(t, got, 3)
	for _, want := range []store.Webhook{exact, wildcard, prefix} {
		require.Contains(t, got, want.ID)
		require.Equal(t, want.URL, got[want.ID].URL)
	}

	// The store agrees: these are the event's deliveries, as a later run of its workflow
	// lists them.
	listed, err := st.ListEventTargets(ctx, "e-1")
	require.NoError(t, err)
	require.Equal(t, p.Deliveries, listed)
}

func TestPublishEventWithoutSubscribers(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	createHook(t, st, "survey-1", "updates only", true, eventtype.SurveyResponseUpdated)

	p, err := st.PublishEvent(t.Context(), completedEvent("lonely", "survey-1"))
	require.NoError(t, err)
	require.True(t, p.Created)
	require.Equal(t, "lonely", p.Event.ID)
	require.NotNil(t, p.Deliveries)
	require.Empty(t, p.Deliveries)
}

// The same event id again is the same event: the stored one comes back, nothing is added,
// even when the webhooks changed since.
func TestPublishEventTwiceKeepsTheFirst(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	createHook(t, st, "survey-1", "first", true, "*")
	first, err := st.PublishEvent(ctx, completedEvent("twice", "survey-1"))
	require.NoError(t, err)
	require.Len(t, first.Deliveries, 1)

	createHook(t, st, "survey-1", "second", true, "*")
	again := completedEvent("twice", "survey-1")
	again.Body = []byte(`{"changed":true}`)
	p, err := st.PublishEvent(ctx, again)
	require.NoError(t, err)
	require.False(t, p.Created)
	require.Nil(t, p.Deliveries)
	require.Equal(t, first.Event.Body, p.Event.Body)
	ds, err := st.ListEventDeliveries(ctx, "twice")
	require.NoError(t, err)
	require.Len(t, ds, 1)
}

// A test event goes to its one target webhook, active or not, whatever it subscribes to.
func TestPublishTestEventGoesToItsTarget(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	target := createHook(t, st, "survey-1", "inactive target", false, eventtype.SurveyResponseUpdated)
	createHook(t, st, "survey-1", "wildcard", true, "*")

	p, err := st.PublishEvent(t.Context(), webhookTestEvent("test-1", "survey-1", target.ID))
	require.NoError(t, err)
	require.True(t, p.Created)
	require.Equal(t, &target.ID, p.Event.TargetWebhookID)
	require.Len(t, p.Deliveries, 1)
	require.Equal(t, target.ID, p.Deliveries[0].WebhookID)
	require.Equal(t, target.URL, p.Deliveries[0].URL)
}

// A refused event (its target webhook does not exist) leaves nothing behind.
func TestPublishEventRefusedStoresNothing(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	missing := uuid.New()
	_, err := st.PublishEvent(t.Context(), webhookTestEvent("test-2", "survey-1", missing))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.GetEvent(t.Context(), "test-2")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// publishDuringDeletion publishes ev while webhook is being deleted: the deletion holds
// the webhook's row when the publish statement, which still sees the webhook, inserts its
// delivery; the deletion commits while that insert waits for the row.
func publishDuringDeletion(t *testing.T, st *store.Store, db *sqlx.DB, webhook uuid.UUID, ev store.Event) (store.Published, error) {
	t.Helper()
	ctx := t.Context()
	tx, err := db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback() //nolint:errcheck // committed below unless the test failed
	_, err = tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1`, webhook)
	require.NoError(t, err)

	type outcome struct {
		p   store.Published
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		p, err := st.PublishEvent(ctx, ev)
		done <- outcome{p, err}
	}()
	require.Eventually(t, func() bool {
		var waiting bool
		err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO events%')`).Scan(&waiting)
		return assert.NoError(t, err) && waiting
	}, 10*time.Second, 5*time.Millisecond, "the publish statement waits for the webhook's row")
	require.NoError(t, tx.Commit())
	out := <-done
	return out.p, out.err
}

// A webhook deleted while an event is published to it is not a failed publish: the event
// is stored without a delivery to it.
func TestPublishEventWhileASubscribedWebhookIsDeleted(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	deleted := createHook(t, st, "survey-1", "deleted", true, "*")

	p, err := publishDuringDeletion(t, st, db, deleted.ID, completedEvent("e-race", "survey-1"))
	require.NoError(t, err)
	require.True(t, p.Created)
	require.Empty(t, p.Deliveries)
	stored, err := st.GetEvent(t.Context(), "e-race")
	require.NoError(t, err)
	require.Equal(t, "e-race", stored.ID)
}

// Testing a webhook that is deleted meanwhile finds no webhook, and stores nothing.
func TestPublishTestEventWhileItsWebhookIsDeleted(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	target := createHook(t, st, "survey-1", "deleted", true, "*")

	_, err := publishDuringDeletion(t, st, db, target.ID, webhookTestEvent("test-race", "survey-1", target.ID))
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.GetEvent(t.Context(), "test-race")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// Concurrent marks share statements; each event is marked, and marking again changes
// nothing.
func TestMarkDispatched(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	const n = 50
	for i := range n {
		_, err := st.PublishEvent(ctx, completedEvent(fmt.Sprintf("mark-%d", i), "survey-1"))
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { require.NoError(t, st.MarkDispatched(ctx, fmt.Sprintf("mark-%d", i))) })
	}
	wg.Wait()
	first, err := st.GetEvent(ctx, "mark-0")
	require.NoError(t, err)
	require.NotNil(t, first.DispatchedAt)
	for i := range n {
		ev, err := st.GetEvent(ctx, fmt.Sprintf("mark-%d", i))
		require.NoError(t, err)
		require.NotNil(t, ev.DispatchedAt, ev.ID)
	}
	require.NoError(t, st.MarkDispatched(ctx, "mark-0"))
	again, err := st.GetEvent(ctx, "mark-0")
	require.NoError(t, err)
	require.Equal(t, first.DispatchedAt, again.DispatchedAt, "the first mark stays")
	require.NoError(t, st.MarkDispatched(ctx, "no-such-event"), "an unknown event is nothing to mark")
}

// A dispatch mark finds its event through the primary key, in the generic plan a connection
// keeps as in a custom one: never through the partial index of undispatched events, which
// holds an entry for every event published since the last vacuum.
func TestMarkDispatchedReadsThePrimaryKey(t *testing.T) {
	t.Parallel()
	_, db := setupWebhooks(t)
	ctx := t.Context()
	// What a busy system's statistics say: thousands of events, all dispatched, so that the
	// partial index looks empty (it is not, between vacuums).
	_, err := db.ExecContext(ctx, `INSERT INTO events (id, account_id, event_type, survey_id, body, dispatched_at)
		SELECT 'plan-' || i, 'default', $1, 'survey-1', '{}', now()
		FROM generate_series(1, 5000) AS i`, eventtype.SurveyResponseCompleted)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `ANALYZE events`)
	require.NoError(t, err)

	conn, err := db.Connx(ctx)
	require.NoError(t, err)
	defer conn.Close()
	statements := []struct{ name, query, paramType, arg string }{
		{"one", store.MarkEventDispatchedQuery, "text", `'plan-1'`},
		{"many", store.MarkEventsDispatchedQuery, "text[]", `'{plan-1,plan-2}'`},
	}
	for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
		_, err := conn.ExecContext(ctx, "SET plan_cache_mode = "+mode)
		require.NoError(t, err)
		for _, st := range statements {
			name := st.name + "_" + mode
			_, err := conn.ExecContext(ctx, fmt.Sprintf("PREPARE %s(%s) AS %s", name, st.paramType, st.query))
			require.NoError(t, err)
			var lines []string
			require.NoError(t, sqlx.SelectContext(ctx, conn, &lines, fmt.Sprintf("EXPLAIN EXECUTE %s(%s)", name, st.arg)))
			plan := strings.Join(lines, "\n")
			assert.Contains(t, plan, "events_pkey", "%s:\n%s", name, plan)
			assert.NotContains(t, plan, "events_undispatched_idx", "%s:\n%s", name, plan)
		}
	}
}

// A notice is wanted when an active webhook of no survey and no filter, in one of the
// accounts, subscribes to it by name or by prefix; "*" does not ask for notices.
func TestNoticeWanted(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	wanted := func(accounts ...string) bool {
		t.Helper()
		ok, err := st.NoticeWanted(ctx, accounts, "delivery.exhausted")
		require.NoError(t, err)
		return ok
	}
	hook := func(scope store.Scope, events []string, surveyIDs ...string) store.Webhook {
		w := newWebhook(scope.SurveyID, "n")
		w.AccountID, w.Events, w.SurveyIDs = scope.AccountID, events, surveyIDs
		created, err := st.CreateWebhook(ctx, w)
		require.NoError(t, err)
		return created
	}
	hook(store.Scope{AccountID: "a"}, []string{"*"})
	hook(store.Scope{AccountID: "a", SurveyID: "s1"}, []string{"delivery.exhausted"})
	hook(store.Scope{AccountID: "a"}, []string{"delivery.exhausted"}, "s1")
	require.False(t, wanted("a"), "* , a survey's webhook and a filtered one do not ask")
	ops := hook(store.Scope{AccountID: "ops"}, []string{"delivery.*"})
	require.False(t, wanted("a"))
	require.True(t, wanted("a", "ops"))
	deactivated(t, st, ops)
	require.False(t, wanted("a", "ops"), "an inactive webhook does not ask")
}
