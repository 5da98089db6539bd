package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/telemetry"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// observed is the whole delivery path wired as cmd/ wires it for production: a Temporal
// client with the tracing interceptor and the SDK metrics handler (used by the worker, the
// dispatcher and the API), traced activities with metrics, and every log line in logs.
type observed struct {
	*engine
	spans   *tracetest.InMemoryExporter
	metrics http.Handler
	logs    *syncBuffer
}

// syncBuffer is a bytes.Buffer for concurrent writers (API handlers, activities, the SDK).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// setupObserved starts the stack. receivers is what the activities write into outgoing
// requests (nil: no trace header, the default).
func setupObserved(t *testing.T, receivers propagation.TextMapPropagator) *observed {
	t.Helper()
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.New(ctx, telemetry.Options{SpanExporter: spans})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) })

	logs := &syncBuffer{}
	logger := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	db := testenv.Postgres(t)
	st := store.New(db, testenv.Keyring())
	te := testenv.Temporal(t)
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            tel.TracerProvider().Tracer("temporal-sdk-go"),
		TextMapPropagator: tel.Propagator(),
	})
	require.NoError(t, err)
	tc, err := client.Dial(client.Options{
		HostPort:     te.HostPort,
		Namespace:    te.Namespace,
		Interceptors: []interceptor.ClientInterceptor{tracing},
		MetricsHandler: temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
			Meter:                tel.MeterProvider().Meter(telemetry.TemporalMeterName),
			OnError:              func(err error) { t.Errorf("temporal metrics: %v", err) },
			UseMonotonicCounters: true,
		}),
		Logger: sdklog.NewStructuredLogger(logger),
	})
	require.NoError(t, err)
	t.Cleanup(tc.Close)

	metrics, err := activities.NewMetrics(tel.MeterProvider())
	require.NoError(t, err)
	delays := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
	acts := activities.New(st, netguard.Policy{AllowHTTP: true, Allowed: loopback}.Client(), activities.Config{Schedule: delivery.Schedule{Delays: delays, AttemptTimeout: 2 * time.Second},
		Disable: delivery.DisablePolicy{FailingAfter: 1}}, logger, activities.WithTracing(tel.TracerProvider(), receivers), activities.WithMetrics(metrics))
	w := worker.New(tc, te.TaskQueue, worker.Options{WorkflowPanicPolicy: worker.FailWorkflow})
	workflows.Register(w, acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	d := delivery.New(st, tc, delivery.Config{TaskQueue: te.TaskQueue, Schedule: delivery.Schedule{Delays: delays, AttemptTimeout: 2 * time.Second}, MeterProvider: tel.MeterProvider()}, logger)
	srv := api.New(api.Config{
		APIKeys:        []string{engineKey},
		URLPolicy:      netguard.Policy{AllowHTTP: true, Allowed: loopback},
		TracerProvider: tel.TracerProvider(),
		MeterProvider:  tel.MeterProvider(),
		Propagator:     tel.Propagator(),
	}, st, d, logger)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &observed{engine: &engine{url: hs.URL, st: st}, spans: spans, metrics: tel.MetricsHandler(), logs: logs}
}

