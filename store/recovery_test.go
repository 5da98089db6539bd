package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/store"
)

// A recovery picks the webhook's deliveries of the statuses asked for, made in its window,
// in id order, a batch at a time after a cursor; never another webhook's.
func TestListRecoverable(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	hook := scopedHook(t, st, store.Scope{AccountID: "acct-r", SurveyID: "s1"}, "recovering")
	scopedHook(t, st, store.Scope{AccountID: "acct-r", SurveyID: "s1"}, "other")
	var failed, skipped []uuid.UUID
	for i := range 9 {
		ev := completedEvent(uuid.NewString(), "s1")
		ev.AccountID = "acct-r"
		p, err := st.PublishEvent(ctx, ev)
		require.NoError(t, err)
		for _, d := range p.Deliveries {
			status := []string{delivery.StatusFailed, delivery.StatusSkipped, delivery.StatusDelivered}[i%3]
			_, err := db.Exec(`UPDATE deliveries SET status = $2 WHERE id = $1`, d.ID, status)
			require.NoError(t, err)
			if d.WebhookID != hook.ID {
				continue
			}
			switch status {
			case delivery.StatusFailed:
				failed = append(failed, d.ID)
			case delivery.StatusSkipped:
				skipped = append(skipped, d.ID)
			}
		}
	}
	// One failed delivery made before the window.
	_, err := db.Exec(`UPDATE deliveries SET created_at = now() - interval '2 days' WHERE id = $1`, failed[0])
	require.NoError(t, err)

	f := store.RecoveryFilter{WebhookID: hook.ID, Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute),
		Statuses: delivery.RecoverableStatuses}
	n, err := st.CountRecoverable(ctx, f)
	require.NoError(t, err)
	require.Equal(t, 5, n)
	var got []uuid.UUID
	after := uuid.Nil
	for {
		ids, err := st.ListRecoverable(ctx, f, after, 2)
		require.NoError(t, err)
		got = append(got, ids...)
		if len(ids) < 2 {
			break
		}
		after = ids[len(ids)-1]
	}
	want := append(append([]uuid.UUID{}, failed[1:]...), skipped...)
	require.ElementsMatch(t, want, got)
	require.IsIncreasing(t, uuidStrings(got))

	f.Statuses = []string{delivery.StatusSkipped}
	ids, err := st.ListRecoverable(ctx, f, uuid.Nil, 100)
	require.NoError(t, err)
	require.ElementsMatch(t, skipped, ids)
	f.Until = time.Now().Add(-30 * time.Minute)
	n, err = st.CountRecoverable(ctx, f)
	require.NoError(t, err)
	require.Zero(t, n, "nothing made before until")
}

func uuidStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// An account's filter picks the deliveries of every webhook of the account, optionally of
// one survey's events and of one event type; never another account's.
func TestListRecoverableOfAnAccount(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	scopedHook(t, st, store.Scope{AccountID: "acct-f", SurveyID: "s1"}, "s1")
	scopedHook(t, st, store.Scope{AccountID: "acct-f", SurveyID: "s2"}, "s2")
	scopedHook(t, st, store.Scope{AccountID: "acct-g", SurveyID: "s1"}, "other account")
	picked := map[string][]uuid.UUID{}
	for _, ev := range []struct{ account, survey, eventType string }{
		{"acct-f", "s1", eventtype.SurveyResponseCompleted},
		{"acct-f", "s1", eventtype.SurveyResponseCompleted},
		{"acct-f", "s1", eventtype.SurveyResponseUpdated},
		{"acct-f", "s2", eventtype.SurveyResponseCompleted},
		{"acct-g", "s1", eventtype.SurveyResponseCompleted},
	} {
		e := completedEvent(uuid.NewString(), ev.survey)
		e.AccountID, e.EventType = ev.account, ev.eventType
		p, err := st.PublishEvent(ctx, e)
		require.NoError(t, err)
		for _, d := range p.Deliveries {
			_, err := db.Exec(`UPDATE deliveries SET status = 'failed' WHERE id = $1`, d.ID)
			require.NoError(t, err)
			key := ev.account + "/" + ev.survey + "/" + ev.eventType
			picked[key] = append(picked[key], d.ID)
		}
	}
	f := store.RecoveryFilter{AccountID: "acct-f", Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute),
		Statuses: delivery.RecoverableStatuses}
	list := func(f store.RecoveryFilter) []uuid.UUID {
		n, err := st.CountRecoverable(ctx, f)
		require.NoError(t, err)
		ids, err := st.ListRecoverable(ctx, f, uuid.Nil, 100)
		require.NoError(t, err)
		require.Len(t, ids, n)
		return ids
	}
	c1, u1 := "acct-f/s1/"+eventtype.SurveyResponseCompleted, "acct-f/s1/"+eventtype.SurveyResponseUpdated
	c2 := "acct-f/s2/" + eventtype.SurveyResponseCompleted
	require.ElementsMatch(t, append(append(append([]uuid.UUID{}, picked[c1]...), picked[u1]...), picked[c2]...), list(f))
	f.SurveyID = "s1"
	require.ElementsMatch(t, append(append([]uuid.UUID{}, picked[c1]...), picked[u1]...), list(f))
	f.EventType = eventtype.SurveyResponseCompleted
	require.ElementsMatch(t, picked[c1], list(f))
	f.SurveyID = ""
	require.ElementsMatch(t, append(append([]uuid.UUID{}, picked[c1]...), picked[c2]...), list(f))

	outcomes, err := st.RecoveredOutcomes(ctx, f, picked[c2][0], time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Empty(t, outcomes, "no manual attempt yet")
}
