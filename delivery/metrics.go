package delivery

import (
	"context"
	"errors"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope of the service's metrics.
const MeterName = "github.com/surveyhooks/surveyhooks/delivery"

// metrics are the service's instruments, counted where each outcome is decided:
//
//	surveyhooks_events_received_total{dispatch}  new events: dispatch="started" (201) or "queued" (202)
//	surveyhooks_events_deduplicated_total        publishes of an event_id already stored (200)
type metrics struct {
	received, deduplicated metric.Int64Counter
	started, queued        metric.MeasurementOption
}

// newMetrics makes the instruments. A failure is logged, not returned: metrics must never
// keep events from being published (a failed instrument records nothing).
func newMetrics(mp metric.MeterProvider, logger *slog.Logger) metrics {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(MeterName)
	var m metrics
	var err1, err2 error
	m.received, err1 = meter.Int64Counter("surveyhooks_events_received",
		metric.WithDescription("Events stored by POST /api/events, by whether their workflow started at once (started) or waits in the outbox (queued)."),
		metric.WithUnit("{event}"))
	m.deduplicated, err2 = meter.Int64Counter("surveyhooks_events_deduplicated",
		metric.WithDescription("Publishes of an event_id already stored: answered 200, nothing new delivered."),
		metric.WithUnit("{event}"))
	if err := errors.Join(err1, err2); err != nil {
		logger.Warn("delivery service metrics are incomplete", "err", err)
	}
	m.started = metric.WithAttributeSet(attribute.NewSet(attribute.String("dispatch", "started")))
	m.queued = metric.WithAttributeSet(attribute.NewSet(attribute.String("dispatch", "queued")))
	return m
}

// published counts a publish by its outcome.
func (m metrics) published(ctx context.Context, p Published) {
	switch {
	case !p.Created:
		m.deduplicated.Add(ctx, 1)
	case p.Dispatched:
		m.received.Add(ctx, 1, m.started)
	default:
		m.received.Add(ctx, 1, m.queued)
	}
}
