package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
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

// publishEventQuery stores an event with one delivery per webhook it goes to, in one
// statement: a test event ($5, the webhook under test) to that webhook, active or not,
// when it is of the event's account (else nothing is stored);
// any other event to the active webhooks of its account ($7) subscribed to its type ($6:
// eventtype.MatchingPatterns), as they are at this moment: those of its survey, and the
// account-wide ones whose filter lets its survey through; a webhook surveyhooks disabled
// gets the delivery as skipped, one a person turned off gets none. It stores nothing when an event
// with its id exists (no row comes back). Each branch of the webhook pick keeps its own
// index (the primary key, webhooks_scope_idx twice) whatever the plan.
const publishEventQuery = `
WITH e AS (
	INSERT INTO events (id, account_id, event_type, survey_id, body, target_webhook_id)
	SELECT $1, $7, $2, $3, $4, $5
	WHERE $5::uuid IS NULL OR EXISTS (SELECT FROM webhooks WHERE id = $5::uuid AND account_id = $7)
	ON CONFLICT (id) DO NOTHING
	RETURNING ` + eventColumns + `
), picked AS (
	SELECT w.id, w.url, 'pending' AS status FROM webhooks w WHERE w.id = $5::uuid AND w.account_id = $7
	UNION ALL
	SELECT w.id, w.url, CASE WHEN w.is_active THEN 'pending' ELSE 'skipped' END FROM webhooks w
	WHERE $5::uuid IS NULL AND $3 <> '' AND w.account_id = $7 AND coalesce(w.survey_id, '') = $3
	  AND (w.is_active OR w.disabled_at IS NOT NULL) AND w.events && $6::text[]
	UNION ALL
	SELECT w.id, w.url, CASE WHEN w.is_active THEN 'pending' ELSE 'skipped' END FROM webhooks w
	WHERE $5::uuid IS NULL AND w.account_id = $7 AND coalesce(w.survey_id, '') = ''
	  AND (w.survey_ids IS NULL OR $3 = ANY (w.survey_ids))
	  AND (w.is_active OR w.disabled_at IS NOT NULL) AND w.events && $6::text[]
), d AS (
	INSERT INTO deliveries (id, account_id, event_id, webhook_id, status)
	SELECT ` + uuidV7SQL + `, e.account_id, e.id, picked.id, picked.status
	FROM e, picked
	RETURNING id, webhook_id, status
)
SELECT e.id, e.account_id, e.event_type, e.survey_id, e.body, e.target_webhook_id, e.created_at,
	e.dispatched_at, e.seq, d.id, d.webhook_id, picked.url, d.status
FROM e LEFT JOIN (d JOIN picked ON picked.id = d.webhook_id) ON true
ORDER BY d.id`

// Published is what PublishEvent stored.
type Published struct {
	Event Event
	// Created is false when an event with the id existed: Event is that one, unchanged, and
	// Deliveries is nil.
	Created bool
	// Deliveries are the deliveries made with the event, in id order.
	Deliveries []EventDelivery
}

// EventDelivery is one delivery of an event, with its webhook's URL.
type EventDelivery struct {
	ID        uuid.UUID `db:"id"`
	WebhookID uuid.UUID `db:"webhook_id"`
	URL       string    `db:"url"`
	Status    string    `db:"status"`
}

