package activities

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultRetryDelays is the documented schedule: attempt 1 at once, then attempts 2..6 at
// these waits after the previous attempt.
var DefaultRetryDelays = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour}

// DefaultAttemptTimeout bounds one attempt, from dial to the end of the response.
const DefaultAttemptTimeout = 30 * time.Second

// Schedule is the retry schedule of a delivery.
type Schedule struct {
	// Delays are the waits before attempts 2..len(Delays)+1.
	Delays []time.Duration
}

// ParseDelays parses "1m,5m,15m,1h,6h" (SURVEYHOOKS_RETRY_DELAYS). Every delay must be
// positive: Temporal cannot be asked for a zero retry delay.
func ParseDelays(s string) ([]time.Duration, error) {
	var delays []time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		d, err := time.ParseDuration(part)
		if err != nil {
			return nil, fmt.Errorf("retry delay %q: %w", part, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("retry delay %q: must be positive", part)
		}
		delays = append(delays, d)
	}
	return delays, nil
}

// MaxAttempts is how many attempts the schedule allows.
func (s Schedule) MaxAttempts() int {
	return len(s.Delays) + 1
}

// Next returns the wait after attempt number (1-based) before the next attempt, and false
// when the schedule has no attempt left. retryAfter, when positive (from a 408/429/503
// Retry-After header), lengthens the wait, but never past the schedule's longest delay.
func (s Schedule) Next(number int, retryAfter time.Duration) (time.Duration, bool) {
	if number < 1 || number > len(s.Delays) {
		return 0, false
	}
	delay := s.Delays[number-1]
	if retryAfter > delay {
		delay = min(retryAfter, s.longest())
	}
	return delay, true
}

func (s Schedule) longest() time.Duration {
	var longest time.Duration
	for _, d := range s.Delays {
		longest = max(longest, d)
	}
	return longest
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if secs, err := strconv.Atoi(value); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
