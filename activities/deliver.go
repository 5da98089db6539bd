package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

// Error types of Deliver's failures, as workflows and the Temporal UI see them.
const (
	// ErrTypeAttemptFailed: the attempt failed and the schedule retries it.
	ErrTypeAttemptFailed = "DeliveryAttemptFailed"
	// ErrTypeNotDue: the schedule's next attempt is not due yet; nothing was sent.
	ErrTypeNotDue = "DeliveryAttemptNotDue"
	// ErrTypeDeliveryFailed: the delivery failed for good (refused, or no attempt left).
	ErrTypeDeliveryFailed = "DeliveryFailed"
)

// DeliverInput names a delivery and what asks for this attempt.
type DeliverInput struct {
	DeliveryID uuid.UUID
	// Trigger is recorded with the attempt: auto (the schedule), manual or test.
	Trigger string
	// Force attempts a delivery that was already delivered.
	Force bool
	// Held counts the times the workflow held this attempt before (ErrTypeHeld), so that
	// the wait for a busy endpoint grows with each.
	Held int
}

// DeliverResult is how a delivery ended without a failure.
type DeliverResult struct {
	// Status is the delivery's status: delivered, or failed when it was not attempted.
	Status string
	// Attempts is the delivery's attempt count.
	Attempts int
	// StatusCode is the last response status, 0 when none.
	StatusCode int
	// Skipped says why no attempt was made, if none was.
	Skipped string
}

// Deliver makes one attempt of a delivery, if the rule for sending (delivery.Decide) allows
// it now and its endpoint can take it (admit: this worker's attempts in flight to it, the
// webhook's rate limit): it signs the event's body with the webhook's secrets, POSTs it,
// records the attempt and the delivery's new state, and tells Temporal what comes next. The
// schedule is read from the recorded attempt count, so a try that never reached the
// receiver or was never recorded costs no attempt. A retryable failure returns an error
// carrying the delay until the schedule's next attempt; an attempt that is not due yet
// returns the rest of that delay without sending, and one held (ErrTypeHeld) the time to
// try again; a final one returns a non-retryable error; success a result.
func (a *Activities) Deliver(ctx context.Context, in DeliverInput) (DeliverResult, error) {
	defer keepAlive(ctx)()
	target, err := a.store.GetTarget(ctx, in.DeliveryID)
	if errors.Is(err, store.ErrNotFound) {
		// The webhook was deleted, and its deliveries with it: nothing to send to.
		return DeliverResult{Status: delivery.StatusFailed, Skipped: "the webhook was deleted"}, nil
	}
	if err != nil {
		return DeliverResult{}, fmt.Errorf("load delivery: %w", err)
	}
	verdict := delivery.Decide(delivery.StateOf(target), in.Trigger, in.Force, a.now())
	switch verdict.Action {
	case delivery.ActionSkip:
		return DeliverResult{Status: target.Status, Attempts: target.AttemptCount, Skipped: verdict.Reason}, nil
	case delivery.ActionEnd:
		return DeliverResult{}, deliveryFailed(verdict.Reason)
	case delivery.ActionRefuse:
		if err := a.store.FailDelivery(ctx, in.DeliveryID, verdict.Reason); err != nil {
			return DeliverResult{}, err
		}
		a.metrics.ended(ctx, target.EventType, delivery.StatusFailed, nil, a.now())
		return DeliverResult{Status: delivery.StatusFailed, Attempts: target.AttemptCount, Skipped: verdict.Reason}, nil
	case delivery.ActionWait:
		return DeliverResult{}, temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("attempt %d of %d is due in %s", target.AttemptCount+1, a.cfg.Schedule.MaxAttempts(), verdict.Wait.Round(time.Second)),
			ErrTypeNotDue, expected(temporal.ApplicationErrorOptions{NextRetryDelay: max(verdict.Wait, time.Millisecond)}))
	case delivery.ActionHold:
		a.metrics.held(ctx, heldPause)
		return DeliverResult{}, heldError(verdict.Reason, jitter(verdict.Wait), false)
	}
	done, err := a.admit(ctx, target, heldTimes(ctx, in))
	if err != nil {
		return DeliverResult{}, err
	}

	sent := a.send(ctx, target)
	done(sent.timedOut)
	a.pause(ctx, target.Webhook, sent)
	sent.attempt.Trigger = in.Trigger
	a.metrics.attempt(ctx, &sent)
	single := delivery.Single(target.Status, in.Trigger)
	number, outcome, streak, err := a.recorder.record(ctx, sent.attempt, target.AttemptCount, func(number int) store.Outcome {
		return a.decide(number, single, sent)
	})
	if errors.Is(err, store.ErrNotFound) {
		return DeliverResult{Status: delivery.StatusFailed, Skipped: "the webhook was deleted"}, nil
	}
	if err != nil {
		// The POST happened but its record did not: retrying sends again (at least once).
		return DeliverResult{}, fmt.Errorf("record attempt: %w", err)
	}
	if a.cfg.Disable.Failing(streak.FailuresBefore, streak.ConsecutiveFailures) && streak.FailingSince != nil {
		a.warnFailing(ctx, target.Webhook, streak, sent.attempt.Error)
	}
	if reason := a.cfg.Disable.DisableReason(sent.statusCode, streak.ConsecutiveFailures, streak.FailingSince, a.now()); reason != "" {
		a.disable(ctx, target.Webhook, reason, sent.statusCode == http.StatusGone)
	}
	if outcome.Status == delivery.StatusFailed && in.Trigger != delivery.TriggerTest {
		a.exhausted(ctx, target, number, outcome.LastStatusCode, outcome.LastError)
	}
	a.logger.InfoContext(ctx, "delivery attempt",
		"delivery_id", in.DeliveryID, "event_id", target.EventID, "webhook_id", target.Webhook.ID,
		"attempt", number, "trigger", in.Trigger, "status_code", sent.statusCode,
		"duration_ms", sent.attempt.DurationMS, "outcome", outcome.Status, "error", sent.attempt.Error)
	a.metrics.ended(ctx, target.EventType, outcome.Status, target.Body, a.now())

	switch outcome.Status {
	case delivery.StatusDelivered:
		return DeliverResult{Status: outcome.Status, Attempts: number, StatusCode: sent.statusCode}, nil
	case delivery.StatusRetrying:
		delay := outcome.NextAttemptAt.Sub(a.now())
		return DeliverResult{}, temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("attempt %d: %s; next attempt in %s", number, outcome.LastError, delay.Round(time.Second)),
			ErrTypeAttemptFailed,
			expected(temporal.ApplicationErrorOptions{NextRetryDelay: max(delay, time.Millisecond)}))
	default:
		return DeliverResult{}, deliveryFailed(fmt.Sprintf("attempt %d: %s; delivery failed", number, outcome.LastError))
	}
}