// spanNamed returns the ended span named name in trace id, if any.
func spanNamed(spans tracetest.SpanStubs, id trace.TraceID, name string) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.Name == name && s.SpanContext.TraceID() == id {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

func attr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func TestTelemetryOneTraceFromAPIRequestToReceiver(t *testing.T) {
	t.Parallel()
	o := setupObserved(t, propagation.TraceContext{})
	rc := newReceiver(t)
	o.createWebhook(t, rc.URL+"/hooks/secret-path-token?token=query-token", []string{"*"}, "")

	status, ev := o.publish(t, "evt-traced")
	require.Equal(t, http.StatusCreated, status, ev)
	o.deliveriesOf(t, "evt-traced", 1)

	// The API request's span is the root of the event's trace.
	var request tracetest.SpanStub
	for _, s := range o.spans.GetSpans() {
		if s.Name == "POST /api/events" {
			request = s
		}
	}
	require.Equal(t, "POST /api/events", request.Name)
	require.Equal(t, trace.SpanKindServer, request.SpanKind)
	require.False(t, request.Parent.IsValid(), "no caller trace: the request starts the trace")
	id := request.SpanContext.TraceID()

	// The workflow span ends when the workflow completes, a moment after the delivery.
	var spans tracetest.SpanStubs
	require.Eventually(t, func() bool {
		spans = o.spans.GetSpans()
		_, ok := spanNamed(spans, id, "RunWorkflow:Event")
		return ok
	}, 30*time.Second, 20*time.Millisecond)

	start, ok := spanNamed(spans, id, "StartWorkflow:Event")
	require.True(t, ok, "the API's workflow start is in the request's trace")
	require.Equal(t, request.SpanContext.SpanID(), start.Parent.SpanID())
	run, ok := spanNamed(spans, id, "RunWorkflow:Event")
	require.True(t, ok)
	require.Equal(t, start.SpanContext.SpanID(), run.Parent.SpanID())
	_, ok = spanNamed(spans, id, "StartActivity:Deliver")
	require.True(t, ok)
	deliver, ok := spanNamed(spans, id, "RunActivity:Deliver")
	require.True(t, ok, "the Deliver activity is in the request's trace")

	post, ok := spanNamed(spans, id, "POST")
	require.True(t, ok, "the outgoing POST is in the request's trace")
	require.Equal(t, trace.SpanKindClient, post.SpanKind)
	require.Equal(t, deliver.SpanContext.SpanID(), post.Parent.SpanID(), "the POST is a child of the activity")
	require.EqualValues(t, http.StatusOK, attr(post, "http.response.status_code").AsInt64())
	require.Equal(t, "POST", attr(post, "http.request.method").AsString())
	require.Equal(t, "evt-traced", attr(post, "surveyhooks.event_id").AsString())
	require.Equal(t, "127.0.0.1", attr(post, "server.address").AsString())
	fullURL := attr(post, "url.full").AsString()
	require.Equal(t, rc.URL+"/REDACTED", fullURL)
	for _, s := range spans {
		for _, kv := range s.Attributes {
			require.NotContains(t, kv.Value.String(), "secret-path-token", "span %s attribute %s", s.Name, kv.Key)
			require.NotContains(t, kv.Value.String(), "query-token", "span %s attribute %s", s.Name, kv.Key)
		}
	}

	// Receivers get the POST span's context (SURVEYHOOKS_TRACE_RECEIVERS=true).
	got := rc.got()
	require.Len(t, got, 1)
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(got[0].header)))
	require.Equal(t, id, sc.TraceID())
	require.Equal(t, post.SpanContext.SpanID(), sc.SpanID())

	// The activity's log line carries the trace and span ids; so does the delivery log.
	var attemptLine map[string]any
	for _, line := range strings.Split(o.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"delivery attempt"`) {
			require.NoError(t, json.Unmarshal([]byte(line), &attemptLine))
		}
	}
	require.Equal(t, id.String(), attemptLine["trace_id"])
	require.Equal(t, deliver.SpanContext.SpanID().String(), attemptLine["span_id"])
	var requestLine map[string]any
	for _, line := range strings.Split(o.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"route":"/api/events"`) {
			require.NoError(t, json.Unmarshal([]byte(line), &requestLine))
			break
		}
	}
	require.Equal(t, id.String(), requestLine["trace_id"], "the API's request line carries the request's trace")
	require.Equal(t, request.SpanContext.SpanID().String(), requestLine["span_id"])
	require.EqualValues(t, http.StatusCreated, requestLine["status"])
	ds := o.deliveriesOf(t, "evt-traced", 1)
	_, d := o.do(t, http.MethodGet, "/api/surveys/survey-1/webhooks/"+ds[0]["webhookId"].(string)+"/deliveries/"+ds[0]["id"].(string), nil)
	headers := d["attempts"].([]any)[0].(map[string]any)["request"].(map[string]any)["headers"].(map[string]any)
	require.Equal(t, []any{got[0].header.Get("traceparent")}, headers["Traceparent"], "the delivery log shows the traceparent sent")
}

