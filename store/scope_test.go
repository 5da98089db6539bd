package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
)

// scopedHook stores an active webhook in scope subscribed to every event type; an
// account-wide one hears only surveyIDs when any are given.
func scopedHook(t *testing.T, st *store.Store, scope store.Scope, name string, surveyIDs ...string) store.Webhook {
	t.Helper()
	w := newWebhook(scope.SurveyID, name)
	w.AccountID, w.Events, w.SurveyIDs = scope.AccountID, []string{"*"}, surveyIDs
	hook, err := st.CreateWebhook(t.Context(), w)
	require.NoError(t, err)
	return hook
}

// deactivated turns w off.
func deactivated(t *testing.T, st *store.Store, w store.Webhook) store.Webhook {
	t.Helper()
	off := false
	w, err := st.UpdateWebhook(t.Context(), w.Scope(), w.ID, store.WebhookUpdate{IsActive: &off})
	require.NoError(t, err)
	return w
}

// publishedTo publishes a new event of the account's survey and returns the webhooks it
// went to.
func publishedTo(t *testing.T, st *store.Store, accountID, surveyID string) []uuid.UUID {
	t.Helper()
	ev := completedEvent(uuid.NewString(), surveyID)
	ev.AccountID = accountID
	p, err := st.PublishEvent(t.Context(), ev)
	require.NoError(t, err)
	require.Equal(t, accountID, p.Event.AccountID)
	hooks := []uuid.UUID{}
	for _, d := range p.Deliveries {
		hooks = append(hooks, d.WebhookID)
	}
	return hooks
}

func ids(hooks ...store.Webhook) []uuid.UUID {
	out := []uuid.UUID{}
	for _, h := range hooks {
		out = append(out, h.ID)
	}
	return out
}

// An event reaches its account's active webhooks of its survey and its account-wide ones
// whose filter lets its survey through; never another account's.
func TestPublishEventReachesAccountWideWebhooks(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	a, b := store.Scope{AccountID: "acct-a"}, store.Scope{AccountID: "acct-b"}
	everySurvey := scopedHook(t, st, a, "every survey")
	onlyS2 := scopedHook(t, st, a, "only s2", "s2")
	s1 := scopedHook(t, st, store.Scope{AccountID: "acct-a", SurveyID: "s1"}, "s1")
	deactivated(t, st, scopedHook(t, st, a, "inactive, every survey"))
	deactivated(t, st, scopedHook(t, st, store.Scope{AccountID: "acct-a", SurveyID: "s1"}, "inactive s1"))
	bEverySurvey := scopedHook(t, st, b, "b every survey")
	bS1 := scopedHook(t, st, store.Scope{AccountID: "acct-b", SurveyID: "s1"}, "b s1")

	require.ElementsMatch(t, ids(everySurvey, s1), publishedTo(t, st, "acct-a", "s1"))
	require.ElementsMatch(t, ids(everySurvey, onlyS2), publishedTo(t, st, "acct-a", "s2"))
	require.ElementsMatch(t, ids(everySurvey), publishedTo(t, st, "acct-a", "s3"))
	require.ElementsMatch(t, ids(bEverySurvey, bS1), publishedTo(t, st, "acct-b", "s1"))
	require.Empty(t, publishedTo(t, st, "acct-c", "s1"))

	// A nil filter set by an update means every survey again.
	var every []string
	updated, err := st.UpdateWebhook(t.Context(), a, onlyS2.ID, store.WebhookUpdate{SurveyIDs: &every})
	require.NoError(t, err)
	require.Nil(t, updated.SurveyIDs)
	require.ElementsMatch(t, ids(everySurvey, onlyS2, s1), publishedTo(t, st, "acct-a", "s1"))
}

