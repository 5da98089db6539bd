package store_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
)

// seedDelivery stores a webhook of survey-1 and publishes an event to it.
func seedDelivery(t *testing.T, st *store.Store) (store.Event, store.EventDelivery) {
	t.Helper()
	ctx := t.Context()
	_, err := st.CreateWebhook(ctx, newWebhook("survey-1", "hook"))
	require.NoError(t, err)
	p, err := st.PublishEvent(ctx, completedEvent(uuid.NewString(), "survey-1"))
	require.NoError(t, err)
	require.True(t, p.Created)
	require.Nil(t, p.Event.DispatchedAt)
	require.Len(t, p.Deliveries, 1)
	return p.Event, p.Deliveries[0]
}

// RecordAttempts stores every column of each attempt as RecordAttempt does, NULLs
// included, and only the attempts whose delivery's count is still their prior one.
func TestRecordAttemptsStoresEachColumn(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	_, first := seedDelivery(t, st)
	p, err := st.PublishEvent(ctx, completedEvent(uuid.NewString(), "survey-1"))
	require.NoError(t, err)
	second := p.Deliveries[0]
	started := time.Date(2026, 12, 5, 10, 0, 0, 123456000, time.UTC)
	next := started.Add(time.Minute)
	status := 503
	answered := store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: first.ID, Trigger: delivery.TriggerManual,
		StartedAt: started, DurationMS: 12.5, RequestURL: "https://receiver.example.com/hooks",
		RequestHeaders: []byte(`{"Webhook-Id":["x"]}`), RequestBody: `{"a":"é <&>"}`,
		ResponseStatus: &status, ResponseHeaders: []byte(`{"Retry-After":["120"]}`), ResponseBody: "busy", Error: "receiver answered 503"}
	unanswered := store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: second.ID, Trigger: delivery.TriggerAuto,
		StartedAt: started, DurationMS: 30000, RequestURL: "https://receiver.example.com/hooks",
		RequestHeaders: []byte(`{}`), Error: "timed out after 30s"}
	stale := unanswered
	stale.ID = uuid.Must(uuid.NewV7())

	recorded, err := st.RecordAttempts(ctx, []store.AttemptRecord{
		{Attempt: answered, Prior: 0, Outcome: store.Outcome{Status: delivery.StatusRetrying, NextAttemptAt: &next, LastStatusCode: &status, LastError: "receiver answered 503"}},
		{Attempt: unanswered, Prior: 0, Outcome: store.Outcome{Status: delivery.StatusFailed, LastError: "timed out after 30s"}},
		{Attempt: stale, Prior: 3, Outcome: store.Outcome{Status: delivery.StatusFailed}},
	})
	require.NoError(t, err)
	require.ElementsMatch(t, []uuid.UUID{answered.ID, unanswered.ID}, slices.Collect(maps.Keys(recorded)))
	for _, streak := range recorded {
		// Both went to survey-1's webhook and failed: a streak of two since started.
		require.Equal(t, 2, streak.ConsecutiveFailures)
		require.True(t, started.Equal(*streak.FailingSince), streak.FailingSince)
	}

	as, err := st.ListAttempts(ctx, first.ID)
	require.NoError(t, err)
	require.Len(t, as, 1)
	got := as[0]
	require.Equal(t, 1, got.Number)
	require.Equal(t, delivery.TriggerManual, got.Trigger)
	require.True(t, started.Equal(got.StartedAt), got.StartedAt)
	require.Equal(t, 12.5, got.DurationMS)
	require.JSONEq(t, `{"Webhook-Id":["x"]}`, string(got.RequestHeaders))
	require.Equal(t, `{"a":"é <&>"}`, got.RequestBody)
	require.Equal(t, 503, *got.ResponseStatus)
	require.JSONEq(t, `{"Retry-After":["120"]}`, string(got.ResponseHeaders))
	require.Equal(t, "busy", got.ResponseBody)
	target, err := st.GetTarget(ctx, first.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.StatusRetrying, target.Status)
	require.True(t, next.Equal(*target.NextAttemptAt))

	as, err = st.ListAttempts(ctx, second.ID)
	require.NoError(t, err)
	require.Len(t, as, 1)
	require.Nil(t, as[0].ResponseStatus)
	require.Equal(t, "null", string(as[0].ResponseHeaders))
	target, err = st.GetTarget(ctx, second.ID)
	require.NoError(t, err)
	require.Equal(t, delivery.StatusFailed, target.Status)
	require.Nil(t, target.NextAttemptAt)
}

