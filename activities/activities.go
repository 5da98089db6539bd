// Package activities holds surveyhooks' Temporal activities: delivering an event to one
// webhook (sign, POST, record the attempt) and marking a delivery failed when its schedule
// ended other than by its own decision.
package activities

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

// DefaultMaxLoggedBody caps the request and response bodies stored with each attempt.
const DefaultMaxLoggedBody = 64 << 10

// UserAgent names the product in every request.
const UserAgent = "surveyhooks/1.0 (+https://github.com/surveyhooks/surveyhooks)"

// Config configures delivery attempts.
type Config struct {
	// Schedule says when failed attempts are retried and how long one may take.
	Schedule delivery.Schedule
	// MaxLoggedBody caps each stored body; 0 means DefaultMaxLoggedBody.
	MaxLoggedBody int
	// Signature names the header that carries the HMAC of an HMAC webhook's requests and
	// says how it is written (the platform's profile); the zero value means
	// signature.DefaultProfile. The Standard Webhooks headers are sent whatever it is.
	Signature signature.Profile
	// Disable says when a failing webhook is turned off; the zero value turns one off only
	// when its receiver answers 410 Gone.
	Disable delivery.DisablePolicy
	// NoticeAccount, when set, also gets the notices of every account (webhook.disabled),
	// for the operator's own webhooks; each account gets its own in any case.
	NoticeAccount string
	// EndpointConcurrency bounds the attempts this worker has in flight to one endpoint;
	// 0 means DefaultEndpointConcurrency, a negative value no bound.
	EndpointConcurrency int
}

// Activities are the activities' implementations with their dependencies. Register the
// value with a worker; workflows call its methods by reference.
type Activities struct {
	store  *store.Store
	client *http.Client
	cfg    Config
	logger *slog.Logger
	now    func() time.Time
	// tracer makes the client span of each POST; receivers, when set, writes its context
	// into the request (WithTracing).
	tracer    trace.Tracer
	receivers propagation.TextMapPropagator
	// metrics, when set, records attempts and deliveries (WithMetrics).
	metrics *Metrics
	// recorder records attempts, sharing statements among concurrent ones.
	recorder *recorder
	// gate bounds the attempts in flight to each endpoint.
	gate *endpointGate
}

// Option changes how Activities are built.
type Option func(*Activities)

// WithClock makes the activities read time from now: workflow tests pass the test
// environment's clock so that recorded attempt times follow skipped time.
func WithClock(now func() time.Time) Option {
	return func(a *Activities) { a.now = now }
}

// WithTracing makes every POST a client span of tp, a child of the activity's span (which
// Temporal's tracing interceptor puts in the context). receivers, when not nil, writes the
// span's context into each request (traceparent) so that receivers can join the trace;
// nil sends no trace header, the default (SURVEYHOOKS_TRACE_RECEIVERS): our trace ids mean
// nothing to most receivers, and they need not learn them.
func WithTracing(tp trace.TracerProvider, receivers propagation.TextMapPropagator) Option {
	return func(a *Activities) {
		a.tracer = tp.Tracer(TracerName)
		a.receivers = receivers
	}
}

// WithMetrics records attempts and deliveries in m (NewMetrics).
func WithMetrics(m *Metrics) Option {
	return func(a *Activities) { a.metrics = m }
}

// New returns Activities that read and record through st and send through client, which
// should refuse forbidden addresses and never follow redirects (netguard.Policy.Client).
// Every exported method of Activities is an activity.
func New(st *store.Store, client *http.Client, cfg Config, logger *slog.Logger, opts ...Option) *Activities {
	if cfg.Schedule.AttemptTimeout <= 0 {
		cfg.Schedule.AttemptTimeout = delivery.DefaultAttemptTimeout
	}
	if cfg.MaxLoggedBody <= 0 {
		cfg.MaxLoggedBody = DefaultMaxLoggedBody
	}
	if cfg.Signature == (signature.Profile{}) {
		cfg.Signature = signature.DefaultProfile
	}
	if cfg.EndpointConcurrency == 0 {
		cfg.EndpointConcurrency = DefaultEndpointConcurrency
	}
	if logger == nil {
		logger = slog.Default()
	}
	a := &Activities{store: st, client: client, cfg: cfg, logger: logger, now: time.Now,
		tracer: noop.NewTracerProvider().Tracer(TracerName), recorder: newRecorder(st),
		gate: newEndpointGate(cfg.EndpointConcurrency, cfg.Schedule.AttemptTimeout)}
	for _, opt := range opts {
		opt(a)
	}
	return a
}

// FailDeliveryInput names a delivery that gets no further attempt, and why.
type FailDeliveryInput struct {
	DeliveryID uuid.UUID
	Reason     string
}

// FailDelivery marks a delivery failed when its attempts ended other than by Deliver's own
// decision (for example the last attempt timed out because its worker crashed).
func (a *Activities) FailDelivery(ctx context.Context, in FailDeliveryInput) error {
	if err := a.store.FailDelivery(ctx, in.DeliveryID, in.Reason); err != nil {
		return err
	}
	// The metric is labelled by event type, and the notice tells of the delivery: only its
	// row knows them.
	if t, err := a.store.GetTarget(ctx, in.DeliveryID); err == nil {
		a.metrics.ended(ctx, t.EventType, delivery.StatusFailed, nil, a.now())
		a.exhausted(ctx, t, t.AttemptCount, nil, in.Reason)
	}
	return nil
}