// A test event goes to its webhook only in the event's account: aimed at another
// account's webhook, it finds no webhook and delivers nothing.
func TestPublishTestEventToAnotherAccountsWebhook(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	theirs := scopedHook(t, st, store.Scope{AccountID: "acct-b", SurveyID: "s1"}, "theirs")

	ev := webhookTestEvent("test-foreign", "s1", theirs.ID)
	ev.AccountID = "acct-a"
	_, err := st.PublishEvent(ctx, ev)
	require.ErrorIs(t, err, store.ErrNotFound)
	deliveries, err := st.ListWebhookDeliveries(ctx, theirs.ID, store.DeliveryFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Empty(t, deliveries)
	_, err = st.GetEvent(ctx, "test-foreign")
	require.ErrorIs(t, err, store.ErrNotFound, "a refused test event is not stored")
	_, err = st.PublishEvent(ctx, ev)
	require.ErrorIs(t, err, store.ErrNotFound, "nor taken when published again")
}

// TestPublishEventWithoutSurvey publishes an event of no survey (the test event of an
// account-wide webhook has none): each account-wide webhook gets it once.
func TestPublishEventWithoutSurvey(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	wide := scopedHook(t, st, store.Scope{AccountID: "acct-a"}, "wide")
	ev := completedEvent("no-survey", "")
	ev.AccountID = "acct-a"
	p, err := st.PublishEvent(t.Context(), ev)
	require.NoError(t, err)
	require.Len(t, p.Deliveries, 1)
	require.Equal(t, wide.ID, p.Deliveries[0].WebhookID)
}

// requireOutOfScope checks that w cannot be read, listed, updated, rotated or deleted
// through scope.
func requireOutOfScope(t *testing.T, st *store.Store, scope store.Scope, w store.Webhook) {
	t.Helper()
	ctx := t.Context()
	_, err := st.GetWebhook(ctx, scope, w.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "get %+v through %+v", w.Scope(), scope)
	listed, err := st.ListWebhooks(ctx, scope, store.Page{Limit: 100})
	require.NoError(t, err)
	require.NotContains(t, ids(listed...), w.ID, "list %+v through %+v", w.Scope(), scope)
	name := "taken over"
	_, err = st.UpdateWebhook(ctx, scope, w.ID, store.WebhookUpdate{Name: &name})
	require.ErrorIs(t, err, store.ErrNotFound, "update %+v through %+v", w.Scope(), scope)
	_, err = st.UpdateWebhook(ctx, scope, w.ID, store.WebhookUpdate{})
	require.ErrorIs(t, err, store.ErrNotFound, "empty update %+v through %+v", w.Scope(), scope)
	_, err = st.RotateWebhookSecret(ctx, scope, w.ID, "whsec_taken-over-0123456789", time.Hour)
	require.ErrorIs(t, err, store.ErrNotFound, "rotate %+v through %+v", w.Scope(), scope)
	require.ErrorIs(t, st.DeleteWebhook(ctx, scope, w.ID), store.ErrNotFound, "delete %+v through %+v", w.Scope(), scope)
}

// Every webhook method acts only in its scope: a webhook is out of reach from another
// account, from another survey of its account, and between its account's survey-scoped
// and account-wide webhooks, either way.
func TestScopeIsolatesWebhooks(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	scopes := []store.Scope{
		{AccountID: "acct-a", SurveyID: "s1"},
		{AccountID: "acct-a", SurveyID: "s2"},
		{AccountID: "acct-a"},
		{AccountID: "acct-b", SurveyID: "s1"},
		{AccountID: "acct-b"},
	}
	var hooks []store.Webhook
	for _, scope := range []store.Scope{scopes[0], scopes[2], scopes[3], scopes[4]} {
		hooks = append(hooks, scopedHook(t, st, scope, "hook of "+scope.AccountID+"/"+scope.SurveyID))
	}

	for _, w := range hooks {
		for _, scope := range scopes {
			if scope != w.Scope() {
				requireOutOfScope(t, st, scope, w)
			}
		}
	}
	for _, w := range hooks {
		got, err := st.GetWebhook(ctx, w.Scope(), w.ID)
		require.NoError(t, err)
		require.Equal(t, w, got, "untouched by the calls out of its scope")
		listed, err := st.ListWebhooks(ctx, w.Scope(), store.Page{Limit: 100})
		require.NoError(t, err)
		require.Equal(t, ids(w), ids(listed...))
	}
}

// An account's list holds all its webhooks, its surveys' too, and WebhookScope names each
// one's scope; another account's list and lookup reach none of them.
func TestAccountWebhooksAndTheirScopes(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	a := store.Scope{AccountID: "acct-a"}
	wide := scopedHook(t, st, a, "wide")
	s1 := scopedHook(t, st, store.Scope{AccountID: "acct-a", SurveyID: "s1"}, "s1")
	theirs := scopedHook(t, st, store.Scope{AccountID: "acct-b", SurveyID: "s1"}, "theirs")

	listed, err := st.ListAccountWebhooks(ctx, "acct-a", store.Page{Limit: 100})
	require.NoError(t, err)
	require.Equal(t, ids(wide, s1), ids(listed...), "in creation order")
	page, err := st.ListAccountWebhooks(ctx, "acct-a", store.Page{After: &wide.ID, Limit: 100})
	require.NoError(t, err)
	require.Equal(t, ids(s1), ids(page...))

	for _, w := range []store.Webhook{wide, s1} {
		scope, err := st.WebhookScope(ctx, "acct-a", w.ID)
		require.NoError(t, err)
		require.Equal(t, w.Scope(), scope)
	}
	_, err = st.WebhookScope(ctx, "acct-a", theirs.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "another account's webhook")
	_, err = st.WebhookScope(ctx, "acct-b", s1.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
}
