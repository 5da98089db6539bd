// Package activities holds surveyhooks' Temporal activities: fanning an event out to its
// webhooks and delivering it to one of them (sign, POST, record the attempt).
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/temporal"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/store"
)

// DefaultMaxLoggedBody caps the request and response bodies stored with each attempt.
const DefaultMaxLoggedBody = 64 << 10

// UserAgent names the product in every request.
const UserAgent = "surveyhooks/1.0 (+https://github.com/surveyhooks/surveyhooks)"

// Config configures delivery attempts.
type Config struct {
	// Schedule says when failed attempts are retried.
	Schedule Schedule
	// AttemptTimeout bounds one attempt (SURVEYHOOKS_ATTEMPT_TIMEOUT).
	AttemptTimeout time.Duration
	// MaxLoggedBody caps each stored body; 0 means DefaultMaxLoggedBody.
	MaxLoggedBody int
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
	// targets carries what a fan-out loaded to the deliveries' first attempts.
	targets *TargetCache
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

// WithTargetCache takes first attempts' targets from c, which the process's API fills as
// it publishes (dispatch.Options.Targets), besides the FanOut activity.
func WithTargetCache(c *TargetCache) Option {
	return func(a *Activities) { a.targets = c }
}

// WithMetrics records attempts and deliveries in m (NewMetrics).
func WithMetrics(m *Metrics) Option {
	return func(a *Activities) { a.metrics = m }
}

// New returns Activities that read and record through st and send through client, which
// should refuse forbidden addresses and never follow redirects (netguard.Policy.Client).
// Every exported method of Activities is an activity.
func New(st *store.Store, client *http.Client, cfg Config, logger *slog.Logger, opts ...Option) *Activities {
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.MaxLoggedBody <= 0 {
		cfg.MaxLoggedBody = DefaultMaxLoggedBody
	}
	if logger == nil {
		logger = slog.Default()
	}
	a := &Activities{store: st, client: client, cfg: cfg, logger: logger, now: time.Now,
		tracer: noop.NewTracerProvider().Tracer(TracerName), targets: NewTargetCache()}
	for _, opt := range opts {
		opt(a)
	}
	return a
}

// FanOutInput names the event to fan out.
type FanOutInput struct {
	EventID string
}

// FanOutResult lists the event's deliveries.
type FanOutResult struct {
	Deliveries []store.Subscription
}

// FanOut creates one delivery per webhook the event goes to (once per event) and returns
// them all: a test event goes to its target webhook, any other event to the survey's active
// webhooks subscribed to its type. Events the API publishes come with their deliveries
// (store.PublishEvent), and their workflow skips FanOut; it runs for a workflow started by
// the dispatcher or by a retry after the workflow closed, which lists the deliveries made,
// and for events stored before publishing fanned out. The deliveries it creates keep their
// target in memory for their first attempt (TargetCache).
func (a *Activities) FanOut(ctx context.Context, in FanOutInput) (FanOutResult, error) {
	var event store.Event
	picked := map[uuid.UUID]store.Webhook{}
	subs, err := a.store.FanOut(ctx, in.EventID, func(ctx context.Context, ev store.Event) ([]uuid.UUID, error) {
		if ev.TargetWebhookID != nil {
			return []uuid.UUID{*ev.TargetWebhookID}, nil
		}
		hooks, err := a.store.ListActiveForSurvey(ctx, ev.SurveyID)
		if err != nil {
			return nil, fmt.Errorf("list webhooks of survey %s: %w", ev.SurveyID, err)
		}
		event = ev
		var ids []uuid.UUID
		for _, h := range hooks {
			if subscribed(h.Events, ev.EventType) {
				ids = append(ids, h.ID)
				picked[h.ID] = h
			}
		}
		return ids, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		// The event is gone (deleted by retention): retrying cannot bring it back.
		return FanOutResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("event %s does not exist", in.EventID), ErrTypeDeliveryFailed, err)
	}
	if err != nil {
		return FanOutResult{}, fmt.Errorf("fan out event %s: %w", in.EventID, err)
	}
	for _, sub := range subs {
		if hook, ok := picked[sub.WebhookID]; ok && sub.Status == store.StatusPending && sub.AttemptCount == 0 {
			a.targets.Put(store.Target{DeliveryID: sub.DeliveryID, Status: sub.Status, EventID: event.ID,
				EventType: event.EventType, Body: event.Body, Webhook: hook})
		}
	}
	return FanOutResult{Deliveries: subs}, nil
}

func subscribed(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if eventtype.Matches(p, eventType) {
			return true
		}
	}
	return false
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
	if a.metrics != nil {
		// The metric is labelled by event type, which only the delivery's row knows.
		if t, err := a.store.GetTarget(ctx, in.DeliveryID); err == nil {
			a.metrics.ended(ctx, t.EventType, store.StatusFailed, nil, a.now())
		}
	}
	return nil
}
