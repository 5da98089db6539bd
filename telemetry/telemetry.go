// Package telemetry sets up OpenTelemetry for surveyhooks: a tracer provider that exports
// over OTLP/HTTP when the standard OTEL_EXPORTER_OTLP_* variables ask for it, W3C trace
// context and baggage propagation, and a meter provider read by the Prometheus exporter on
// a registry of its own, served by MetricsHandler.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// DefaultServiceName is the service.name of spans and metrics unless OTEL_SERVICE_NAME
// says otherwise.
const DefaultServiceName = "surveyhooks"

// TemporalMeterName is the meter that Temporal SDK metrics should be recorded with: its
// timers get buckets in seconds (5 ms to 60 s) instead of OpenTelemetry's default ones,
// which are meant for milliseconds.
const TemporalMeterName = "temporal-sdk-go"

// secondsBuckets are histogram bucket boundaries, in seconds, for durations from a few
// milliseconds (a local call) to a minute (a slow receiver or a long poll).
var secondsBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Options configure New.
type Options struct {
	// ServiceName is the default service.name (DefaultServiceName when empty);
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
	ServiceName string
	// ServiceVersion, when set, is the service.version.
	ServiceVersion string
	// ExportTraces sends spans over OTLP/HTTP, configured by the standard variables
	// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, _HEADERS, ...).
	// cmd/ sets it when one of the endpoint variables is set: without it spans are still
	// made, so that logs carry trace ids, but go nowhere.
	ExportTraces bool
	// SpanExporter, when set, also receives every span as it ends, synchronously (tests
	// pass tracetest.NewInMemoryExporter()).
	SpanExporter sdktrace.SpanExporter
}

// Telemetry holds the process's tracer and meter providers. Create it once, at start.
type Telemetry struct {
	tracerProvider *sdktrace.TracerProvider
	meterProvider  *sdkmetric.MeterProvider
	propagator     propagation.TextMapPropagator
	registry       *prometheus.Registry
}

// New builds the providers. Spans go to the OTLP exporter when opts.ExportTraces and to
// opts.SpanExporter when set; metrics to a Prometheus registry of their own (with the Go
// runtime and process collectors), which MetricsHandler serves.
func New(ctx context.Context, opts Options) (*Telemetry, error) {
	name := opts.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []resource.Option{resource.WithAttributes(semconv.ServiceName(name))}
	if opts.ServiceVersion != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(opts.ServiceVersion)))
	}
	// Later options win: the environment overrides our defaults.
	attrs = append(attrs, resource.WithTelemetrySDK(), resource.WithFromEnv())
	res, err := resource.New(ctx, attrs...)
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	traceOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if opts.ExportTraces {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter: %w", err)
		}
		traceOpts = append(traceOpts, sdktrace.WithBatcher(exp))
	}
	if opts.SpanExporter != nil {
		traceOpts = append(traceOpts, sdktrace.WithSyncer(opts.SpanExporter))
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reader, err := otelprom.New(
		otelprom.WithRegisterer(registry),
		// Scope labels on every series would only repeat which library made it.
		otelprom.WithoutScopeInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	temporalTimers := sdkmetric.NewView(
		sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Scope: instrumentation.Scope{Name: TemporalMeterName}},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: secondsBuckets}},
	)

	return &Telemetry{
		tracerProvider: sdktrace.NewTracerProvider(traceOpts...),
		meterProvider: sdkmetric.NewMeterProvider(
			sdkmetric.WithResource(res),
			sdkmetric.WithReader(reader),
			sdkmetric.WithView(temporalTimers),
		),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		registry:   registry,
	}, nil
}

// TracerProvider returns the provider of every span of the process.
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	return t.tracerProvider
}

// MeterProvider returns the provider of every metric of the process.
func (t *Telemetry) MeterProvider() metric.MeterProvider {
	return t.meterProvider
}

// Propagator reads and writes W3C trace context and baggage: between the API's callers,
// the API and Temporal (the interceptor's headers).
func (t *Telemetry) Propagator() propagation.TextMapPropagator {
	return t.propagator
}

// MetricsHandler serves the metrics in the Prometheus text format (GET /metrics).
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// Install makes t the process-wide default of the OpenTelemetry API (otel.GetTracerProvider,
// GetMeterProvider, GetTextMapPropagator), which the instrumented packages use unless given
// providers, and sends OpenTelemetry's own errors (an unreachable collector, say) to logger.
func (t *Telemetry) Install(logger *slog.Logger) {
	otel.SetTracerProvider(t.tracerProvider)
	otel.SetMeterProvider(t.meterProvider)
	otel.SetTextMapPropagator(t.propagator)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "err", err)
	}))
}

// Shutdown flushes the spans not exported yet and stops the providers; ctx bounds the wait.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if err := t.tracerProvider.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down tracer provider: %w", err))
	}
	if err := t.meterProvider.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shut down meter provider: %w", err))
	}
	return errors.Join(errs...)
}
