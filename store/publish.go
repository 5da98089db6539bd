package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/surveyhooks/surveyhooks/eventtype"
)

// uuidV7SQL makes a version 7 UUID in PostgreSQL (15 has no uuidv7()): the millisecond Unix
// time in the first 48 bits over a random version 4 UUID, whose version bits 0100 become
// 0111. Deliveries made by PublishEvent get these ids, so that they sort by creation time
// like the ones the application makes with uuid.NewV7 (the delivery lists page by id).
const uuidV7SQL = `encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
	placing substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
	FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid`

// publishColumns are an event's columns, then each new delivery's with its webhook's: NULL
// when the event has no delivery.
const publishColumns = `e.id, e.event_type, e.survey_id, e.body, e.target_webhook_id, e.created_at,
	e.dispatched_at, e.fanned_out_at,
	d.id, d.status, d.attempt_count,
	w.id, w.survey_id, w.name, w.url, w.events, w.description, w.is_active, w.secret,
	w.previous_secret, w.previous_secret_expires_at, w.created_at, w.updated_at`

// publishEventQuery stores an event fanned out to its survey's active webhooks subscribed to
// its type ($5: eventtype.MatchingPatterns), in one statement: nothing when an event with
// its id exists (no row comes back).
const publishEventQuery = `
WITH e AS (
	INSERT INTO events (id, event_type, survey_id, body, fanned_out_at)
	VALUES ($1, $2, $3, $4, now())
	ON CONFLICT (id) DO NOTHING
	RETURNING ` + eventColumns + `
), d AS (
	INSERT INTO deliveries (id, event_id, webhook_id)
	SELECT ` + uuidV7SQL + `, e.id, w.id
	FROM e, webhooks w
	WHERE w.survey_id = $3 AND w.is_active AND w.events && $5::text[]
	RETURNING id, webhook_id, status, attempt_count
)
SELECT ` + publishColumns + `
FROM e LEFT JOIN (d JOIN webhooks w ON w.id = d.webhook_id) ON true
ORDER BY d.id`

// publishTestEventQuery stores a test event fanned out to its one target webhook ($5),
// active or not: a webhook can be tested before it is activated.
const publishTestEventQuery = `
WITH e AS (
	INSERT INTO events (id, event_type, survey_id, body, target_webhook_id, fanned_out_at)
	VALUES ($1, $2, $3, $4, $5, now())
	ON CONFLICT (id) DO NOTHING
	RETURNING ` + eventColumns + `
), d AS (
	INSERT INTO deliveries (id, event_id, webhook_id)
	SELECT ` + uuidV7SQL + `, e.id, e.target_webhook_id
	FROM e
	RETURNING id, webhook_id, status, attempt_count
)
SELECT ` + publishColumns + `
FROM e LEFT JOIN (d JOIN webhooks w ON w.id = d.webhook_id) ON true`

// Published is what PublishEvent stored.
type Published struct {
	Event Event
	// Created is false when an event with the id existed: Event is that one, unchanged, and
	// Deliveries is nil.
	Created bool
	// Deliveries are the deliveries made with the event, in id order, each with everything
	// its first attempt needs.
	Deliveries []Target
}

// Subscriptions are the deliveries as the event's workflow takes them.
func (p Published) Subscriptions() []Subscription {
	subs := make([]Subscription, 0, len(p.Deliveries))
	for _, t := range p.Deliveries {
		subs = append(subs, Subscription{DeliveryID: t.DeliveryID, WebhookID: t.Webhook.ID,
			URL: t.Webhook.URL, Status: t.Status, AttemptCount: t.AttemptCount})
	}
	return subs
}

// PublishEvent stores ev with its deliveries, in one statement, unless an event with its id
// exists (publishers retry, and the same event_id is one event). A test event (with a
// TargetWebhookID) goes to that webhook; any other to the survey's active webhooks
// subscribed to its type, as they are at this moment. The event is stored fanned out, so
// that its workflow can start from Deliveries; it is not marked dispatched
// (MarkDispatched).
func (s *Store) PublishEvent(ctx context.Context, ev Event) (Published, error) {
	query, last := publishEventQuery, any(pq.Array(eventtype.MatchingPatterns(ev.EventType)))
	if ev.TargetWebhookID != nil {
		query, last = publishTestEventQuery, *ev.TargetWebhookID
	}
	p, err := s.publishOnce(ctx, query, ev, last)
	if ev.TargetWebhookID != nil && isForeignKeyViolation(err, eventsTargetWebhookFK, deliveriesWebhookFK) {
		// The webhook under test was deleted meanwhile.
		return Published{}, fmt.Errorf("publish event %s: webhook %s: %w", ev.ID, *ev.TargetWebhookID, ErrNotFound)
	}
	for try := 1; try < publishTries && isForeignKeyViolation(err, deliveriesWebhookFK); try++ {
		// A subscribed webhook was deleted while the statement ran: it stored nothing, and
		// the next try no longer sees the webhook.
		p, err = s.publishOnce(ctx, query, ev, last)
	}
	if err != nil {
		return Published{}, fmt.Errorf("publish event %s: %w", ev.ID, mapError(err))
	}
	if p.Created {
		return p, nil
	}
	// The insert did nothing: the event exists.
	existing, err := s.GetEvent(ctx, ev.ID)
	if err != nil {
		return Published{}, err
	}
	return Published{Event: existing}, nil
}

// publishTries bounds PublishEvent's tries when subscribed webhooks keep being deleted under
// it; each lost race needs a deletion that committed while the statement ran.
const publishTries = 3

