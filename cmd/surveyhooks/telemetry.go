package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/surveyhooks/surveyhooks/telemetry"
)

// telemetryShutdownTimeout bounds the flush of the last spans on the way out.
const telemetryShutdownTimeout = 5 * time.Second

// startTelemetry sets up traces and metrics (telemetry.New) and installs them as the
// process's OpenTelemetry defaults, which every piece wired here uses: call it before
// building them. metrics serves GET /metrics; stop flushes what is left, call it last.
func startTelemetry(ctx context.Context, cfg config, logger *slog.Logger) (metrics http.Handler, stop func(), err error) {
	tel, err := telemetry.New(ctx, telemetry.Options{ExportTraces: cfg.ExportTraces})
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry (OTEL_* variables): %w", err)
	}
	tel.Install(logger)
	if cfg.ExportTraces {
		logger.Info("exporting traces over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT)")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.MetricsHandler())
	return mux, func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetryShutdownTimeout)
		defer cancel()
		if err := tel.Shutdown(stopCtx); err != nil {
			logger.Warn("stop telemetry", "err", err)
		}
	}, nil
}

// temporalTelemetry returns the Temporal client's tracing interceptor, which carries the
// trace from the API's workflow start into the workflow and its activities (and on to
// other workers), and its metrics handler, which exports the SDK's metrics (temporal_*).
func temporalTelemetry(logger *slog.Logger) ([]interceptor.ClientInterceptor, client.MetricsHandler, error) {
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer: otel.GetTracerProvider().Tracer(telemetry.TemporalMeterName),
		// The default propagator, W3C trace context and baggage, whatever is installed.
	})
	if err != nil {
		return nil, nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	metrics := temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: otel.GetMeterProvider().Meter(telemetry.TemporalMeterName),
		// The default panics: a metric must never take a worker down.
		OnError:              func(err error) { logger.Warn("temporal SDK metric", "err", err) },
		UseMonotonicCounters: true,
	})
	return []interceptor.ClientInterceptor{tracing}, metrics, nil
}

// receiverPropagator is what deliveries write into their requests: the W3C traceparent
// when SURVEYHOOKS_TRACE_RECEIVERS is on (never baggage: it is ours), nothing otherwise.
func receiverPropagator(cfg config) propagation.TextMapPropagator {
	if cfg.TraceReceivers {
		return propagation.TraceContext{}
	}
	return nil
}
