package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/surveyhooks/surveyhooks/delivery"
)

// MeterName is the instrumentation scope of the delivery metrics.
const MeterName = "github.com/surveyhooks/surveyhooks/activities"

// Status classes of attempts: the response's class, or why there was none.
const (
	statusClassTimeout = "timeout"
	statusClassError   = "error" // connection refused or reset, DNS, a blocked address
)

// latencyBuckets reach from a prompt delivery to the end of the default schedule (about
// 7.3 hours after the event).
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600, 28800}

// attemptBuckets cover one attempt, up to the default 30 s timeout.
var attemptBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}

// statusClasses are the status_class values; index statusClassIndex.
var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", statusClassTimeout, statusClassError}

// Metrics are the delivery instruments, made once by NewMetrics and given to New with
// WithMetrics. In Prometheus (see docs/observability.md):
//
//	surveyhooks_deliveries_total{outcome, event_type}               deliveries that ended: delivered or failed
//	surveyhooks_delivery_attempts_total{status_class}               POSTs: 2xx..5xx, timeout, error
//	surveyhooks_delivery_attempt_duration_seconds{status_class}     one POST, connect to last response byte
//	surveyhooks_delivery_latency_seconds{event_type}                event received by the API -> delivered
//	surveyhooks_webhooks_disabled_total{cause}                      webhooks turned off by delivery.DisablePolicy: gone (410), failing
//	surveyhooks_webhooks_failing_total                              failure streaks that reached DisablePolicy.FailingAfter
//	surveyhooks_delivery_attempts_held_total{reason}                attempts held, not sent: pause, rate_limit, endpoint_busy
//
// A nil *Metrics records nothing.
type Metrics struct {
	deliveries      metric.Int64Counter
	attempts        metric.Int64Counter
	attemptDuration metric.Float64Histogram
	latency         metric.Float64Histogram
	disabled        metric.Int64Counter
	failing         metric.Int64Counter
	heldCounter     metric.Int64Counter

	// classOpts are the attribute sets of statusClasses, made once: recording an attempt
	// allocates no attribute set.
	classOpts [len(statusClasses)]metric.MeasurementOption
	// byType caches the attribute sets of each event type (a short, known list).
	byType sync.Map // event type -> *typeOpts
}

// typeOpts are the attribute sets of one event type.
type typeOpts struct {
	delivered, failed, latency metric.MeasurementOption
}

// NewMetrics makes the delivery instruments with mp. An error names the instruments that
// could not be made; the returned Metrics are usable all the same (such instruments
// record nothing).
func NewMetrics(mp metric.MeterProvider) (*Metrics, error) {
	meter := mp.Meter(MeterName)
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	m := &Metrics{}
	var err error
	m.deliveries, err = meter.Int64Counter("surveyhooks_deliveries",
		metric.WithDescription("Deliveries that ended, by outcome (delivered, failed) and event type."),
		metric.WithUnit("{delivery}"))
	check(err)
	m.attempts, err = meter.Int64Counter("surveyhooks_delivery_attempts",
		metric.WithDescription("Delivery attempts (POSTs), by status class: 2xx..5xx, timeout, error (no response)."),
		metric.WithUnit("{attempt}"))
	check(err)
	m.attemptDuration, err = meter.Float64Histogram("surveyhooks_delivery_attempt_duration_seconds",
		metric.WithDescription("Duration of one delivery attempt, by status class."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(attemptBuckets...))
	check(err)
	m.latency, err = meter.Float64Histogram("surveyhooks_delivery_latency_seconds",
		metric.WithDescription("Time from the event's receipt by the API to its delivery, retries included, by event type."),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(latencyBuckets...))
	check(err)
	m.disabled, err = meter.Int64Counter("surveyhooks_webhooks_disabled",
		metric.WithDescription("Webhooks surveyhooks turned off by itself, by cause: gone (the receiver answered 410), failing (every attempt failed for SURVEYHOOKS_DISABLE_AFTER)."),
		metric.WithUnit("{webhook}"))
	check(err)
	m.failing, err = meter.Int64Counter("surveyhooks_webhooks_failing",
		metric.WithDescription("Webhooks whose failed attempts in a row reached SURVEYHOOKS_FAILING_AFTER, once per streak (a webhook.failing notice)."),
		metric.WithUnit("{webhook}"))
	check(err)
	m.heldCounter, err = meter.Int64Counter("surveyhooks_delivery_attempts_held",
		metric.WithDescription("Attempts held back without being sent, by reason: pause (the receiver asked for one), rate_limit (the webhook's), endpoint_busy (this worker's attempts in flight to the endpoint)."),
		metric.WithUnit("{attempt}"))
	check(err)
	for i, class := range statusClasses {
		m.classOpts[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("status_class", class)))
	}
	if err := errors.Join(errs...); err != nil {
		return m, fmt.Errorf("delivery metrics: %w", err)
	}
	return m, nil
}

