package activities

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

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
