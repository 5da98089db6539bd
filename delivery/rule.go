package delivery

import (
	"fmt"
	"net/http"
	"time"
)

// Delivery statuses, as stored and shown.
const (
	StatusPending   = "pending"   // created, no attempt finished yet
	StatusRetrying  = "retrying"  // an attempt failed, the next one is scheduled
	StatusDelivered = "delivered" // the receiver answered 2xx
	StatusFailed    = "failed"    // no attempt left, or the receiver refused for good
	StatusSkipped   = "skipped"   // its webhook was disabled: not sent, kept for a retry
)

// Statuses lists every delivery status, in the order of a delivery's life.
var Statuses = []string{StatusPending, StatusRetrying, StatusDelivered, StatusFailed, StatusSkipped}

// Attempt triggers: what started an attempt.
const (
	TriggerAuto   = "auto"   // the first attempt or the retry schedule
	TriggerManual = "manual" // someone asked for a retry
	TriggerTest   = "test"   // the webhook test endpoint
)

// State is what the rule for sending reads of a delivery.
type State struct {
	Status        string
	AttemptCount  int
	NextAttemptAt *time.Time
	// WebhookActive is false once the webhook was deactivated.
	WebhookActive bool
	// PausedUntil is when the pause its receiver asked for ends (429, or 503 with
	// Retry-After); nil when none was asked.
	PausedUntil *time.Time
}

// Verdict is the rule's answer: send now, wait, or do not send (and why).
type Verdict struct {
	Action Action
	// Wait is how long until the attempt is due (ActionWait, ActionHold).
	Wait time.Duration
	// Reason says why nothing is sent (ActionSkip, ActionEnd, ActionRefuse).
	Reason string
}

// Action is what the rule decides for an attempt.
type Action int

const (
	// ActionSend: make the attempt now.
	ActionSend Action = iota
	// ActionWait: the schedule's next attempt is not due yet.
	ActionWait
	// ActionSkip: the delivery got through already; nothing is sent unless forced.
	ActionSkip
	// ActionEnd: the delivery's schedule is over; only a person's retry sends again.
	ActionEnd
	// ActionRefuse: the webhook is inactive; the delivery ends failed.
	ActionRefuse
	// ActionHold: the receiver asked for a pause; the attempt goes when it ends, and the
	// wait costs no attempt of the schedule.
	ActionHold
)

// Decide is the one rule for "may this delivery be sent now?", which the API applies before
// it asks for a retry and the Deliver activity before each attempt:
//   - a delivered delivery is sent again only when forced;
//   - an inactive webhook gets test attempts only;
//   - the schedule (trigger auto) never goes past its end, and never ahead of the time the
//     last attempt set for the next one; a person's retry or a test goes at once;
//   - nothing but a test goes while the receiver's pause runs: a test is one request a
//     person asked for, and shows them what the receiver answers now.
func Decide(st State, trigger string, force bool, now time.Time) Verdict {
	switch {
	case st.Status == StatusDelivered && !force:
		return Verdict{Action: ActionSkip, Reason: "already delivered"}
	case !st.WebhookActive && trigger != TriggerTest:
		return Verdict{Action: ActionRefuse, Reason: "the webhook is inactive"}
	case trigger == TriggerAuto && st.Status == StatusFailed:
		return Verdict{Action: ActionEnd, Reason: fmt.Sprintf("the schedule ended after %d attempts", st.AttemptCount)}
	case trigger == TriggerAuto && st.NextAttemptAt != nil && now.Before(*st.NextAttemptAt):
		return Verdict{Action: ActionWait, Wait: st.NextAttemptAt.Sub(now)}
	case trigger != TriggerTest && st.PausedUntil != nil && now.Before(*st.PausedUntil):
		return Verdict{Action: ActionHold, Wait: st.PausedUntil.Sub(now),
			Reason: "the receiver asked for a pause until " + st.PausedUntil.UTC().Format(time.RFC3339)}
	}
	return Verdict{Action: ActionSend}
}

// Single reports whether an attempt is the only one of its run: a test, or a person's retry
// of a delivery whose schedule was over or never ran (skipped). Any other attempt that fails
// is followed by the schedule's next one.
func Single(statusBefore, trigger string) bool {
	return trigger == TriggerTest || (trigger == TriggerManual &&
		(statusBefore == StatusFailed || statusBefore == StatusDelivered || statusBefore == StatusSkipped))
}

// Defaults of DisablePolicy.
const (
	DefaultDisableAfter       = 5 * 24 * time.Hour
	DefaultDisableMinFailures = 10
	DefaultFailingAfter       = 5
)

// DisablePolicy says when surveyhooks turns a failing webhook off by itself.
type DisablePolicy struct {
	// After is how long every attempt must have failed; 0 never disables for failures.
	After time.Duration
	// MinFailures is how many failed attempts that streak must hold at least, so that a
	// webhook that hears one event a week is not disabled by its first failure.
	MinFailures int
	// FailingAfter is the streak of failed attempts at which a webhook.failing notice warns
	// that the webhook is failing; 0 sends none.
	FailingAfter int
}

// Failing reports whether a streak that went from before to now failed attempts crosses
// p.FailingAfter: the webhook.failing notice goes once per streak.
func (p DisablePolicy) Failing(before, now int) bool {
	return p.FailingAfter > 0 && before < p.FailingAfter && now >= p.FailingAfter
}

// DisableReason is the one rule for "does this attempt turn its webhook off?", applied as
// each attempt is recorded: a 410 Gone answer turns it off at once (the receiver says it is
// gone for good, as the Standard Webhooks specification asks); a streak of failed attempts
// does when it has lasted p.After and holds p.MinFailures attempts. It returns the reason
// shown with the disabled webhook, or "" to leave it on. failingSince is nil when the
// streak is empty.
func (p DisablePolicy) DisableReason(statusCode, consecutiveFailures int, failingSince *time.Time, now time.Time) string {
	switch {
	case statusCode == http.StatusGone:
		return "the receiver answered 410 Gone"
	case p.After > 0 && failingSince != nil && consecutiveFailures >= p.MinFailures && now.Sub(*failingSince) >= p.After:
		return fmt.Sprintf("every attempt failed for %s (%d attempts since %s)",
			now.Sub(*failingSince).Round(time.Second), consecutiveFailures, failingSince.UTC().Format(time.RFC3339))
	}
	return ""
}

// Bounds of the pause a receiver asks for.
const (
	// DefaultPause is how long a 429 without Retry-After pauses its webhook.
	DefaultPause = 5 * time.Second
	// MaxPause caps the pause a Retry-After asks for, so that a receiver's mistake (a
	// Retry-After of days) cannot stop a webhook for longer than the schedule's own waits.
	MaxPause = time.Hour
)

// PauseFor is the one rule for "does this answer pause the webhook, and for how long?": a
// 429 Too Many Requests pauses it for its Retry-After (DefaultPause without one), a 503
// Service Unavailable with a Retry-After for that time, at most MaxPause. Every delivery of
// the webhook then waits (ActionHold) without the wait costing an attempt; the attempt that
// was answered so is recorded as a failed one and retried on the schedule, no sooner than
// the Retry-After. 0 means no pause.
func PauseFor(statusCode int, retryAfter time.Duration) time.Duration {
	switch {
	case statusCode == http.StatusTooManyRequests && retryAfter <= 0:
		return DefaultPause
	case statusCode == http.StatusTooManyRequests, statusCode == http.StatusServiceUnavailable && retryAfter > 0:
		return min(retryAfter, MaxPause)
	}
	return 0
}