// disable turns the webhook off for reason, with the webhook.disabled notices in the same
// transaction. The attempt is recorded whatever happens here: when the webhook cannot be
// turned off now, its next failed attempt tries again.
func (a *Activities) disable(ctx context.Context, hook store.Webhook, reason string, gone bool) {
	at := a.now()
	notices, err := a.notices(hook, eventtype.WebhookDisabled, fmt.Sprintf("disabled-%d", at.UnixMilli()), at,
		map[string]any{"disabledAt": at.UTC().Truncate(time.Millisecond), "reason": reason})
	if err != nil {
		a.logger.ErrorContext(ctx, "could not build the webhook.disabled notice", "webhook_id", hook.ID, "error", err)
		return
	}
	done, err := a.store.DisableWebhook(ctx, hook.ID, reason, notices...)
	switch {
	case err != nil:
		a.logger.ErrorContext(ctx, "could not disable a failing webhook", "webhook_id", hook.ID, "reason", reason, "error", err)
	case done:
		a.logger.WarnContext(ctx, "webhook disabled", "webhook_id", hook.ID, "reason", reason)
		a.metrics.webhookDisabled(ctx, gone)
	}
}

// warnFailing publishes the webhook.failing notices of a streak that reached the policy's
// threshold. Their ids name the streak, so that attempts recorded together, which all see
// the threshold crossed, publish them once.
func (a *Activities) warnFailing(ctx context.Context, hook store.Webhook, streak store.Streak, lastError string) {
	a.metrics.webhookFailing(ctx)
	at := a.now()
	notices, err := a.notices(hook, eventtype.WebhookFailing, fmt.Sprintf("failing-%d", streak.FailingSince.UnixMilli()), at,
		map[string]any{"consecutiveFailures": streak.ConsecutiveFailures,
			"failingSince": streak.FailingSince.UTC().Truncate(time.Millisecond), "lastError": lastError})
	if err == nil {
		for _, ev := range notices {
			if _, err = a.store.PublishEvent(ctx, ev); err != nil {
				break
			}
		}
	}
	if err != nil {
		a.logger.ErrorContext(ctx, "could not publish the webhook.failing notice", "webhook_id", hook.ID, "error", err)
		return
	}
	a.logger.WarnContext(ctx, "webhook failing", "webhook_id", hook.ID, "consecutive_failures", streak.ConsecutiveFailures)
}