// PublishEvent stores ev with its deliveries, in one statement, unless an event with its id
// exists (publishers retry, and the same event_id is one event). A test event (with a
// TargetWebhookID) goes to that webhook of its account; any other to the active webhooks
// of its account subscribed to its type: its survey's and the account-wide ones whose
// filter lets its survey through. The event is not marked dispatched (MarkDispatched).
func (s *Store) PublishEvent(ctx context.Context, ev Event) (Published, error) {
	p, err := s.publishOnce(ctx, ev)
	if ev.TargetWebhookID != nil && isForeignKeyViolation(err, eventsTargetWebhookFK, deliveriesWebhookFK) {
		// The webhook under test was deleted meanwhile.
		return Published{}, fmt.Errorf("publish event %s: webhook %s: %w", ev.ID, *ev.TargetWebhookID, ErrNotFound)
	}
	for try := 1; try < publishTries && isForeignKeyViolation(err, deliveriesWebhookFK); try++ {
		// A subscribed webhook was deleted while the statement ran: it stored nothing, and
		// the next try no longer sees the webhook.
		p, err = s.publishOnce(ctx, ev)
	}
	if err != nil {
		return Published{}, fmt.Errorf("publish event %s: %w", ev.ID, mapError(err))
	}
	if p.Created {
		if ev.TargetWebhookID != nil && len(p.Deliveries) == 0 {
			// The webhook under test does not exist (any more): the event went nowhere.
			return Published{}, fmt.Errorf("publish event %s: webhook %s: %w", ev.ID, *ev.TargetWebhookID, ErrNotFound)
		}
		return p, nil
	}
	// The insert did nothing: the event exists, or a test event names no webhook of its
	// account.
	existing, err := s.GetEvent(ctx, ev.ID)
	if ev.TargetWebhookID != nil && errors.Is(err, ErrNotFound) {
		return Published{}, fmt.Errorf("publish event %s: webhook %s: %w", ev.ID, *ev.TargetWebhookID, ErrNotFound)
	}
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

// publishOnce runs the publish statement once.
func (s *Store) publishOnce(ctx context.Context, ev Event) (Published, error) {
	rows, err := s.q.QueryContext(ctx, publishEventQuery, ev.ID, ev.EventType, ev.SurveyID, ev.Body,
		ev.TargetWebhookID, pq.Array(eventtype.MatchingPatterns(ev.EventType)), ev.AccountID)
	if err != nil {
		return Published{}, err
	}
	defer rows.Close()
	var p Published
	for rows.Next() {
		var (
			ev        Event
			id, hook  *uuid.UUID
			url, stat *string
		)
		err := rows.Scan(&ev.ID, &ev.AccountID, &ev.EventType, &ev.SurveyID, &ev.Body, &ev.TargetWebhookID,
			&ev.CreatedAt, &ev.DispatchedAt, &ev.Seq, &id, &hook, &url, &stat)
		if err != nil {
			return Published{}, fmt.Errorf("scan: %w", err)
		}
		p.Event, p.Created = ev, true
		if id != nil {
			p.Deliveries = append(p.Deliveries, EventDelivery{ID: *id, WebhookID: *hook, URL: *url, Status: *stat})
		}
	}
	if err := rows.Err(); err != nil {
		return Published{}, err
	}
	if p.Created && p.Deliveries == nil {
		p.Deliveries = []EventDelivery{}
	}
	return p, nil
}

// isForeignKeyViolation reports whether err is PostgreSQL's violation of one of the foreign
// key constraints.
func isForeignKeyViolation(err error, constraints ...string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503" && slices.Contains(constraints, pgErr.ConstraintName)
}

// markEventsDispatchedQuery marks a batch of events, found through the primary key as
// markEventDispatchedQuery finds one. A batch of one, the usual one at fan-out 1, goes with
// markEventDispatchedQuery instead: PostgreSQL plans this statement again on every call (its
// generic plan, costed for an array of many ids, never wins against a custom one), while
// the single-id one keeps a generic plan.
const markEventsDispatchedQuery = `
UPDATE events SET dispatched_at = now() WHERE id = ANY($1) AND (dispatched_at IS NULL) IS TRUE`

// MarkDispatched records that the events' workflows started, so that the outbox does not
// start them again.
func (s *Store) MarkDispatched(ctx context.Context, eventIDs ...string) error {
	var err error
	if len(eventIDs) == 1 {
		_, err = s.q.ExecContext(ctx, markEventDispatchedQuery, eventIDs[0])
	} else {
		_, err = s.q.ExecContext(ctx, markEventsDispatchedQuery, eventIDs)
	}
	if err != nil {
		return fmt.Errorf("mark %d events dispatched: %w", len(eventIDs), err)
	}
	return nil
}

// noticeWantedQuery says whether an event of one of the types ($2: the patterns that
// select it) with no survey would reach any webhook of the accounts ($1): an active one of
// no survey, whose filter lets every survey through, subscribed to it. Served by
// webhooks_scope_idx.
const noticeWantedQuery = `
SELECT EXISTS (
	SELECT FROM webhooks
	WHERE account_id = ANY ($1::text[]) AND coalesce(survey_id, '') = '' AND survey_ids IS NULL
	  AND is_active AND events && $2::text[])`

// NoticeWanted reports whether a notice of eventType published in any of the accounts
// would go to a webhook, so that a frequent notice nobody asked for is not stored at all.
func (s *Store) NoticeWanted(ctx context.Context, accounts []string, eventType string) (bool, error) {
	var wanted bool
	err := s.q.GetContext(ctx, &wanted, noticeWantedQuery, pq.StringArray(accounts), pq.Array(eventtype.MatchingPatterns(eventType)))
	if err != nil {
		return false, fmt.Errorf("who wants %s: %w", eventType, mapError(err))
	}
	return wanted, nil
}