// scrape reads the metrics handler as Prometheus would.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// sample returns the value of the series of family name with labels (a counter's or
// gauge's value, a histogram's count), and whether it exists.
func sample(families map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	family, ok := families[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range family.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func requireSample(t *testing.T, families map[string]*dto.MetricFamily, want float64, name string, labels map[string]string) {
	t.Helper()
	got, ok := sample(families, name, labels)
	require.True(t, ok, "no series %s%v", name, labels)
	require.Equal(t, want, got, "%s%v", name, labels)
}

func TestTelemetryMetricsAfterDeliveries(t *testing.T) {
	t.Parallel()
	o := setupObserved(t, nil)
	ok1, ok2 := newReceiver(t), newReceiver(t, http.StatusAccepted)
	flaky := newReceiver(t, http.StatusServiceUnavailable, http.StatusOK)
	gone := newReceiver(t, http.StatusGone)
	for _, rc := range []*receiver{ok1, ok2, flaky, gone} {
		o.createWebhook(t, rc.URL, []string{"survey.response.*"}, "")
	}
	inactive, _ := o.createWebhook(t, ok1.URL+"/inactive", []string{"*"}, "")
	status, out := o.do(t, http.MethodPatch, "/api/surveys/survey-1/webhooks/"+inactive, map[string]any{"isActive": false})
	require.Equal(t, http.StatusOK, status, out)

	status, _ = o.publish(t, "evt-metrics")
	require.Equal(t, http.StatusCreated, status)
	status, _ = o.publish(t, "evt-metrics")
	require.Equal(t, http.StatusOK, status)
	o.deliveriesOf(t, "evt-metrics", 4)

	// The last attempt's metrics are recorded right after its delivery row: wait for them.
	var families map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		families = scrape(t, o.metrics)
		n, _ := sample(families, "surveyhooks_deliveries_total", map[string]string{"outcome": "failed"})
		m, _ := sample(families, "surveyhooks_deliveries_total", map[string]string{"outcome": "delivered"})
		return n+m == 4
	}, 10*time.Second, 20*time.Millisecond)

	const typ = "survey.response.completed"
	requireSample(t, families, 3, "surveyhooks_deliveries_total", map[string]string{"outcome": "delivered", "event_type": typ})
	requireSample(t, families, 1, "surveyhooks_deliveries_total", map[string]string{"outcome": "failed", "event_type": typ})
	requireSample(t, families, 3, "surveyhooks_delivery_attempts_total", map[string]string{"status_class": "2xx"})
	requireSample(t, families, 1, "surveyhooks_delivery_attempts_total", map[string]string{"status_class": "4xx"})
	requireSample(t, families, 1, "surveyhooks_delivery_attempts_total", map[string]string{"status_class": "5xx"})
	requireSample(t, families, 3, "surveyhooks_delivery_attempt_duration_seconds", map[string]string{"status_class": "2xx"})
	requireSample(t, families, 1, "surveyhooks_delivery_attempt_duration_seconds", map[string]string{"status_class": "5xx"})
	requireSample(t, families, 3, "surveyhooks_delivery_latency_seconds", map[string]string{"event_type": typ})
	requireSample(t, families, 1, "surveyhooks_events_received_total", map[string]string{"dispatch": "started"})
	requireSample(t, families, 1, "surveyhooks_events_deduplicated_total", nil)
	// The 410 turned its webhook off: three of the four stay active.
	requireSample(t, families, 3, "surveyhooks_webhooks_active", nil)
	requireSample(t, families, 1, "surveyhooks_webhooks_disabled_total", map[string]string{"cause": "gone"})
	// A streak of one failure is the threshold here: the flaky and the gone webhooks.
	requireSample(t, families, 2, "surveyhooks_webhooks_failing_total", nil)

	// The flaky delivery waited for its retry (200 ms): its latency is in a bucket above.
	latency := families["surveyhooks_delivery_latency_seconds"].Metric[0].Histogram
	require.Greater(t, latency.GetSampleSum(), 0.2)

	// otelmux's request metrics, by route; Temporal's SDK metrics through its handler.
	for _, code := range []string{"201", "200"} {
		requireSample(t, families, 1, "http_server_request_duration_seconds",
			map[string]string{"http_route": "/api/events", "http_request_method": "POST", "http_response_status_code": code})
	}
	// The workflow completes after its last attempt was counted: scrape until it has.
	require.Eventually(t, func() bool {
		_, ok := sample(scrape(t, o.metrics), "temporal_workflow_completed_total", map[string]string{"workflow_type": "Event"})
		return ok
	}, 10*time.Second, 20*time.Millisecond, "Temporal SDK metrics are exported")

	// Default: receivers get no trace header.
	for _, rc := range []*receiver{ok1, ok2, flaky, gone} {
		for _, req := range rc.got() {
			require.Empty(t, req.header.Get("traceparent"))
		}
	}
}