// exhausted publishes the delivery.exhausted notices of a delivery that ended failed after
// attempts, when a webhook asks for them: a failing endpoint ends many deliveries, and
// notices nobody asked for are not stored.
func (a *Activities) exhausted(ctx context.Context, t store.Target, attempts int, statusCode *int, lastError string) {
	wanted, err := a.store.NoticeWanted(ctx, a.noticeAccounts(t.Webhook), eventtype.DeliveryExhausted)
	if err == nil && wanted {
		var notices []store.Event
		at := a.now()
		notices, err = a.notices(t.Webhook, eventtype.DeliveryExhausted, fmt.Sprintf("exhausted-%s-%d", t.DeliveryID, attempts), at,
			map[string]any{"delivery": map[string]any{"id": t.DeliveryID, "eventId": t.EventID, "eventType": t.EventType,
				"attempts": attempts, "lastStatusCode": statusCode, "lastError": lastError}})
		for _, ev := range notices {
			if err != nil {
				break
			}
			_, err = a.store.PublishEvent(ctx, ev)
		}
	}
	if err != nil {
		a.logger.ErrorContext(ctx, "could not publish the delivery.exhausted notice", "delivery_id", t.DeliveryID, "error", err)
	}
}

// noticeAccounts are the accounts that get the notices about hook: its own and, when set,
// the operator's (NoticeAccount).
func (a *Activities) noticeAccounts(hook store.Webhook) []string {
	accounts := []string{hook.AccountID}
	if a.cfg.NoticeAccount != "" && a.cfg.NoticeAccount != hook.AccountID {
		accounts = append(accounts, a.cfg.NoticeAccount)
	}
	return accounts
}

// notices are the events of a notice about hook: one in its account and, when set, one in
// the operator's (NoticeAccount), each with the webhook and fields as data, and an id made
// of the webhook's, key and the account. They have no survey, so they go to the account's
// webhooks that are not of one survey and subscribe to them; the outbox of the API
// processes starts them, so they are signed, retried and logged like any event.
func (a *Activities) notices(hook store.Webhook, eventType, key string, at time.Time, fields map[string]any) ([]store.Event, error) {
	fields["webhook"] = map[string]any{"id": hook.ID, "accountId": hook.AccountID, "surveyId": hook.SurveyID,
		"name": hook.Name, "url": hook.URL}
	data, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	var notices []store.Event
	for _, account := range a.noticeAccounts(hook) {
		id := fmt.Sprintf("notice-%s-%s-%s", hook.ID, key, account)
		body, err := delivery.Envelope(id, eventType, at, data)
		if err != nil {
			return nil, err
		}
		notices = append(notices, store.Event{ID: id, AccountID: account, EventType: eventType, Body: body})
	}
	return notices, nil
}

