package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/surveyhooks/surveyhooks/telemetry"
)

// collector is an OTLP/HTTP trace endpoint that keeps the span names it receives.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []string
}

func newCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.spans = append(c.spans, s.Name)
				}
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.spans...)
}

// Not parallel: the exporter reads its endpoint from the environment.
func TestExportTracesSendsSpansToTheOTLPEndpoint(t *testing.T) {
	c := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.URL+"/v1/traces")
	ctx := context.Background()

	tel, err := telemetry.New(ctx, telemetry.Options{ExportTraces: true})
	require.NoError(t, err)
	_, span := tel.TracerProvider().Tracer("test").Start(ctx, "exported span")
	span.End()
	require.NoError(t, tel.Shutdown(ctx)) // flushes the batch
	require.Equal(t, []string{"exported span"}, c.got())
}

// Not parallel: the exporter would read its endpoint from the environment.
func TestNoExportUnlessAsked(t *testing.T) {
	c := newCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c.URL+"/v1/traces")
	ctx := context.Background()

	tel, err := telemetry.New(ctx, telemetry.Options{})
	require.NoError(t, err)
	spanCtx, span := tel.TracerProvider().Tracer("test").Start(ctx, "kept local")
	// Spans are still made (logs get their ids) ...
	require.True(t, span.SpanContext().IsValid())
	require.True(t, span.IsRecording())
	span.End()
	require.NoError(t, tel.Shutdown(spanCtx))
	// ... but none leaves the process.
	require.Empty(t, c.got())
}

func TestSpanExporterGetsEverySpan(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tel, err := telemetry.New(context.Background(), telemetry.Options{SpanExporter: exp})
	require.NoError(t, err)
	_, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "one")
	span.End()
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, "one", spans[0].Name)
	require.Contains(t, spans[0].Resource.String(), "service.name="+telemetry.DefaultServiceName)
}

func TestMetricsHandlerServesPrometheusText(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.New(context.Background(), telemetry.Options{ServiceName: "metrics-test"})
	require.NoError(t, err)
	counter, err := tel.MeterProvider().Meter("test").Int64Counter("test_things")
	require.NoError(t, err)
	counter.Add(context.Background(), 3)
	timer, err := tel.MeterProvider().Meter(telemetry.TemporalMeterName).Float64Histogram("temporal_test_latency")
	require.NoError(t, err)
	timer.Record(context.Background(), 0.02)

	srv := httptest.NewServer(tel.MetricsHandler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	text := string(body)

	require.Contains(t, text, "\ntest_things_total 3\n")
	require.Contains(t, text, `target_info{service_name="metrics-test"`)
	require.Contains(t, text, "\ngo_goroutines ", "Go runtime collector")
	// Temporal's timers are in seconds: their buckets are too.
	require.Contains(t, text, `temporal_test_latency_bucket{le="0.025"} 1`)
	require.Contains(t, text, `temporal_test_latency_bucket{le="0.01"} 0`)
	require.NotContains(t, text, "otel_scope_name")
}

func TestPropagatorCarriesTraceContextAndBaggage(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.New(context.Background(), telemetry.Options{})
	require.NoError(t, err)
	ctx, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "parent")
	defer span.End()
	member, err := baggage.NewMember("tenant", "t1")
	require.NoError(t, err)
	bag, err := baggage.New(member)
	require.NoError(t, err)
	ctx = baggage.ContextWithBaggage(ctx, bag)

	header := http.Header{}
	tel.Propagator().Inject(ctx, propagation.HeaderCarrier(header))
	require.Contains(t, header.Get("traceparent"), span.SpanContext().TraceID().String())
	require.Equal(t, "tenant=t1", header.Get("baggage"))

	out := tel.Propagator().Extract(context.Background(), propagation.HeaderCarrier(header))
	require.Equal(t, "t1", baggage.FromContext(out).Member("tenant").Value())
}

func TestLogHandlerAddsTraceAndSpanIDs(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.New(context.Background(), telemetry.Options{})
	require.NoError(t, err)
	var buf bytes.Buffer
	logger := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")

	ctx, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "request")
	logger.InfoContext(ctx, "inside")
	span.End()
	logger.InfoContext(context.Background(), "outside")
	logger.Info("no context")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	var inside map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &inside))
	require.Equal(t, span.SpanContext().TraceID().String(), inside["trace_id"])
	require.Equal(t, span.SpanContext().SpanID().String(), inside["span_id"])
	require.Equal(t, "test", inside["component"], "WithAttrs keeps the wrapper's attributes")
	for _, line := range lines[1:] {
		require.NotContains(t, line, "trace_id")
		require.NotContains(t, line, "span_id")
	}
}