// The foreign keys a webhook deleted while PublishEvent runs violates.
const (
	deliveriesWebhookFK   = "deliveries_webhook_id_fkey"
	eventsTargetWebhookFK = "events_target_webhook_id_fkey"
)

// publishOnce runs one publish statement.
func (s *Store) publishOnce(ctx context.Context, query string, ev Event, last any) (Published, error) {
	rows, err := s.db.QueryContext(ctx, query, ev.ID, ev.EventType, ev.SurveyID, ev.Body, last)
	if err != nil {
		return Published{}, err
	}
	return scanPublished(rows)
}

// isForeignKeyViolation reports whether err is PostgreSQL's violation of one of the foreign
// key constraints.
func isForeignKeyViolation(err error, constraints ...string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503" && slices.Contains(constraints, pgErr.ConstraintName)
}

// scanPublished reads publishEventQuery's rows: the event on each, and a delivery with its
// webhook on each but the row of an event without deliveries.
func scanPublished(rows *sql.Rows) (Published, error) {
	defer rows.Close()
	var p Published
	for rows.Next() {
		var (
			ev         Event
			deliveryID *uuid.UUID
			status     *string
			count      *int
			webhookID  *uuid.UUID
			surveyID   *string
			name       *string
			url        *string
			events     pq.StringArray
			desc       *string
			active     *bool
			secret     *string
			w          Webhook
			created    *time.Time
			updated    *time.Time
		)
		err := rows.Scan(&ev.ID, &ev.EventType, &ev.SurveyID, &ev.Body, &ev.TargetWebhookID, &ev.CreatedAt,
			&ev.DispatchedAt, &ev.FannedOutAt,
			&deliveryID, &status, &count,
			&webhookID, &surveyID, &name, &url, &events, &desc, &active, &secret,
			&w.PreviousSecret, &w.PreviousSecretExpiresAt, &created, &updated)
		if err != nil {
			return Published{}, fmt.Errorf("scan: %w", err)
		}
		p.Event, p.Created = ev, true
		if deliveryID == nil {
			continue
		}
		w.ID, w.SurveyID, w.Name, w.URL, w.Events = *webhookID, *surveyID, *name, *url, events
		w.Description, w.IsActive, w.Secret, w.CreatedAt, w.UpdatedAt = *desc, *active, *secret, *created, *updated
		p.Deliveries = append(p.Deliveries, Target{DeliveryID: *deliveryID, Status: *status, AttemptCount: *count,
			EventID: ev.ID, EventType: ev.EventType, Body: ev.Body, Webhook: w})
	}
	if err := rows.Err(); err != nil {
		return Published{}, err
	}
	if p.Created && p.Deliveries == nil {
		p.Deliveries = []Target{}
	}
	return p, nil
}

// Dispatch marks are sent in batches (coalescer): every publish marks its event once its
// workflow started.
const (
	maxDispatchFlushers = 2
	maxDispatchBatch    = 256
	// dispatchFlushTimeout bounds one statement; callers wait for it.
	dispatchFlushTimeout = 10 * time.Second
)

// markEventsDispatchedQuery marks a batch of events, found through the primary key as
// markEventDispatchedQuery finds one. A batch of one, the usual one at fan-out 1, goes with
// markEventDispatchedQuery instead: PostgreSQL plans this statement again on every call (its
// generic plan, costed for an array of many ids, never wins against a custom one), which
// took as long as running it (215 of 447 ms over 2,801 marks, in pg_stat_statements with
// track_planning), while the single-id one gets a generic plan after five calls on a
// connection.
const markEventsDispatchedQuery = `
UPDATE events SET dispatched_at = now() WHERE id = ANY($1) AND (dispatched_at IS NULL) IS TRUE`

// queuedMark is an event to mark dispatched; err is set before done is closed.
type queuedMark struct {
	eventID string
	err     error
	done    chan struct{}
}

// dispatchMarker groups the statements of concurrent MarkDispatched calls.
type dispatchMarker struct {
	db    *sqlx.DB
	queue coalescer[*queuedMark]
}

func newDispatchMarker(db *sqlx.DB) *dispatchMarker {
	m := &dispatchMarker{db: db}
	m.queue = coalescer[*queuedMark]{maxFlushers: maxDispatchFlushers, maxBatch: maxDispatchBatch, flush: m.flush}
	return m
}

func (m *dispatchMarker) flush(batch []*queuedMark) {
	ctx, cancel := context.WithTimeout(context.Background(), dispatchFlushTimeout)
	defer cancel()
	var err error
	if len(batch) == 1 {
		_, err = m.db.ExecContext(ctx, markEventDispatchedQuery, batch[0].eventID)
	} else {
		ids := make([]string, len(batch))
		for i, q := range batch {
			ids[i] = q.eventID
		}
		_, err = m.db.ExecContext(ctx, markEventsDispatchedQuery, ids)
	}
	if err != nil {
		err = fmt.Errorf("mark %d events dispatched: %w", len(batch), err)
	}
	for _, q := range batch {
		q.err = err
		close(q.done)
	}
}

// MarkDispatched records that the event's workflow started, so that the dispatcher does not
// start it again. Concurrent calls share one statement. A mark that fails only costs a
// second start later, which finds the workflow (or, once it closed, runs it again over
// deliveries that are all finished: nothing is sent twice).
func (s *Store) MarkDispatched(ctx context.Context, eventID string) error {
	q := &queuedMark{eventID: eventID, done: make(chan struct{})}
	s.dispatched.queue.add(q)
	select {
	case <-q.done:
		return q.err
	case <-ctx.Done():
		return fmt.Errorf("mark event %s dispatched: %w", eventID, ctx.Err())
	}
}
