// Package delivery owns what happens to an event once a publisher sends it: storing it
// with one delivery per subscribed webhook, starting its workflow (at once, or later from
// the outbox), retrying a delivery, testing a webhook, and the one rule that says whether a
// delivery may be sent now (Decide). The API calls it; only it and the worker wiring talk
// to Temporal.
package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/jsoncanon"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

// Errors of the service's operations, for the API to answer.
var (
	// ErrUnavailable: Temporal could not take the request now; nothing changed.
	ErrUnavailable = errors.New("the delivery engine is not reachable")
	// ErrDelivered: the delivery got through; a retry must be forced.
	ErrDelivered = errors.New("the delivery was delivered")
	// ErrInactive: the webhook is inactive; its deliveries are not retried.
	ErrInactive = errors.New("the webhook is inactive")
	// ErrTestUnfinished: the test attempt did not end in time; it goes on.
	ErrTestUnfinished = errors.New("the test attempt did not finish in time")
)

// ConflictError answers a publish whose event id is taken by an event with other content:
// Fields names what differs (event_type, survey_id, data), or only event_id when the event
// belongs to another account. Nothing is stored.
type ConflictError struct {
	EventID string
	Fields  []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("event %s exists with another %s", e.EventID, strings.Join(e.Fields, ", "))
}

// Config configures the service.
type Config struct {
	// TaskQueue is where the event workflows run; "" means DefaultTaskQueue.
	TaskQueue string
	// Schedule is the retry schedule every new event's deliveries run under.
	Schedule Schedule
	// Outbox configures the start of events whose workflow did not start at once.
	Outbox OutboxConfig
	// MeterProvider records the service's metrics; nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// EventTypes checks each published event's type and data before it is stored; nil
	// means a registry over the store, read again every eventtype.DefaultRefresh.
	EventTypes *eventtype.Registry
	// RecoveryRate bounds the retries a recovery asks for per second; 0 means
	// DefaultRecoveryRate. RecoveryBatch is how many one activity asks for; 0 means
	// DefaultRecoveryBatch.
	RecoveryRate  float64
	RecoveryBatch int
}

// Service publishes events, retries and tests deliveries.
type Service struct {
	store   *store.Store
	client  client.Client
	cfg     Config
	logger  *slog.Logger
	outbox  *outbox
	metrics metrics
	// now is the clock of the rule for sending.
	now func() time.Time
}

