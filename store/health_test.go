package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
)

// attemptAt is a recorded attempt of d that started at, took ms and got status (0: no
// answer).
func attemptAt(d store.EventDelivery, prior int, at time.Time, ms float64, status int) store.AttemptRecord {
	a := store.Attempt{ID: uuid.Must(uuid.NewV7()), DeliveryID: d.ID, Trigger: delivery.TriggerAuto,
		StartedAt: at, DurationMS: ms, RequestURL: "https://receiver.example.com/", RequestHeaders: []byte(`{}`)}
	out := store.Outcome{Status: delivery.StatusDelivered}
	if status != 0 {
		a.ResponseStatus = &status
	}
	if status < 200 || status > 299 {
		a.Error = "failed"
		out = store.Outcome{Status: delivery.StatusRetrying, LastError: a.Error}
	}
	return store.AttemptRecord{Attempt: a, Prior: prior, Outcome: out}
}

// A webhook's health follows its recorded attempts, in one statement with them or in a
// batch of several: failures make a streak from the first one, a success ends it, and the
// last failure's status and error are kept. Another webhook's attempts do not count.
func TestWebhookHealthFollowsAttempts(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	hook := scopedHook(t, st, store.Scope{AccountID: "acct-h", SurveyID: "s1"}, "health")
	other := scopedHook(t, st, store.Scope{AccountID: "acct-h", SurveyID: "s2"}, "other")
	publish := func(survey string) store.EventDelivery {
		ev := completedEvent(uuid.NewString(), survey)
		ev.AccountID = "acct-h"
		p, err := st.PublishEvent(ctx, ev)
		require.NoError(t, err)
		require.Len(t, p.Deliveries, 1)
		return p.Deliveries[0]
	}
	health := func() store.Health {
		hs, err := st.WebhookHealths(ctx, []uuid.UUID{hook.ID, other.ID})
		require.NoError(t, err)
		require.Len(t, hs, 2)
		return hs[hook.ID]
	}
	require.Equal(t, store.Health{WebhookID: hook.ID}, health(), "no attempt yet")

	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	d := publish("s1")
	streak, ok, err := st.RecordAttempt(ctx, attemptAt(d, 0, t0, 12, 500))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 1, streak.ConsecutiveFailures)
	require.Zero(t, streak.FailuresBefore)
	// A batch: two more failures, one without an answer, and another webhook's success.
	recorded, err := st.RecordAttempts(ctx, []store.AttemptRecord{
		attemptAt(d, 1, t0.Add(time.Minute), 30, 503),
		attemptAt(publish("s1"), 0, t0.Add(2*time.Minute), 30000, 0),
		attemptAt(publish("s2"), 0, t0.Add(2*time.Minute), 5, 200),
	})
	require.NoError(t, err)
	require.Len(t, recorded, 3)
	for _, r := range recorded {
		if r.WebhookID == hook.ID {
			require.Equal(t, []int{1, 3}, []int{r.FailuresBefore, r.ConsecutiveFailures}, "the batch took the streak from 1 to 3")
		}
	}
	h := health()
	require.Equal(t, 3, h.ConsecutiveFailures)
	require.True(t, t0.Equal(*h.FailingSince), h.FailingSince)
	require.True(t, t0.Add(2*time.Minute).Equal(*h.LastFailureAt))
	require.Nil(t, h.LastFailureStatus, "the last failure got no answer")
	require.Equal(t, "failed", h.LastFailureError)
	require.Nil(t, h.LastSuccessAt)

	// A batch with a failure, then a success, then two failures: the streak is the two.
	e1, e2, e3 := publish("s1"), publish("s1"), publish("s1")
	_, err = st.RecordAttempts(ctx, []store.AttemptRecord{
		attemptAt(e1, 0, t0.Add(3*time.Minute), 40, 500),
		attemptAt(e2, 0, t0.Add(4*time.Minute), 40, 204),
		attemptAt(e3, 0, t0.Add(5*time.Minute), 40, 502),
	})
	require.NoError(t, err)
	recorded, err = st.RecordAttempts(ctx, []store.AttemptRecord{attemptAt(e2, 1, t0.Add(6*time.Minute), 40, 429)})
	require.NoError(t, err)
	for _, r := range recorded {
		require.Equal(t, []int{1, 2}, []int{r.FailuresBefore, r.ConsecutiveFailures}, "after a batch with a success")
	}
	h = health()
	require.Equal(t, 2, h.ConsecutiveFailures)
	require.True(t, t0.Add(5*time.Minute).Equal(*h.FailingSince), h.FailingSince)
	require.True(t, t0.Add(4*time.Minute).Equal(*h.LastSuccessAt))
	require.Equal(t, 429, *h.LastFailureStatus)

	// A success ends the streak.
	_, _, err = st.RecordAttempt(ctx, attemptAt(e1, 1, t0.Add(7*time.Minute), 40, 200))
	require.NoError(t, err)
	h = health()
	require.Zero(t, h.ConsecutiveFailures)
	require.Nil(t, h.FailingSince)
	require.Equal(t, 429, *h.LastFailureStatus, "the last failure is still shown")
}

