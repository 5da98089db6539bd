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
}

// Option changes how Activities are built.
type Option func(*Activities)

// WithClock makes the activities read time from now: workflow tests pass the test
// environment's clock so that recorded attempt times follow skipped time.
func WithClock(now func() time.Time) Option {
	return func(a *Activities) { a.now = now }
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
	a := &Activities{store: st, client: client, cfg: cfg, logger: logger, now: time.Now}
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
// webhooks subscribed to its type.
func (a *Activities) FanOut(ctx context.Context, in FanOutInput) (FanOutResult, error) {
	subs, err := a.store.FanOut(ctx, in.EventID, func(ctx context.Context, ev store.Event) ([]uuid.UUID, error) {
		if ev.TargetWebhookID != nil {
			return []uuid.UUID{*ev.TargetWebhookID}, nil
		}
		hooks, err := a.store.ListActiveForSurvey(ctx, ev.SurveyID)
		if err != nil {
			return nil, fmt.Errorf("list webhooks of survey %s: %w", ev.SurveyID, err)
		}
		var ids []uuid.UUID
		for _, h := range hooks {
			if subscribed(h.Events, ev.EventType) {
				ids = append(ids, h.ID)
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
	return a.store.FailDelivery(ctx, in.DeliveryID, in.Reason)
}