// keepAlive heartbeats until the returned function is called, so that Temporal notices a
// dead worker within delivery.HeartbeatTimeout, whatever the attempt waits on. A local
// activity (a run's first attempt) has no heartbeat: its workflow task's timeout covers it.
func keepAlive(ctx context.Context) func() {
	if activity.GetInfo(ctx).IsLocalActivity {
		return func() {}
	}
	activity.RecordHeartbeat(ctx)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(delivery.HeartbeatTimeout / 4)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// expected marks Deliver's own answers (an attempt failed at the receiver, the next one is
// not due, the delivery failed for good) as benign: the SDK logs them at debug level and
// leaves them out of its failure metrics. They are the delivery log's business, recorded
// with each attempt; an error Deliver did not decide (the database down) stays an error.
func expected(opts temporal.ApplicationErrorOptions) temporal.ApplicationErrorOptions {
	opts.Category = temporal.ApplicationErrorCategoryBenign
	return opts
}

// deliveryFailed ends the delivery's schedule.
func deliveryFailed(msg string) error {
	return temporal.NewApplicationErrorWithOptions(msg, ErrTypeDeliveryFailed, expected(temporal.ApplicationErrorOptions{NonRetryable: true}))
}

// sentAttempt is one POST as sent and as answered, before it is numbered.
type sentAttempt struct {
	attempt    store.Attempt
	statusCode int
	retryAfter time.Duration
	// permanent failures are not retried: 4xx other than 408/429, redirects, refused addresses.
	permanent bool
	// timedOut says the attempt got no response within the attempt timeout.
	timedOut bool
}

// send POSTs the event once. s is a named result so that the deferred duration lands in
// what is returned.
func (a *Activities) send(ctx context.Context, t store.Target) (s sentAttempt) {
	started := a.now()
	ctx, span := a.startSendSpan(ctx, t)
	// Deferred first, so it runs last: the span sees the final s, duration included.
	defer func() { endSendSpan(span, &s) }()
	keys, keyErr := signingKeys(t.Webhook, started)
	headers := a.cfg.Signature.Headers(keys, t.DeliveryID.String(), started, t.Body)
	headers.Set("Content-Type", "application/json")
	headers.Set("User-Agent", UserAgent)
	headers.Set(signature.HeaderEvent, t.EventType)
	headers.Set(signature.HeaderDelivery, t.DeliveryID.String())
	if a.receivers != nil {
		// Before the headers are logged: the delivery log shows the traceparent sent.
		a.receivers.Inject(ctx, propagation.HeaderCarrier(headers))
	}

	s = sentAttempt{attempt: store.Attempt{
		DeliveryID:     t.DeliveryID,
		StartedAt:      started,
		RequestURL:     t.Webhook.URL,
		RequestHeaders: headersJSON(headers),
		RequestBody:    a.loggable(t.Body),
	}}
	if keyErr != nil {
		// Only a damaged row gets here: nothing unsigned is sent, and retrying cannot help.
		s.attempt.Error, s.permanent = "the webhook's signing key cannot be read; rotate it (POST .../secret/rotate)", true
		return s
	}
	attemptCtx, cancel := context.WithTimeout(ctx, a.cfg.Schedule.AttemptTimeout)
	defer cancel()
	clock := time.Now() // duration by the monotonic clock, whatever a.now is
	defer func() { s.attempt.DurationMS = float64(time.Since(clock).Microseconds()) / 1000 }()

	req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, t.Webhook.URL, bytes.NewReader(t.Body))
	if err != nil {
		s.attempt.Error, s.permanent = fmt.Sprintf("invalid webhook URL: %v", err), true
		return s
	}
	req.Header = headers
	resp, err := a.client.Do(req)
	if err != nil {
		s.attempt.Error, s.permanent = describeSendError(err, a.cfg.Schedule.AttemptTimeout)
		s.timedOut = errors.Is(err, context.DeadlineExceeded)
		return s
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(a.cfg.MaxLoggedBody)+1))
	// Drain a little more so the connection can be reused; give up on huge bodies.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))

	status := resp.StatusCode
	s.statusCode = status
	s.attempt.ResponseStatus = &status
	s.attempt.ResponseHeaders = a.loggableHeaders(resp.Header)
	s.attempt.ResponseBody = a.loggable(body)
	switch {
	case status >= 200 && status < 300:
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			// The receiver said 2xx; a broken body does not undo that.
			s.attempt.Error = fmt.Sprintf("reading the response body: %v", readErr)
		}
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		s.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), a.now())
		s.attempt.Error = fmt.Sprintf("receiver answered %d %s", status, http.StatusText(status))
	case status >= 300 && status < 400:
		s.permanent = true
		s.attempt.Error = fmt.Sprintf("receiver answered %d %s; redirects are not followed (Location: %s)",
			status, http.StatusText(status), resp.Header.Get("Location"))
	default:
		s.permanent = true
		s.attempt.Error = fmt.Sprintf("receiver answered %d %s; not retried", status, http.StatusText(status))
	}
	return s
}

// signingKeys are what signs a request of w sent at now: its secrets, or its ed25519 keys.
func signingKeys(w store.Webhook, now time.Time) (signature.Keys, error) {
	keys := signature.Keys{Secrets: w.SigningSecrets(now)}
	for _, k := range w.SigningKeys(now) {
		private, err := signature.ParseSigningKey(k)
		if err != nil {
			return signature.Keys{}, fmt.Errorf("signing key of webhook %s: %w", w.ID, err)
		}
		keys.SigningKeys = append(keys.SigningKeys, private)
	}
	return keys, nil
}