// Stats count each attempt in its hour and latency class, add up across statements, and
// come back in whole buckets of the step asked for, empty ones included.
func TestWebhookStatsBuckets(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	hook := scopedHook(t, st, store.Scope{AccountID: "acct-s", SurveyID: "s1"}, "stats")
	publish := func() store.EventDelivery {
		ev := completedEvent(uuid.NewString(), "s1")
		ev.AccountID = "acct-s"
		p, err := st.PublishEvent(ctx, ev)
		require.NoError(t, err)
		return p.Deliveries[0]
	}
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	// Hour 10: 3 attempts (5 ms ok, 60 ms ok, 700 ms failed); hour 12: 1 (40 000 ms, no answer).
	_, err := st.RecordAttempts(ctx, []store.AttemptRecord{
		attemptAt(publish(), 0, t0.Add(time.Minute), 5, 200),
		attemptAt(publish(), 0, t0.Add(2*time.Minute), 60, 200),
	})
	require.NoError(t, err)
	_, _, err = st.RecordAttempt(ctx, attemptAt(publish(), 0, t0.Add(59*time.Minute), 700, 500))
	require.NoError(t, err)
	_, _, err = st.RecordAttempt(ctx, attemptAt(publish(), 0, t0.Add(2*time.Hour+time.Second), 40000, 0))
	require.NoError(t, err)

	hours, err := st.WebhookStats(ctx, hook.ID, t0.Add(2*time.Hour+30*time.Minute), time.Hour, 4)
	require.NoError(t, err)
	require.Len(t, hours, 4)
	require.True(t, t0.Add(-time.Hour).Equal(hours[0].Start), hours[0].Start)
	require.Zero(t, hours[0].Attempts)
	ten := hours[1]
	require.Equal(t, []int{3, 2, 1}, []int{ten.Attempts, ten.Successes, ten.Failures})
	classes := make([]int, len(store.LatencyBounds)+1)
	classes[0], classes[3], classes[6] = 1, 1, 1 // <10 ms, 50-100 ms, 500-1000 ms
	require.Equal(t, classes, ten.LatencyCounts)
	require.Equal(t, 100.0, ten.LatencyPercentile(0.5))
	require.Equal(t, 1000.0, ten.LatencyPercentile(0.95))
	require.Zero(t, hours[2].Attempts)
	require.Equal(t, 1, hours[3].Failures)
	require.Equal(t, 1, hours[3].LatencyCounts[len(store.LatencyBounds)], "past the last bound")

	days, err := st.WebhookStats(ctx, hook.ID, t0, 24*time.Hour, 1)
	require.NoError(t, err)
	require.Equal(t, 4, days[0].Attempts)
	require.Equal(t, 1.0, float64(days[0].Successes)/float64(days[0].Attempts)*2, "2 of 4 succeeded")

	_, err = st.WebhookStats(ctx, hook.ID, t0, 30*time.Minute, 2)
	require.Error(t, err)
}

