package activities

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	require.Equal(t, 120*time.Second, parseRetryAfter("120", now))
	require.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	require.Zero(t, parseRetryAfter("", now))
	require.Zero(t, parseRetryAfter("-3", now))
	require.Zero(t, parseRetryAfter("tomorrow", now))
	require.Zero(t, parseRetryAfter(now.Add(-time.Hour).Format(http.TimeFormat), now), "a date in the past")
}

func TestLoggableBodies(t *testing.T) {
	t.Parallel()
	a := &Activities{cfg: Config{MaxLoggedBody: 8}}
	require.Equal(t, "short", a.loggable([]byte("short")))

	got := a.loggable([]byte("0123456789abcdef"))
	require.True(t, strings.HasPrefix(got, "01234567\n[truncated at 8 bytes]"), got)

	// A rune cut by the cap, invalid UTF-8 and NUL bytes become U+FFFD: PostgreSQL text
	// refuses them.
	got = a.loggable([]byte("abcdefg\xc3\xa9"))
	require.True(t, utf8.ValidString(got))
	got = a.loggable([]byte("a\x00b\xffc"))
	require.Equal(t, "a\uFFFDb\uFFFDc", got)
}
