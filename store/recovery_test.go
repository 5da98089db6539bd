package store_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
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
