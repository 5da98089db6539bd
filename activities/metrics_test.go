package activities

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
)

// collect reads every metric of reader by name.
func collect(t *testing.T, reader sdkmetric.Reader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func sumOf(t *testing.T, data metricdata.Aggregation, kv ...attribute.KeyValue) int64 {
	t.Helper()
	want := attribute.NewSet(kv...)
	for _, dp := range data.(metricdata.Sum[int64]).DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp.Value
		}
	}
	return 0
}

func histogramOf(t *testing.T, data metricdata.Aggregation, kv ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
	t.Helper()
	want := attribute.NewSet(kv...)
	for _, dp := range data.(metricdata.Histogram[float64]).DataPoints {
		if dp.Attributes.Equals(&want) {
			return dp
		}
	}
	return metricdata.HistogramDataPoint[float64]{}
}

func TestMetricsRecordAttemptsAndDeliveries(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	require.NoError(t, err)
	ctx := context.Background()

	for _, s := range []sentAttempt{
		{statusCode: 200, attempt: store.Attempt{DurationMS: 12}},
		{statusCode: 204, attempt: store.Attempt{DurationMS: 8}},
		{statusCode: 503, attempt: store.Attempt{DurationMS: 40}},
		{statusCode: 302},
		{statusCode: 410},
		{timedOut: true, attempt: store.Attempt{DurationMS: 30000}},
		{attempt: store.Attempt{Error: "connection refused"}},
	} {
		m.attempt(ctx, &s)
	}
	received := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	body := []byte(`{"event_id":"e1","event_type":"survey.response.completed","timestamp":"2026-01-02T03:04:05Z","data":{}}`)
	m.ended(ctx, "survey.response.completed", delivery.StatusDelivered, body, received.Add(90*time.Second))
	m.ended(ctx, "survey.response.completed", delivery.StatusFailed, nil, received)
	m.ended(ctx, "form.submission.created", delivery.StatusDelivered, []byte(`not json`), received)
	m.ended(ctx, "form.submission.created", delivery.StatusRetrying, body, received) // not an end

	got := collect(t, reader)
	class := func(c string) attribute.KeyValue { return attribute.String("status_class", c) }
	attempts := got["surveyhooks_delivery_attempts"]
	for c, want := range map[string]int64{"2xx": 2, "3xx": 1, "4xx": 1, "5xx": 1, "timeout": 1, "error": 1} {
		require.Equal(t, want, sumOf(t, attempts, class(c)), c)
	}
	ok := histogramOf(t, got["surveyhooks_delivery_attempt_duration_seconds"], class("2xx"))
	require.EqualValues(t, 2, ok.Count)
	require.InDelta(t, 0.020, ok.Sum, 1e-9, "milliseconds become seconds")
	require.EqualValues(t, 1, histogramOf(t, got["surveyhooks_delivery_attempt_duration_seconds"], class("timeout")).Count)

	completed := attribute.String("event_type", "survey.response.completed")
	form := attribute.String("event_type", "form.submission.created")
	deliveries := got["surveyhooks_deliveries"]
	require.EqualValues(t, 1, sumOf(t, deliveries, attribute.String("outcome", "delivered"), completed))
	require.EqualValues(t, 1, sumOf(t, deliveries, attribute.String("outcome", "failed"), completed))
	require.EqualValues(t, 1, sumOf(t, deliveries, attribute.String("outcome", "delivered"), form))
	require.EqualValues(t, 0, sumOf(t, deliveries, attribute.String("outcome", "retrying"), form))

	latency := histogramOf(t, got["surveyhooks_delivery_latency_seconds"], completed)
	require.EqualValues(t, 1, latency.Count)
	require.InDelta(t, 90, latency.Sum, 1e-9)
	require.EqualValues(t, 0, histogramOf(t, got["surveyhooks_delivery_latency_seconds"], form).Count,
		"no latency without a readable timestamp")
}

func TestNilMetricsRecordNothing(t *testing.T) {
	t.Parallel()
	var m *Metrics
	require.NotPanics(t, func() {
		m.attempt(context.Background(), &sentAttempt{statusCode: 200})
		m.ended(context.Background(), "survey.response.completed", delivery.StatusDelivered, nil, time.Now())
	})
}

// Recording an attempt happens on every POST: it must not allocate attribute sets.
func TestMetricsAttemptAllocations(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	require.NoError(t, err)
	ctx := context.Background()
	s := sentAttempt{statusCode: http.StatusOK, attempt: store.Attempt{DurationMS: 3}}
	m.ended(ctx, "survey.response.completed", delivery.StatusFailed, nil, time.Now()) // fill the cache
	allocs := testing.AllocsPerRun(1000, func() {
		m.attempt(ctx, &s)
		m.ended(ctx, "survey.response.completed", delivery.StatusFailed, nil, time.Now())
	})
	require.LessOrEqual(t, allocs, 4.0)
}

func TestRedactURLKeepsOnlySchemeAndHost(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://hooks.example.com":                         "https://hooks.example.com",
		"https://hooks.example.com/":                        "https://hooks.example.com",
		"https://hooks.example.com:8443/in":                 "https://hooks.example.com:8443/REDACTED",
		"https://hooks.slack.com/services/T0/B0/XXXXSECRET": "https://hooks.slack.com/REDACTED",
		"https://example.com/?token=abc":                    "https://example.com/REDACTED",
		"https://user:pass@example.com/":                    "https://example.com",
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.Equal(t, want, redactURL(u), raw)
	}
}

func TestServerPortDefaults(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]int{
		"https://example.com/x":     443,
		"http://example.com/x":      80,
		"https://example.com:8443/": 8443,
	} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.Equal(t, want, serverPort(u), raw)
	}
}