// decide turns attempt number's result into the delivery's new state.
func (a *Activities) decide(number int, single bool, s sentAttempt) store.Outcome {
	out := store.Outcome{LastError: s.attempt.Error}
	if s.statusCode != 0 {
		code := s.statusCode
		out.LastStatusCode = &code
	}
	if s.statusCode >= 200 && s.statusCode < 300 {
		out.Status = delivery.StatusDelivered
		return out
	}
	delay, more := a.cfg.Schedule.Next(number, s.retryAfter)
	if s.permanent || single || !more {
		out.Status = delivery.StatusFailed
		return out
	}
	next := a.now().Add(delay)
	out.Status, out.NextAttemptAt = delivery.StatusRetrying, &next
	return out
}

// describeSendError explains a failed request in words a person can act on, and says
// whether retrying can help. The words never carry what only this network knows (the
// addresses a host resolved to, the DNS server asked): any key holder reads them.
func describeSendError(err error, timeout time.Duration) (string, bool) {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, netguard.ErrBlockedAddress):
		return "refused: the webhook's host resolves to an address deliveries may not reach " +
			"(loopback, private, link-local or metadata); an operator can allow a range with SURVEYHOOKS_ALLOWED_CIDRS", true
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out after %s", timeout), false
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("the host %s does not exist (DNS)", strings.TrimSuffix(dnsErr.Name, ".")), false
		}
		return fmt.Sprintf("the host %s could not be resolved (DNS)", strings.TrimSuffix(dnsErr.Name, ".")), false
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Sprintf("could not connect to the receiver: %v", syscallCause(opErr.Err)), false
	default:
		return unwrapURLError(err).Error(), false
	}
}

// syscallCause is what a failed dial says without the address dialled, for example
// "connection refused".
func syscallCause(err error) error {
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		return sysErr.Err
	}
	return err
}

// unwrapURLError drops net/http's `Post "url": ` prefix: the URL is recorded on its own.
func unwrapURLError(err error) error {
	var urlErr interface{ Unwrap() error }
	if errors.As(err, &urlErr) {
		if inner := urlErr.Unwrap(); inner != nil && strings.HasPrefix(err.Error(), "Post ") {
			return inner
		}
	}
	return err
}

// loggable truncates a body to the logged cap, as valid UTF-8 without NUL bytes
// (PostgreSQL text refuses both).
func (a *Activities) loggable(body []byte) string {
	truncated := len(body) > a.cfg.MaxLoggedBody
	if truncated {
		body = body[:a.cfg.MaxLoggedBody] // a rune cut in two becomes U+FFFD below
	}
	s := strings.ReplaceAll(strings.ToValidUTF8(string(body), "\uFFFD"), "\x00", "\uFFFD")
	if truncated {
		s += fmt.Sprintf("\n[truncated at %d bytes]", a.cfg.MaxLoggedBody)
	}
	return s
}

// Caps of the response headers logged with each attempt, as bodies have theirs: each value
// is cut at maxLoggedHeaderValue bytes, and headers past maxLoggedHeaders bytes in all are
// left out, which the log says.
const (
	maxLoggedHeaderValue = 1 << 10
	maxLoggedHeaders     = 8 << 10
)

// loggableHeaders is the JSON of the response headers as logged: names in order, values
// truncated, the whole bounded.
func (a *Activities) loggableHeaders(h http.Header) []byte {
	kept := http.Header{}
	size, dropped := 0, 0
	for _, name := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[name] {
			if len(v) > maxLoggedHeaderValue {
				v = strings.ToValidUTF8(v[:maxLoggedHeaderValue], "\uFFFD") + fmt.Sprintf(" [truncated at %d bytes]", maxLoggedHeaderValue)
			}
			if size+len(name)+len(v) > maxLoggedHeaders {
				dropped++
				continue
			}
			size += len(name) + len(v)
			kept[name] = append(kept[name], v)
		}
	}
	if dropped > 0 {
		kept["X-Surveyhooks-Truncated"] = []string{fmt.Sprintf("%d header values left out past %d bytes", dropped, maxLoggedHeaders)}
	}
	return headersJSON(kept)
}

func headersJSON(h http.Header) []byte {
	b, err := json.Marshal(h)
	if err != nil {
		return []byte("{}")
	}
	return b
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
