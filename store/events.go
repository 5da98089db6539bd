package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

const eventColumns = `id, event_type, survey_id, body, target_webhook_id, created_at, dispatched_at, fanned_out_at`

const insertEventQuery = `
INSERT INTO events (id, event_type, survey_id, body, target_webhook_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO NOTHING
RETURNING ` + eventColumns

const getEventQuery = `SELECT ` + eventColumns + ` FROM events WHERE id = $1`

// markEventDispatchedQuery marks one event. "(dispatched_at IS NULL) IS TRUE" says
// "dispatched_at IS NULL" in a form that keeps PostgreSQL from reading the partial index of
// undispatched events instead of the primary key: that index is tiny by its statistics but
// holds an entry for every event published since the last vacuum, and plans went through
// it (465 ms for 2,652 marks in pg_stat_statements, 260 ms for 2,747 through the primary
// key, in two bench passes of 3,000 events).
const markEventDispatchedQuery = `
UPDATE events SET dispatched_at = now() WHERE id = $1 AND (dispatched_at IS NULL) IS TRUE`

// The dispatcher skips rows another dispatcher holds, so several API processes can run it.
const lockUndispatchedEventsQuery = `
SELECT ` + eventColumns + ` FROM events
WHERE dispatched_at IS NULL AND created_at < $1
ORDER BY created_at, id
LIMIT $2
FOR UPDATE SKIP LOCKED`

// InsertEvent stores ev, without deliveries, unless an event with its id exists; FanOut
// makes its deliveries. The API publishes with PublishEvent instead: InsertEvent stores an
// event as versions before PublishEvent did, which the tests of the FanOut path need. It
// returns the stored event and whether this call created it; an existing event is returned
// unchanged (publishers retry, and the same event_id is one event).
func (s *Store) InsertEvent(ctx context.Context, ev Event) (Event, bool, error) {
	var stored Event
	err := s.db.GetContext(ctx, &stored, insertEventQuery,
		ev.ID, ev.EventType, ev.SurveyID, ev.Body, ev.TargetWebhookID)
	if err == nil {
		return stored, true, nil
	}
	if err = mapError(err); err != ErrNotFound {
		return Event{}, false, fmt.Errorf("insert event: %w", err)
	}
	// ON CONFLICT DO NOTHING returned no row: the event exists.
	existing, err := s.GetEvent(ctx, ev.ID)
	if err != nil {
		return Event{}, false, err
	}
	return existing, false, nil
}

// GetEvent returns the event with id, or ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, id string) (Event, error) {
	var ev Event
	if err := s.db.GetContext(ctx, &ev, getEventQuery, id); err != nil {
		return Event{}, fmt.Errorf("get event %s: %w", id, mapError(err))
	}
	return ev, nil
}

// DispatchPending calls dispatch for up to limit events created before olderThan whose
// workflow has not been started, oldest first, holding a row lock on each so that
// concurrent dispatchers skip it. An event is marked dispatched when dispatch returns nil.
// It returns how many events were dispatched.
func (s *Store) DispatchPending(ctx context.Context, olderThan time.Time, limit int, dispatch func(context.Context, Event) error) (int, error) {
	dispatched := 0
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var events []Event
		if err := tx.SelectContext(ctx, &events, lockUndispatchedEventsQuery, olderThan, limit); err != nil {
			return fmt.Errorf("lock undispatched events: %w", err)
		}
		for _, ev := range events {
			if err := dispatch(ctx, ev); err != nil {
				// Keep order: a later event must not overtake one that could not start.
				return fmt.Errorf("dispatch event %s: %w", ev.ID, err)
			}
			if _, err := tx.ExecContext(ctx, markEventDispatchedQuery, ev.ID); err != nil {
				return fmt.Errorf("mark event %s dispatched: %w", ev.ID, err)
			}
			dispatched++
		}
		return nil
	})
	return dispatched, err
}

// Subscription is a webhook an event is delivered to, as the delivery workflow sees it.
type Subscription struct {
	DeliveryID   uuid.UUID `db:"id"`
	WebhookID    uuid.UUID `db:"webhook_id"`
	URL          string    `db:"url"`
	Status       string    `db:"status"`
	AttemptCount int       `db:"attempt_count"`
}