// New returns a Service over st and the Temporal client tc. A nil logger discards logs.
func New(st *store.Store, tc client.Client, cfg Config, logger *slog.Logger) *Service {
	if cfg.TaskQueue == "" {
		cfg.TaskQueue = DefaultTaskQueue
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.EventTypes == nil {
		cfg.EventTypes = eventtype.NewRegistry(st, 0)
	}
	s := &Service{store: st, client: tc, cfg: cfg, logger: logger, now: time.Now, metrics: newMetrics(cfg.MeterProvider, logger)}
	s.outbox = newOutbox(s, cfg.Outbox)
	return s
}

// EventTypes returns the registry publishes are checked against, for the API to serve and
// change the types through the same cache.
func (s *Service) EventTypes() *eventtype.Registry {
	return s.cfg.EventTypes
}

// startTimeout bounds the synchronous workflow start of a publish; past it the event stays
// queued in the outbox and Run starts it.
const startTimeout = 5 * time.Second

// NewEvent is what a publisher sends: the service adds the envelope.
type NewEvent struct {
	// ID is the publisher's event id, or "" for a generated one.
	ID string
	// AccountID is the account the event belongs to; its webhooks hear it.
	AccountID string
	Type      string
	SurveyID  string
	Data      json.RawMessage
}

// Published is the answer to a publish.
type Published struct {
	Event store.Event
	// Created is false when an event with the id existed: Event is that one, unchanged.
	Created bool
	// Dispatched says the event's workflow started; false while it waits in the outbox.
	Dispatched bool
}

// Publish stores an event with one delivery per subscribed webhook and starts its
// workflow. The same event id again is the same event: nothing new is stored or started.
// When Temporal cannot take the workflow now, the event waits in the outbox (Run). An event
// of a type the registry does not have (*eventtype.UnknownError), or whose data does not
// match the type's schema (*eventtype.DataError), is refused and nothing is stored; an
// archived type is still published, to the webhooks subscribed to it.
func (s *Service) Publish(ctx context.Context, ev NewEvent) (Published, error) {
	p, err := s.publish(ctx, ev)
	if err == nil {
		s.metrics.published(ctx, p)
	}
	return p, err
}

func (s *Service) publish(ctx context.Context, ev NewEvent) (Published, error) {
	if err := s.cfg.EventTypes.Check(ctx, ev.Type, ev.Data); err != nil {
		return Published{}, err
	}
	event, err := s.newEvent(ev, nil)
	if err != nil {
		return Published{}, err
	}
	stored, err := s.store.PublishEvent(ctx, event)
	if err != nil {
		return Published{}, err
	}
	if !stored.Created {
		// A publisher's retry is the same event; another event under a taken id is refused,
		// never answered with the stored one (and never dropped silently).
		if differs := differences(stored.Event, event); len(differs) > 0 {
			return Published{}, &ConflictError{EventID: event.ID, Fields: differs}
		}
		return Published{Event: stored.Event, Dispatched: stored.Event.DispatchedAt != nil}, nil
	}
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if _, err := s.dispatch(startCtx, stored); err != nil {
		// Stored is enough: the outbox starts the workflow once Temporal answers.
		s.logger.WarnContext(ctx, "event queued: workflow not started", "event_id", stored.Event.ID, "err", err)
		return Published{Event: stored.Event, Created: true}, nil
	}
	return Published{Event: stored.Event, Created: true, Dispatched: true}, nil
}

// differences names what a republished event changes of the stored one with its id. The
// envelope's timestamp is the time of each publish, so bodies are compared by their data.
func differences(stored, again store.Event) []string {
	if stored.AccountID != again.AccountID {
		// Another account's event: nothing of it may show, not even which fields differ.
		return []string{"event_id"}
	}
	var fields []string
	if stored.EventType != again.EventType {
		fields = append(fields, "event_type")
	}
	if stored.SurveyID != again.SurveyID {
		fields = append(fields, "survey_id")
	}
	if !bytes.Equal(envelopeData(stored.Body), envelopeData(again.Body)) {
		fields = append(fields, "data")
	}
	return fields
}

// envelopeData is the data member of an envelope as newEvent wrote it (in canonical form,
// so data that JavaScript reads alike is alike here), or nil when the body is no envelope.
func envelopeData(body []byte) []byte {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(body, &env) != nil {
		return nil
	}
	return env.Data
}

// newEvent builds the stored event with the exact envelope bytes every attempt sends: the
// one place an envelope is made, for published and test events alike. The envelope is
// written in canonical form (jsoncanon), the bytes JSON.stringify(JSON.parse(body)) gives,
// so that receivers that verify a signature over those bytes verify the body as sent. A
// number of data that a double does not hold is refused with a *jsoncanon.NumberError
// naming it, rather than sent as another value.
func (s *Service) newEvent(ev NewEvent, target *uuid.UUID) (store.Event, error) {
	id := ev.ID
	if id == "" {
		id = uuid.NewString()
	}
	body, err := Envelope(id, ev.Type, s.now(), ev.Data)
	if err != nil {
		return store.Event{}, err
	}
	return store.Event{ID: id, AccountID: ev.AccountID, EventType: ev.Type, SurveyID: ev.SurveyID, Body: body, TargetWebhookID: target}, nil
}

// Envelope is the body every attempt of an event sends, in canonical form: its id, type,
// the time surveyhooks received it (to the millisecond) and its data.
func Envelope(id, eventType string, at time.Time, data json.RawMessage) ([]byte, error) {
	envelope, err := json.Marshal(signature.Event{
		EventID:   id,
		EventType: eventType,
		Timestamp: at.UTC().Truncate(time.Millisecond),
		Data:      data,
	})
	if err != nil {
		return nil, fmt.Errorf("encode the envelope of event %s: %w", id, err)
	}
	body, err := jsoncanon.Canonical(envelope)
	if err != nil {
		return nil, fmt.Errorf("canonical envelope of event %s: %w", id, err)
	}
	return body, nil
}

// dispatch starts the workflow of an event stored with its deliveries and marks the event
// dispatched. While Temporal is known to be
// unreachable it returns ErrUnavailable at once, and the event waits for the outbox.
func (s *Service) dispatch(ctx context.Context, p store.Published) (client.WorkflowRun, error) {
	if s.outbox.temporalDown() {
		return nil, ErrUnavailable
	}
	run, err := s.start(ctx, p.Event, p.Deliveries)
	if err != nil {
		s.outbox.noteFailure(err)
		return nil, err
	}
	if err := s.outbox.markDispatched(ctx, p.Event.ID); err != nil {
		// The outbox starts the event again after its grace period, which finds its
		// workflow: the event is not lost and nothing is sent twice.
		s.logger.WarnContext(ctx, "event started but not marked dispatched", "event_id", p.Event.ID, "err", err)
	}
	return run, nil
}

// input is the workflow input of ev with its deliveries.
func (s *Service) input(ev store.Event, deliveries []store.EventDelivery) EventInput {
	in := EventInput{
		EventID: ev.ID, AccountID: ev.AccountID, EventType: ev.EventType, SurveyID: ev.SurveyID,
		Trigger: triggerOf(ev), Schedule: s.cfg.Schedule,
		Deliveries: make([]Target, 0, len(deliveries)),
	}
	for _, d := range deliveries {
		in.Deliveries = append(in.Deliveries, Target{DeliveryID: d.ID, WebhookID: d.WebhookID, URL: d.URL, Status: d.Status})
	}
	return in
}

// start starts ev's workflow. A workflow that runs or has run for the event counts as
// started: a second start (two dispatchers, a retried request) changes nothing.
func (s *Service) start(ctx context.Context, ev store.Event, deliveries []store.EventDelivery) (client.WorkflowRun, error) {
	in := s.input(ev, deliveries)
	opts := StartOptions(in, s.cfg.TaskQueue)
	// A closed run counts as started too: a start whose answer was lost (Temporal moving
	// shards after a node died) leaves the event to the outbox, which may come after the
	// run has closed; starting again would run the event twice. Only the retry signal
	// (SignalWithStart) starts a closed event again, on purpose.
	opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	run, err := s.client.ExecuteWorkflow(ctx, opts, EventWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return s.client.GetWorkflow(ctx, WorkflowID(ev.ID), started.RunId), nil
	}
	if err != nil {
		return nil, fmt.Errorf("start workflow of event %s: %w", ev.ID, err)
	}
	return run, nil
}

// triggerOf is the trigger of an event's first attempts: test for the webhook test's events.
func triggerOf(ev store.Event) string {
	if ev.TargetWebhookID != nil {
		return TriggerTest
	}
	return TriggerAuto
}

// Retry asks the event's workflow to attempt a delivery of the webhook now: a delivery
// waiting for its next attempt is attempted at once and its schedule goes on; a finished
// one gets one more attempt. The workflow starts again when it has closed
// (SignalWithStart). It returns the workflow's id.
func (s *Service) Retry(ctx context.Context, webhookID, deliveryID uuid.UUID, force bool) (string, error) {
	t, err := s.store.GetTarget(ctx, deliveryID)
	if err != nil {
		return "", err
	}
	if t.Webhook.ID != webhookID {
		return "", fmt.Errorf("delivery %s of webhook %s: %w", deliveryID, webhookID, store.ErrNotFound)
	}
	return s.retry(ctx, t, force)
}

// retry asks for an attempt of the loaded target t, as Retry does.
func (s *Service) retry(ctx context.Context, t store.Target, force bool) (string, error) {
	deliveryID := t.DeliveryID
	switch Decide(StateOf(t), TriggerManual, force, s.now()).Action {
	case ActionSkip:
		return "", ErrDelivered
	case ActionRefuse:
		return "", ErrInactive
	}
	ev, err := s.store.GetEvent(ctx, t.EventID)
	if err != nil {
		return "", err
	}
	deliveries, err := s.store.ListEventTargets(ctx, ev.ID)
	if err != nil {
		return "", err
	}
	in := s.input(ev, deliveries)
	signalCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	_, err = s.client.SignalWithStartWorkflow(signalCtx, WorkflowID(ev.ID), RetrySignal,
		RetryRequest{DeliveryID: deliveryID, Force: force}, StartOptions(in, s.cfg.TaskQueue), EventWorkflow, in)
	if err != nil {
		s.logger.WarnContext(ctx, "retry signal", "delivery_id", deliveryID, "err", err)
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return WorkflowID(ev.ID), nil
}

// StateOf is what the rule for sending reads of a delivery's target.
func StateOf(t store.Target) State {
	return State{Status: t.Status, AttemptCount: t.AttemptCount, NextAttemptAt: t.NextAttemptAt,
		WebhookActive: t.Webhook.IsActive, PausedUntil: t.PausedUntil}
}

// Tested is the outcome of a webhook test.
type Tested struct {
	EventID    string
	DeliveryID uuid.UUID
}

// Test sends a webhook.test event to one webhook, active or not, as an ordinary event
// whose one delivery's attempt is triggered by test, and waits for that attempt.
func (s *Service) Test(ctx context.Context, hook store.Webhook) (Tested, error) {
	data, err := json.Marshal(map[string]any{
		"webhook": map[string]string{"id": hook.ID.String(), "name": hook.Name},
		"message": "This is a test event from surveyhooks.",
	})
	if err != nil {
		return Tested{}, fmt.Errorf("encode test data: %w", err)
	}
	// An account-wide webhook's test event has no survey ("").
	ev, err := s.newEvent(NewEvent{ID: "test-" + uuid.NewString(), AccountID: hook.AccountID,
		Type: eventtype.WebhookTest, SurveyID: hook.SurveyID, Data: data}, &hook.ID)
	if err != nil {
		return Tested{}, err
	}
	p, err := s.store.PublishEvent(ctx, ev)
	if err != nil {
		return Tested{}, err
	}
	if len(p.Deliveries) != 1 {
		return Tested{}, fmt.Errorf("test event %s has %d deliveries", ev.ID, len(p.Deliveries))
	}
	tested := Tested{EventID: ev.ID, DeliveryID: p.Deliveries[0].ID}
	// The one attempt may take its whole activity timeout; starting it gets a little more.
	waitCtx, cancel := context.WithTimeout(ctx, s.cfg.Schedule.ActivityTimeout()+startTimeout)
	defer cancel()
	run, err := s.dispatch(waitCtx, p)
	if err != nil {
		s.logger.WarnContext(ctx, "test event not started", "event_id", ev.ID, "err", err)
		return tested, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := run.Get(waitCtx, nil); err != nil {
		s.logger.WarnContext(ctx, "test event did not finish", "event_id", ev.ID, "err", err)
		return tested, fmt.Errorf("%w: %v", ErrTestUnfinished, err)
	}
	return tested, nil
}

// TestWait is how long Test may take, for the deadline of the request that calls it: the
// wait for the attempt, and room to store the test event before and answer after.
func (s *Service) TestWait() time.Duration {
	return s.cfg.Schedule.ActivityTimeout() + 2*startTimeout
}

// CheckEngine reports whether Temporal answers, for readiness checks.
func (s *Service) CheckEngine(ctx context.Context) error {
	_, err := s.client.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}
