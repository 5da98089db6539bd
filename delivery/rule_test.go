package delivery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	later := now.Add(time.Minute)
	earlier := now.Add(-time.Second)
	tests := []struct {
		name    string
		st      State
		trigger string
		force   bool
		want    Action
	}{
		{"first attempt", State{Status: StatusPending, WebhookActive: true}, TriggerAuto, false, ActionSend},
		{"next attempt due", State{Status: StatusRetrying, AttemptCount: 1, NextAttemptAt: &earlier, WebhookActive: true}, TriggerAuto, false, ActionSend},
		{"next attempt not due", State{Status: StatusRetrying, AttemptCount: 1, NextAttemptAt: &later, WebhookActive: true}, TriggerAuto, false, ActionWait},
		{"manual retry during the wait", State{Status: StatusRetrying, NextAttemptAt: &later, WebhookActive: true}, TriggerManual, false, ActionSend},
		{"schedule over", State{Status: StatusFailed, AttemptCount: 6, WebhookActive: true}, TriggerAuto, false, ActionEnd},
		{"manual retry of a failed delivery", State{Status: StatusFailed, AttemptCount: 6, WebhookActive: true}, TriggerManual, false, ActionSend},
		{"delivered", State{Status: StatusDelivered, WebhookActive: true}, TriggerAuto, false, ActionSkip},
		{"delivered, retried", State{Status: StatusDelivered, WebhookActive: true}, TriggerManual, false, ActionSkip},
		{"delivered, forced", State{Status: StatusDelivered, WebhookActive: true}, TriggerManual, true, ActionSend},
		{"inactive webhook", State{Status: StatusRetrying, WebhookActive: false}, TriggerAuto, false, ActionRefuse},
		{"inactive webhook, manual", State{Status: StatusFailed, WebhookActive: false}, TriggerManual, false, ActionRefuse},
		{"inactive webhook, test", State{Status: StatusPending, WebhookActive: false}, TriggerTest, false, ActionSend},
		{"paused", State{Status: StatusPending, WebhookActive: true, PausedUntil: &later}, TriggerAuto, false, ActionHold},
		{"paused, manual", State{Status: StatusFailed, WebhookActive: true, PausedUntil: &later}, TriggerManual, false, ActionHold},
		{"paused, test", State{Status: StatusPending, WebhookActive: true, PausedUntil: &later}, TriggerTest, false, ActionSend},
		{"pause over", State{Status: StatusRetrying, WebhookActive: true, PausedUntil: &earlier}, TriggerAuto, false, ActionSend},
		{"paused, schedule over", State{Status: StatusFailed, WebhookActive: true, PausedUntil: &later}, TriggerAuto, false, ActionEnd},
		{"paused, delivered", State{Status: StatusDelivered, WebhookActive: true, PausedUntil: &later}, TriggerManual, false, ActionSkip},
		{"paused, inactive", State{Status: StatusPending, WebhookActive: false, PausedUntil: &later}, TriggerAuto, false, ActionRefuse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.st, tt.trigger, tt.force, now)
			require.Equal(t, tt.want, got.Action, got.Reason)
			if got.Action == ActionWait || got.Action == ActionHold {
				require.Equal(t, time.Minute, got.Wait)
			}
			if got.Action != ActionSend && got.Action != ActionWait {
				require.NotEmpty(t, got.Reason)
			}
		})
	}
}

func TestSingle(t *testing.T) {
	t.Parallel()
	require.True(t, Single(StatusPending, TriggerTest))
	require.True(t, Single(StatusFailed, TriggerManual), "a person's retry after the schedule ended")
	require.True(t, Single(StatusDelivered, TriggerManual))
	require.True(t, Single(StatusSkipped, TriggerManual), "a retry of a delivery skipped while its webhook was disabled")
	require.False(t, Single(StatusRetrying, TriggerManual), "the schedule goes on after a retry during its wait")
	require.False(t, Single(StatusPending, TriggerAuto))
}

func TestScheduleBounds(t *testing.T) {
	t.Parallel()
	s := DefaultSchedule()
	require.Equal(t, 6, s.MaxAttempts())
	require.Equal(t, DefaultAttemptTimeout+recordRoom, s.ActivityTimeout())
	// Every delay, every attempt at its timeout, and a day of outages.
	require.Equal(t, 7*time.Hour+21*time.Minute+6*s.ActivityTimeout()+24*time.Hour, s.Span())
}

func TestDisableReason(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	since := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	p := DisablePolicy{After: 5 * 24 * time.Hour, MinFailures: 10}
	for _, c := range []struct {
		name         string
		policy       DisablePolicy
		status, fail int
		since        *time.Time
		want         string
	}{
		{"410 at once", p, 410, 1, since(0), "the receiver answered 410 Gone"},
		{"410 with no policy", DisablePolicy{}, 410, 1, since(0), "the receiver answered 410 Gone"},
		{"failing long enough", p, 500, 10, since(5 * 24 * time.Hour), "every attempt failed for 120h0m0s (10 attempts since 2026-12-05T12:00:00Z)"},
		{"no answer, long enough", p, 0, 30, since(6 * 24 * time.Hour), "every attempt failed for 144h0m0s (30 attempts since 2026-12-04T12:00:00Z)"},
		{"not long enough", p, 500, 50, since(5*24*time.Hour - time.Second), ""},
		{"too few attempts", p, 500, 9, since(30 * 24 * time.Hour), ""},
		{"no streak", p, 500, 0, nil, ""},
		{"a success", p, 200, 0, nil, ""},
		{"off for failures", DisablePolicy{}, 500, 1000, since(365 * 24 * time.Hour), ""},
		{"another 4xx", p, 404, 1, since(0), ""},
	} {
		require.Equal(t, c.want, c.policy.DisableReason(c.status, c.fail, c.since, now), c.name)
	}
}

func TestFailing(t *testing.T) {
	t.Parallel()
	p := DisablePolicy{FailingAfter: 5}
	require.True(t, p.Failing(4, 5))
	require.True(t, p.Failing(3, 7), "a batch that jumps past the threshold crosses it")
	require.True(t, p.Failing(0, 5), "a batch with a success, then five failures")
	require.False(t, p.Failing(5, 6), "once per streak")
	require.False(t, p.Failing(2, 4))
	require.False(t, DisablePolicy{}.Failing(0, 100), "0 sends none")
}

func TestPauseFor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status     int
		retryAfter time.Duration
		want       time.Duration
	}{
		{429, 10 * time.Second, 10 * time.Second},
		{429, 0, DefaultPause},
		{429, 48 * time.Hour, MaxPause},
		{503, 30 * time.Second, 30 * time.Second},
		{503, 0, 0},
		{500, 30 * time.Second, 0},
		{408, 30 * time.Second, 0},
		{200, 0, 0},
		{0, 0, 0},
	} {
		require.Equal(t, tt.want, PauseFor(tt.status, tt.retryAfter), "%d Retry-After %s", tt.status, tt.retryAfter)
	}
}
