package delivery

import (
	"fmt"
	"strings"
	"time"
)

// DefaultRetryDelays is the documented schedule: attempt 1 at once, then attempts 2..6 at
// these waits after the previous attempt.
var DefaultRetryDelays = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour}

// DefaultAttemptTimeout bounds one attempt, from dial to the end of the response.
const DefaultAttemptTimeout = 30 * time.Second

// Schedule is the retry schedule of a delivery: when its attempts are made, and how long
// each may take.
type Schedule struct {
	// Delays are the waits before attempts 2..len(Delays)+1 (SURVEYHOOKS_RETRY_DELAYS).
	Delays []time.Duration
	// AttemptTimeout bounds one attempt, from dial to the end of the response
	// (SURVEYHOOKS_ATTEMPT_TIMEOUT).
	AttemptTimeout time.Duration
}

// DefaultSchedule is the documented schedule with the documented attempt timeout.
func DefaultSchedule() Schedule {
	return Schedule{Delays: DefaultRetryDelays, AttemptTimeout: DefaultAttemptTimeout}
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

// recordRoom is the time an attempt's activity gets beyond the attempt itself: to load its
// target, and to record the attempt once the receiver answered or the attempt timed out.
const recordRoom = 30 * time.Second

// ActivityTimeout bounds one run of the Deliver activity, and so how long anyone waits for
// one attempt (the webhook test endpoint): the attempt's own timeout plus room to load and
// record it.
func (s Schedule) ActivityTimeout() time.Duration {
	return s.AttemptTimeout + recordRoom
}

// HeartbeatTimeout is how long Temporal waits for a sign of life from a running Deliver
// activity before it counts the try as lost (its worker died) and retries it, instead of
// waiting out the whole ActivityTimeout. Deliver beats several times within it, also while
// it waits on the receiver.
const HeartbeatTimeout = 10 * time.Second

// outageAllowance is how long, beyond its own span, a schedule waits through tries that
// never reached the receiver (a database outage, workers down): those cost no attempt.
const outageAllowance = 24 * time.Hour

// Span bounds a delivery's run through its schedule (the Deliver activity's
// ScheduleToClose): every delay, every attempt at its timeout, and a day of outages.
func (s Schedule) Span() time.Duration {
	span := outageAllowance + time.Duration(s.MaxAttempts())*s.ActivityTimeout()
	for _, d := range s.Delays {
		span += d
	}
	return span
}