// pageAll pages through list, limit deliveries at a time, and returns the ids in order.
func pageAll(t *testing.T, limit int, list func(store.Page) ([]store.Delivery, error)) []uuid.UUID {
	t.Helper()
	got := []uuid.UUID{}
	page := store.Page{Limit: limit}
	for {
		ds, err := list(page)
		require.NoError(t, err)
		require.LessOrEqual(t, len(ds), limit)
		for _, d := range ds {
			got = append(got, d.ID)
		}
		if len(ds) < limit {
			return got
		}
		page.After = &ds[len(ds)-1].ID
	}
}

// A webhook's and an account's deliveries page newest first, with and without a status,
// each delivery once; another account's deliveries never show.
func TestListDeliveriesFiltersAndPages(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	wide := scopedHook(t, st, store.Scope{AccountID: "acct-a"}, "wide")
	s1 := scopedHook(t, st, store.Scope{AccountID: "acct-a", SurveyID: "s1"}, "s1")
	scopedHook(t, st, store.Scope{AccountID: "acct-b", SurveyID: "s1"}, "theirs")
	var all, wideAll, failed, wideFailed []uuid.UUID
	for i := range 7 {
		ev := completedEvent(uuid.NewString(), "s1")
		ev.AccountID = "acct-a"
		p, err := st.PublishEvent(ctx, ev)
		require.NoError(t, err)
		require.Len(t, p.Deliveries, 2)
		_, err = st.PublishEvent(ctx, completedEvent(uuid.NewString(), "s1")) // the default account's
		require.NoError(t, err)
		evB := completedEvent(uuid.NewString(), "s1")
		evB.AccountID = "acct-b"
		_, err = st.PublishEvent(ctx, evB)
		require.NoError(t, err)
		for _, d := range p.Deliveries {
			all = append(all, d.ID)
			if d.WebhookID == wide.ID {
				wideAll = append(wideAll, d.ID)
			}
			if i%3 != 0 {
				continue
			}
			_, err := st.RecordAttempts(ctx, []store.AttemptRecord{{
				Attempt: store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: d.ID, Trigger: delivery.TriggerAuto,
					StartedAt: time.Now(), RequestURL: "https://receiver.example.com/", RequestHeaders: []byte(`{}`), Error: "refused"},
				Outcome: store.Outcome{Status: delivery.StatusFailed, LastError: "refused"},
			}})
			require.NoError(t, err)
			failed = append(failed, d.ID)
			if d.WebhookID == wide.ID {
				wideFailed = append(wideFailed, d.ID)
			}
		}
	}
	newestFirst := func(ids []uuid.UUID) []uuid.UUID {
		out := slices.Clone(ids)
		slices.SortFunc(out, func(a, b uuid.UUID) int { return -strings.Compare(a.String(), b.String()) })
		return out
	}
	account := func(status string) func(store.Page) ([]store.Delivery, error) {
		return func(p store.Page) ([]store.Delivery, error) {
			return st.ListAccountDeliveries(ctx, "acct-a", store.DeliveryFilter{Status: status}, p)
		}
	}
	webhook := func(status string) func(store.Page) ([]store.Delivery, error) {
		return func(p store.Page) ([]store.Delivery, error) {
			return st.ListWebhookDeliveries(ctx, wide.ID, store.DeliveryFilter{Status: status}, p)
		}
	}
	for _, limit := range []int{1, 3, 100} {
		require.Equal(t, newestFirst(all), pageAll(t, limit, account("")))
		require.Equal(t, newestFirst(failed), pageAll(t, limit, account(delivery.StatusFailed)))
		require.Empty(t, pageAll(t, limit, account(delivery.StatusDelivered)))
		require.Equal(t, newestFirst(wideAll), pageAll(t, limit, webhook("")))
		require.Equal(t, newestFirst(wideFailed), pageAll(t, limit, webhook(delivery.StatusFailed)))
	}
	require.Len(t, pageAll(t, 100, func(p store.Page) ([]store.Delivery, error) {
		return st.ListWebhookDeliveries(ctx, s1.ID, store.DeliveryFilter{Status: delivery.StatusPending}, p)
	}), 7-len(wideFailed))
}