func TestTelemetryLogsNeverShowSecrets(t *testing.T) {
	t.Parallel()
	o := setupObserved(t, nil)
	ok := newReceiver(t)
	failing := newReceiver(t, http.StatusInternalServerError)

	// A generated secret, a chosen one, and the secret a rotation makes.
	generatedID, generated := o.createWebhook(t, ok.URL, []string{"*"}, "")
	const chosen = "my-own-chosen-signing-key-0123456789"
	o.createWebhook(t, failing.URL, []string{"*"}, chosen)
	status, rotated := o.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks/"+generatedID+"/secret/rotate", nil)
	require.Equal(t, http.StatusOK, status, rotated)
	rotatedSecret := rotated["secret"].(string)
	status, out := o.do(t, http.MethodGet, "/api/surveys/survey-1/webhooks/"+generatedID+"/secret", nil)
	require.Equal(t, http.StatusOK, status, out)

	status, _ = o.publish(t, "evt-secrets")
	require.Equal(t, http.StatusCreated, status)
	o.deliveriesOf(t, "evt-secrets", 2)
	status, out = o.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks/"+generatedID+"/test", nil)
	require.Equal(t, http.StatusOK, status, out)

	logs := o.logs.String()
	require.Contains(t, logs, `"msg":"delivery attempt"`, "the capture holds the activities' lines")
	require.Contains(t, logs, `"route":"/api/surveys/{surveyId}/webhooks/{id}/secret/rotate"`, "and the API's")
	forbidden := []string{generated, rotatedSecret, chosen}
	for _, secret := range []string{generated, rotatedSecret} {
		// The signing key of a whsec_ secret is its base64 part, and its bytes in any encoding.
		b64 := strings.TrimPrefix(secret, "whsec_")
		key, err := base64.StdEncoding.DecodeString(b64)
		require.NoError(t, err)
		forbidden = append(forbidden, b64, base64.RawURLEncoding.EncodeToString(key))
	}
	// Nor a signature: with the body it would let anyone test guesses of the key offline.
	for _, rc := range []*receiver{ok, failing} {
		for _, req := range rc.got() {
			forbidden = append(forbidden, req.header.Get("X-Webhook-Signature"), req.header.Get("webhook-signature"))
			for _, sig := range strings.Fields(req.header.Get("webhook-signature")) {
				_, b64, _ := strings.Cut(sig, ",")
				forbidden = append(forbidden, b64)
			}
		}
	}
	for _, f := range forbidden {
		require.NotEmpty(t, f)
		require.NotContains(t, logs, f)
	}
	// Spans must not carry them either: they leave for a tracing backend.
	for _, s := range o.spans.GetSpans() {
		for _, kv := range s.Attributes {
			for _, f := range forbidden {
				require.NotContains(t, kv.Value.String(), f, "span %s attribute %s", s.Name, kv.Key)
			}
		}
	}
}