// Deleting webhooks while their first attempts are being recorded neither deadlocks nor
// leaves their health behind: recording locks a delivery and then the health row, deleting a
// webhook its deliveries (the cascade) and then the health row, in the same order.
func TestDeleteWebhookWhileRecording(t *testing.T) {
	t.Parallel()
	st, db := setupWebhooks(t)
	ctx := t.Context()
	const hooks = 60
	scope := store.Scope{AccountID: "acct-race", SurveyID: "s1"}
	var ids []uuid.UUID
	var ds []store.EventDelivery
	for i := range hooks {
		ids = append(ids, scopedHook(t, st, scope, fmt.Sprintf("racing %d", i)).ID)
	}
	for range 3 {
		ev := completedEvent(uuid.NewString(), scope.SurveyID)
		ev.AccountID = scope.AccountID
		p, err := st.PublishEvent(ctx, ev)
		require.NoError(t, err)
		ds = append(ds, p.Deliveries...)
	}
	var g errgroup.Group
	for w := range 3 {
		// Each records a batch of one delivery of every webhook, the webhooks in turn.
		g.Go(func() error {
			var batch []store.AttemptRecord
			for _, d := range ds[w*hooks : (w+1)*hooks] {
				batch = append(batch, attemptAt(d, 0, time.Now(), 5, 500))
			}
			_, err := st.RecordAttempts(ctx, batch)
			return err
		})
	}
	g.Go(func() error {
		for _, id := range slices.Backward(ids) {
			if err := st.DeleteWebhook(ctx, scope, id); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, g.Wait())
	requireNoOrphanHealth(t, db)
}

// Disabling a webhook ends its waiting deliveries (skipped before any attempt, failed after
// one) and stores its notices with it, once: a second call finds it off and stores nothing.
func TestDisableWebhookEndsWaitingDeliveriesWithNotices(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	scope := store.Scope{AccountID: "acct-d", SurveyID: "s1"}
	hook := scopedHook(t, st, scope, "failing")
	var ds []store.EventDelivery
	for range 2 {
		ev := completedEvent(uuid.NewString(), "s1")
		ev.AccountID = "acct-d"
		p, err := st.PublishEvent(ctx, ev)
		require.NoError(t, err)
		ds = append(ds, p.Deliveries[0])
	}
	_, _, err := st.RecordAttempt(ctx, attemptAt(ds[0], 0, time.Now(), 5, 500)) // retrying
	require.NoError(t, err)
	notice := func(id string) store.Event {
		return store.Event{ID: id, AccountID: "acct-d", EventType: "webhook.disabled", Body: []byte(`{}`)}
	}

	done, err := st.DisableWebhook(ctx, hook.ID, "gone", notice("notice-1"))
	require.NoError(t, err)
	require.True(t, done)
	got, err := st.GetWebhook(ctx, scope, hook.ID)
	require.NoError(t, err)
	require.False(t, got.IsActive)
	require.Equal(t, "gone", got.DisabledReason)
	for i, want := range []string{"failed", "skipped"} {
		d, err := st.GetDelivery(ctx, hook.ID, ds[i].ID)
		require.NoError(t, err)
		require.Equal(t, want, d.Status)
		require.Equal(t, "the webhook was disabled: gone", d.LastError)
	}
	_, err = st.GetEvent(ctx, "notice-1")
	require.NoError(t, err, "the notice is stored with the change")

	done, err = st.DisableWebhook(ctx, hook.ID, "gone again", notice("notice-2"))
	require.NoError(t, err)
	require.False(t, done)
	_, err = st.GetEvent(ctx, "notice-2")
	require.ErrorIs(t, err, store.ErrNotFound, "no notice when nothing changed")
}