// attempt records one POST.
func (m *Metrics) attempt(ctx context.Context, s *sentAttempt) {
	if m == nil {
		return
	}
	opt := m.classOpts[statusClassIndex(s)]
	m.attempts.Add(ctx, 1, opt)
	m.attemptDuration.Record(ctx, s.attempt.DurationMS/1000, opt)
}

// webhookDisabled records a webhook turned off; gone says the receiver answered 410.
func (m *Metrics) webhookDisabled(ctx context.Context, gone bool) {
	if m == nil {
		return
	}
	cause := "failing"
	if gone {
		cause = "gone"
	}
	m.disabled.Add(ctx, 1, metric.WithAttributes(attribute.String("cause", cause)))
}

// Reasons of held attempts (the reason label).
const (
	heldPause     = "pause"
	heldRateLimit = "rate_limit"
	heldBusy      = "endpoint_busy"
)

// held records an attempt held back for reason.
func (m *Metrics) held(ctx context.Context, reason string) {
	if m == nil {
		return
	}
	m.heldCounter.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
}

// webhookFailing records a failure streak that reached the warning threshold.
func (m *Metrics) webhookFailing(ctx context.Context) {
	if m == nil {
		return
	}
	m.failing.Add(ctx, 1)
}

// ended records a delivery that reached status (delivered or failed); body is the event
// as sent, whose timestamp is when the API received it (nil skips the latency).
func (m *Metrics) ended(ctx context.Context, eventType, status string, body []byte, now time.Time) {
	if m == nil {
		return
	}
	opts := m.typeOpts(eventType)
	switch status {
	case delivery.StatusDelivered:
		m.deliveries.Add(ctx, 1, opts.delivered)
		if receivedAt := eventTimestamp(body); !receivedAt.IsZero() {
			m.latency.Record(ctx, max(now.Sub(receivedAt), 0).Seconds(), opts.latency)
		}
	case delivery.StatusFailed:
		m.deliveries.Add(ctx, 1, opts.failed)
	}
}

// eventTimestamp reads the timestamp of an event body: the API sets it when it receives
// the event, and every attempt sends the same bytes. Zero when absent.
func eventTimestamp(body []byte) time.Time {
	if len(body) == 0 {
		return time.Time{}
	}
	var ev struct {
		Timestamp time.Time `json:"timestamp"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return time.Time{}
	}
	return ev.Timestamp
}

func (m *Metrics) typeOpts(eventType string) *typeOpts {
	if v, ok := m.byType.Load(eventType); ok {
		return v.(*typeOpts)
	}
	typ := attribute.String("event_type", eventType)
	v, _ := m.byType.LoadOrStore(eventType, &typeOpts{
		delivered: metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", delivery.StatusDelivered), typ)),
		failed:    metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", delivery.StatusFailed), typ)),
		latency:   metric.WithAttributeSet(attribute.NewSet(typ)),
	})
	return v.(*typeOpts)
}

// statusClassIndex classifies an attempt for statusClasses.
func statusClassIndex(s *sentAttempt) int {
	switch {
	case s.statusCode >= 100 && s.statusCode < 600:
		return s.statusCode/100 - 1
	case s.timedOut:
		return 5
	default:
		return 6
	}
}
