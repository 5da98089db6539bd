package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
)

// A webhook's rate limit is stored, shown and removed with the webhook.
func TestWebhookRateLimitRoundTrips(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	w := newWebhook("s-rate", "limited")
	five := 5.0
	w.RateLimit, w.RateBurst = &five, 3
	created, err := st.CreateWebhook(ctx, w)
	require.NoError(t, err)
	require.Equal(t, &store.RateLimit{PerSecond: 5, Burst: 3}, created.Limit())

	scope := inSurvey("s-rate")
	got, err := st.GetWebhook(ctx, scope, created.ID)
	require.NoError(t, err)
	require.Equal(t, &store.RateLimit{PerSecond: 5, Burst: 3}, got.Limit())

	got, err = st.UpdateWebhook(ctx, scope, created.ID, store.WebhookUpdate{RateLimit: &store.RateLimit{PerSecond: 0.5, Burst: 1}})
	require.NoError(t, err)
	require.Equal(t, &store.RateLimit{PerSecond: 0.5, Burst: 1}, got.Limit())
	name := "renamed"
	got, err = st.UpdateWebhook(ctx, scope, created.ID, store.WebhookUpdate{Name: &name})
	require.NoError(t, err)
	require.Equal(t, &store.RateLimit{PerSecond: 0.5, Burst: 1}, got.Limit(), "an update without it keeps it")
	got, err = st.UpdateWebhook(ctx, scope, created.ID, store.WebhookUpdate{RateLimit: &store.RateLimit{}})
	require.NoError(t, err)
	require.Nil(t, got.Limit())
	require.Zero(t, got.RateBurst)
}

// TakeSlot is a generic cell rate algorithm: a burst goes at once, then one request per
// interval; each refused request is told a turn one interval after the last refused one's,
// unless a slot frees within store.SlotGrace: then it is told to wait for that slot.
func TestTakeSlotKeepsTheRate(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	id := uuid.New()
	limit := store.RateLimit{PerSecond: 2, Burst: 3} // an interval of 500 ms
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	take := func(at time.Duration) time.Duration {
		wait, err := st.TakeSlot(ctx, id, limit, t0.Add(at))
		require.NoError(t, err)
		return wait
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	for i := range 3 {
		require.Zero(t, take(0), "request %d of the burst", i+1)
	}
	// The next request may go at 500 ms; the ones after, one interval apart.
	require.Equal(t, ms(500), take(0))
	require.Equal(t, ms(1000), take(0))
	require.Equal(t, ms(1500), take(0))
	require.Equal(t, ms(50), take(ms(450)), "back at its turn 50 ms early: it waits for its slot")
	require.Zero(t, take(ms(500)), "its turn")
	require.Equal(t, ms(1400), take(ms(600)), "behind the refused ones")
	require.Zero(t, take(ms(1000)))
	require.Zero(t, take(ms(1500)))
	// After a while of quiet the burst is back.
	for i := range 3 {
		require.Zero(t, take(ms(5000)), "request %d of the second burst", i+1)
	}
	require.NotZero(t, take(ms(5000)))

	other, err := st.TakeSlot(ctx, uuid.New(), limit, t0)
	require.NoError(t, err)
	require.Zero(t, other, "another webhook has its own bucket")
}

// Concurrent takers (the workers) share one bucket: over a simulated second, no more than
// the rate plus the burst are granted.
func TestTakeSlotHoldsAcrossConcurrentTakers(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	id := uuid.New()
	limit := store.RateLimit{PerSecond: 5, Burst: 2}
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	var granted sync.Map
	var wg sync.WaitGroup
	for worker := range 3 {
		wg.Go(func() {
			for ms := 0; ms < 1000; ms += 10 {
				wait, err := st.TakeSlot(ctx, id, limit, t0.Add(time.Duration(ms)*time.Millisecond))
				require.NoError(t, err)
				if wait == 0 {
					granted.Store([2]int{worker, ms}, true)
				}
			}
		})
	}
	wg.Wait()
	n := 0
	granted.Range(func(any, any) bool { n++; return true })
	// At t0: the burst (2); then one every 200 ms: 200, 400, 600, 800 ms.
	require.LessOrEqual(t, n, 6)
	require.GreaterOrEqual(t, n, 5)
}

// A pause is read with the delivery's target, and a shorter one does not cut a longer one.
func TestPauseWebhook(t *testing.T) {
	t.Parallel()
	st, _ := setupWebhooks(t)
	ctx := t.Context()
	hook, err := st.CreateWebhook(ctx, newWebhook("s-pause", "paused"))
	require.NoError(t, err)
	p, err := st.PublishEvent(ctx, completedEvent(uuid.NewString(), "s-pause"))
	require.NoError(t, err)
	require.Len(t, p.Deliveries, 1)
	target, err := st.GetTarget(ctx, p.Deliveries[0].ID)
	require.NoError(t, err)
	require.Nil(t, target.PausedUntil)

	until := time.Now().Add(10 * time.Second).UTC().Truncate(time.Microsecond)
	require.NoError(t, st.PauseWebhook(ctx, hook.ID, until))
	require.NoError(t, st.PauseWebhook(ctx, hook.ID, until.Add(-5*time.Second)))
	target, err = st.GetTarget(ctx, p.Deliveries[0].ID)
	require.NoError(t, err)
	require.NotNil(t, target.PausedUntil)
	require.True(t, target.PausedUntil.Equal(until), "%s, want %s", target.PausedUntil, until)

	require.NoError(t, st.DeleteWebhook(ctx, inSurvey("s-pause"), hook.ID))
	wait, err := st.TakeSlot(ctx, hook.ID, store.RateLimit{PerSecond: 1, Burst: 1}, time.Now())
	require.NoError(t, err)
	require.Zero(t, wait, "the webhook's throttle went with it")
}
