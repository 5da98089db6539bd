package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/store"
)

// TestListDeliveriesByEvent filters an account's and a webhook's deliveries by their event's
// type, survey and time, each alone and together.
func TestListDeliveriesByEvent(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	hook := scopedHook(t, st, store.Scope{AccountID: "acct-f"}, "wide")
	completed1 := publishOf(t, st, "acct-f", "s1", eventtype.SurveyResponseCompleted)
	updated1 := publishOf(t, st, "acct-f", "s1", eventtype.SurveyResponseUpdated)
	completed2 := publishOf(t, st, "acct-f", "s2", eventtype.SurveyResponseCompleted)
	publishOf(t, st, "acct-other", "s1", eventtype.SurveyResponseCompleted)

	events := func(f store.DeliveryFilter) []string {
		t.Helper()
		ds, err := st.ListAccountDeliveries(ctx, "acct-f", f, store.Page{Limit: 10})
		require.NoError(t, err)
		byHook, err := st.ListWebhookDeliveries(ctx, hook.ID, f, store.Page{Limit: 10})
		require.NoError(t, err)
		require.Equal(t, ds, byHook, "the webhook is the account's only one")
		ids := []string{}
		for _, d := range ds {
			ids = append(ids, d.EventID)
		}
		return ids
	}
	newest := []string{completed2.ID, updated1.ID, completed1.ID}
	require.Equal(t, newest, events(store.DeliveryFilter{}))
	require.Equal(t, []string{completed2.ID, completed1.ID}, events(store.DeliveryFilter{EventType: eventtype.SurveyResponseCompleted}))
	require.Equal(t, []string{updated1.ID, completed1.ID}, events(store.DeliveryFilter{SurveyID: "s1"}))
	require.Equal(t, []string{completed1.ID}, events(store.DeliveryFilter{SurveyID: "s1", EventType: eventtype.SurveyResponseCompleted}))
	require.Equal(t, newest, events(store.DeliveryFilter{Since: completed1.CreatedAt}))
	require.Equal(t, []string{}, events(store.DeliveryFilter{Since: completed2.CreatedAt.Add(time.Second)}))
	require.Equal(t, []string{}, events(store.DeliveryFilter{Until: completed1.CreatedAt}))
	require.Equal(t, []string{}, events(store.DeliveryFilter{EventType: "form.submission.created", Status: "pending", SurveyID: uuid.NewString()[:8]}))
}