// fanOutQuery claims the event's fan-out and inserts its deliveries in one statement, so no
// transaction spans round trips: the claim marks the event fanned out (and dispatched: its
// workflow is running, so the API does not spend a statement on saying so), and the
// deliveries ($2, $3: ids and webhook ids, pairwise) go in only when this statement made
// the claim. It returns the deliveries it inserted: none means another call fanned the
// event out first (the claim waits for that call's commit, then finds the event claimed).
const fanOutQuery = `
WITH claim AS (
	UPDATE events SET fanned_out_at = now(), dispatched_at = coalesce(dispatched_at, now())
	WHERE id = $1 AND fanned_out_at IS NULL
	RETURNING id
), inserted AS (
	INSERT INTO deliveries (id, event_id, webhook_id)
	SELECT d.id, claim.id, d.webhook_id
	FROM claim, unnest($2::uuid[], $3::uuid[]) AS d (id, webhook_id)
	RETURNING id, webhook_id, status, attempt_count
)
SELECT i.id, i.webhook_id, w.url, i.status, i.attempt_count
FROM inserted i JOIN webhooks w ON w.id = i.webhook_id
ORDER BY i.id`

// claimFanOutQuery marks the event fanned out when it has no delivery to insert.
const claimFanOutQuery = `
UPDATE events SET fanned_out_at = now(), dispatched_at = coalesce(dispatched_at, now())
WHERE id = $1 AND fanned_out_at IS NULL
RETURNING id`

const listEventSubscriptionsQuery = `
SELECT d.id, d.webhook_id, w.url, d.status, d.attempt_count
FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id
WHERE d.event_id = $1
ORDER BY d.id`

// FanOut creates the event's deliveries, once per event: the first call passes the event to
// pick, which returns the webhook ids to deliver to; later calls (a later run of the event's
// workflow) keep the deliveries made then. It returns every delivery of the event.
//
// pick runs before the claim, not inside a transaction: it queries through the pool, and a
// transaction that waits for a second connection deadlocks as soon as concurrent fan-outs
// hold every connection of the pool (seen with a burst of events after a Temporal outage).
// Two concurrent calls may both pick; the claim lets only the first one insert, and the
// other lists what it inserted. The first fan-out takes three statements: the event,
// pick's, and the claim with its inserts. PublishEvent stores events fanned out already, in
// one statement; FanOut fans out the events stored without (InsertEvent; versions before
// PublishEvent) and lists the deliveries of the others.
func (s *Store) FanOut(ctx context.Context, eventID string, pick func(context.Context, Event) ([]uuid.UUID, error)) ([]Subscription, error) {
	ev, err := s.GetEvent(ctx, eventID)
	if err != nil {
		return nil, err
	}
	if ev.FannedOutAt == nil {
		webhookIDs, err := pick(ctx, ev)
		if err != nil {
			return nil, err
		}
		subs, claimed, err := s.claimFanOut(ctx, eventID, webhookIDs)
		if err != nil || claimed {
			return subs, err
		}
		// Another call fanned the event out between GetEvent and the claim: its
		// deliveries are committed (the claim waited for them), and listed below.
	}
	subs := []Subscription{}
	if err := s.db.SelectContext(ctx, &subs, listEventSubscriptionsQuery, eventID); err != nil {
		return nil, fmt.Errorf("list deliveries of event %s: %w", eventID, err)
	}
	return subs, nil
}

// claimFanOut marks the event fanned out and inserts one delivery per webhook, in one
// statement, unless another call did first; it returns the deliveries inserted and
// whether this call made the claim.
func (s *Store) claimFanOut(ctx context.Context, eventID string, webhookIDs []uuid.UUID) ([]Subscription, bool, error) {
	if len(webhookIDs) == 0 {
		var claimed []string
		if err := s.db.SelectContext(ctx, &claimed, claimFanOutQuery, eventID); err != nil {
			return nil, false, fmt.Errorf("claim fan-out of event %s: %w", eventID, err)
		}
		return []Subscription{}, len(claimed) == 1, nil
	}
	ids := make([]string, len(webhookIDs))
	hooks := make([]string, len(webhookIDs))
	for i, webhookID := range webhookIDs {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, false, fmt.Errorf("new delivery id: %w", err)
		}
		ids[i], hooks[i] = id.String(), webhookID.String()
	}
	subs := []Subscription{}
	if err := s.db.SelectContext(ctx, &subs, fanOutQuery, eventID, pq.Array(ids), pq.Array(hooks)); err != nil {
		return nil, false, fmt.Errorf("fan out event %s: %w", eventID, mapError(err))
	}
	return subs, len(subs) > 0, nil
}
