package delivery

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestScheduleNext(t *testing.T) {
	t.Parallel()
	s := Schedule{Delays: DefaultRetryDelays}
	require.Equal(t, 6, s.MaxAttempts())
	tests := []struct {
		name       string
		number     int
		retryAfter time.Duration
		want       time.Duration
		more       bool
	}{
		{"after attempt 1", 1, 0, time.Minute, true},
		{"after attempt 2", 2, 0, 5 * time.Minute, true},
		{"after attempt 5", 5, 0, 6 * time.Hour, true},
		{"after the last attempt", 6, 0, 0, false},
		{"past the schedule", 9, 0, 0, false},
		{"no attempt yet", 0, 0, 0, false},
		{"retry-after longer than the step", 1, 2 * time.Minute, 2 * time.Minute, true},
		{"retry-after shorter than the step", 3, time.Second, 15 * time.Minute, true},
		{"retry-after capped at the longest delay", 1, 48 * time.Hour, 6 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, more := s.Next(tt.number, tt.retryAfter)
			require.Equal(t, tt.more, more)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseDelays(t *testing.T) {
	t.Parallel()
	got, err := ParseDelays(" 1m, 5m,15m ,1h,6h")
	require.NoError(t, err)
	require.Equal(t, DefaultRetryDelays, got)

	for _, bad := range []string{"1m,soon", "1m,0s", "-5s"} {
		_, err := ParseDelays(bad)
		require.Error(t, err, bad)
	}
}
