package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestLoadConfigTelemetry(t *testing.T) {
	t.Parallel()
	cfg, err := loadConfig(mapLookup(nil))
	require.NoError(t, err)
	require.False(t, cfg.TraceReceivers, "receivers get no traceparent by default")
	require.False(t, cfg.ExportTraces, "no OTLP endpoint, no export")
	require.Nil(t, receiverPropagator(cfg))

	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		cfg, err := loadConfig(mapLookup(map[string]string{name: "http://collector:4318"}))
		require.NoError(t, err)
		require.True(t, cfg.ExportTraces, name)
		cfg, err = loadConfig(mapLookup(map[string]string{name: "  "}))
		require.NoError(t, err)
		require.False(t, cfg.ExportTraces, "a blank %s is unset", name)
	}

	cfg, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_TRACE_RECEIVERS": "true"}))
	require.NoError(t, err)
	require.True(t, cfg.TraceReceivers)
	header := http.Header{}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	})
	member, err := baggage.NewMember("tenant", "internal-1")
	require.NoError(t, err)
	bag, err := baggage.New(member)
	require.NoError(t, err)
	ctx := baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(), sc), bag)
	receiverPropagator(cfg).Inject(ctx, propagation.HeaderCarrier(header))
	require.Equal(t, "00-01000000000000000000000000000000-0200000000000000-01", header.Get("traceparent"))
	require.Empty(t, header.Get("baggage"), "baggage stays ours")

	_, err = loadConfig(mapLookup(map[string]string{"SURVEYHOOKS_TRACE_RECEIVERS": "sometimes"}))
	require.ErrorContains(t, err, "SURVEYHOOKS_TRACE_RECEIVERS=")
}
