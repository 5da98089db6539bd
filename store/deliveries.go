package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const deliveryColumns = `d.id, d.event_id, d.webhook_id, d.status, d.attempt_count, d.next_attempt_at,
	d.last_status_code, d.last_error, d.created_at, d.updated_at, d.delivered_at, e.event_type`

const listEventDeliveriesQuery = `
SELECT ` + deliveryColumns + `
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE d.event_id = $1
ORDER BY d.id`

// Newest first; $2 = ” means every status; $3 is the cursor (the last id of the previous
// page) or NULL. Served by deliveries_webhook_status_idx / deliveries_webhook_id_idx.
const listWebhookDeliveriesQuery = `
SELECT ` + deliveryColumns + `
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE d.webhook_id = $1
  AND ($2 = '' OR d.status = $2)
  AND ($3::uuid IS NULL OR d.id < $3::uuid)
ORDER BY d.id DESC
LIMIT $4`

const getDeliveryQuery = `
SELECT ` + deliveryColumns + `
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE d.webhook_id = $1 AND d.id = $2`

// response_headers is NULL when no response came; database/sql cannot scan NULL into a
// json.RawMessage, so it reads as JSON null.
const attemptColumns = `id, delivery_id, number, trigger, started_at, duration_ms, request_url,
	request_headers, request_body, response_status, coalesce(response_headers, 'null') AS response_headers,
	response_body, error`

const listAttemptsQuery = `
SELECT ` + attemptColumns + ` FROM delivery_attempts WHERE delivery_id = $1 ORDER BY number`

// ListEventDeliveries returns every delivery of an event, oldest first.
func (s *Store) ListEventDeliveries(ctx context.Context, eventID string) ([]Delivery, error) {
	deliveries := []Delivery{}
	if err := s.db.SelectContext(ctx, &deliveries, listEventDeliveriesQuery, eventID); err != nil {
		return nil, fmt.Errorf("list deliveries of event %s: %w", eventID, err)
	}
	return deliveries, nil
}

// ListWebhookDeliveries returns one page of a webhook's deliveries, newest first, with the
// given status ("" for all).
func (s *Store) ListWebhookDeliveries(ctx context.Context, webhookID uuid.UUID, status string, page Page) ([]Delivery, error) {
	deliveries := []Delivery{}
	err := s.db.SelectContext(ctx, &deliveries, listWebhookDeliveriesQuery, webhookID, status, page.After, page.Limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of webhook %s: %w", webhookID, err)
	}
	return deliveries, nil
}

// GetDelivery returns a delivery of the webhook, or ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, webhookID, deliveryID uuid.UUID) (Delivery, error) {
	var d Delivery
	if err := s.db.GetContext(ctx, &d, getDeliveryQuery, webhookID, deliveryID); err != nil {
		return Delivery{}, fmt.Errorf("get delivery %s: %w", deliveryID, mapError(err))
	}
	return d, nil
}

// ListAttempts returns a delivery's attempts in order.
func (s *Store) ListAttempts(ctx context.Context, deliveryID uuid.UUID) ([]Attempt, error) {
	attempts := []Attempt{}
	if err := s.db.SelectContext(ctx, &attempts, listAttemptsQuery, deliveryID); err != nil {
		return nil, fmt.Errorf("list attempts of delivery %s: %w", deliveryID, err)
	}
	return attempts, nil
}

// Target is everything one attempt needs: the delivery, its webhook and the event's body.
type Target struct {
	DeliveryID    uuid.UUID  `db:"delivery_id"`
	Status        string     `db:"status"`
	AttemptCount  int        `db:"attempt_count"`
	NextAttemptAt *time.Time `db:"next_attempt_at"`
	EventID       string     `db:"event_id"`
	EventType     string     `db:"event_type"`
	Body          []byte     `db:"body"`
	Webhook       Webhook    `db:"webhook"`
}

const getTargetQuery = `
SELECT d.id AS delivery_id, d.status, d.attempt_count, d.next_attempt_at, e.id AS event_id, e.event_type, e.body,
	w.id AS "webhook.id", w.survey_id AS "webhook.survey_id", w.name AS "webhook.name",
	w.url AS "webhook.url", w.events AS "webhook.events", w.description AS "webhook.description",
	w.is_active AS "webhook.is_active", w.secret AS "webhook.secret",
	w.previous_secret AS "webhook.previous_secret",
	w.previous_secret_expires_at AS "webhook.previous_secret_expires_at",
	w.created_at AS "webhook.created_at", w.updated_at AS "webhook.updated_at"
FROM deliveries d
JOIN events e ON e.id = d.event_id
JOIN webhooks w ON w.id = d.webhook_id
WHERE d.id = $1`

// GetTarget loads what an attempt of the delivery needs in one round trip. ErrNotFound means
// the delivery is gone (its webhook was deleted).
func (s *Store) GetTarget(ctx context.Context, deliveryID uuid.UUID) (Target, error) {
	var t Target
	if err := s.db.GetContext(ctx, &t, getTargetQuery, deliveryID); err != nil {
		return Target{}, fmt.Errorf("get delivery target %s: %w", deliveryID, mapError(err))
	}
	return t, nil
}

// Outcome is a delivery's state after an attempt.
type Outcome struct {
	Status         string
	NextAttemptAt  *time.Time
	LastStatusCode *int
	LastError      string
}

const lockDeliveryQuery = `SELECT attempt_count FROM deliveries WHERE id = $1 FOR UPDATE`

// recordAttemptQuery stores an attempt and the delivery's new state in one statement when
// the delivery's attempt count is still the one the attempt was numbered from ($14); it
// returns no row when another attempt got in first.
const recordAttemptQuery = `
WITH delivery AS (
	UPDATE deliveries SET
		attempt_count = $3,
		status = $15,
		next_attempt_at = $16,
		last_status_code = $17,
		last_error = $18,
		delivered_at = CASE WHEN $15 = 'delivered' THEN coalesce(delivered_at, now()) ELSE delivered_at END,
		updated_at = now()
	WHERE id = $2 AND attempt_count = $14
	RETURNING id
)
INSERT INTO delivery_attempts (id, delivery_id, number, trigger, started_at, duration_ms,
	request_url, request_headers, request_body, response_status, response_headers,
	response_body, error)
SELECT $1, delivery.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM delivery
RETURNING number`

// RecordAttempt numbers and stores an attempt of its delivery and updates the delivery with
// the outcome decide returns for that number, atomically. Numbers count every attempt of
// the delivery, manual ones included, so the retry schedule goes on from the real count.
// prior is the attempt count the caller read before the attempt: while it is still
// current, one statement does it all, shared with the attempts other calls record at the
// same time (attemptbatch.go); otherwise (another attempt was recorded meanwhile) the
// delivery is locked and the attempt numbered again. ErrNotFound means the delivery is
// gone.
func (s *Store) RecordAttempt(ctx context.Context, a Attempt, prior int, decide func(number int) Outcome) (int, Outcome, error) {
	if a.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return 0, Outcome{}, fmt.Errorf("new attempt id: %w", err)
		}
		a.ID = id
	}
	queued := &queuedAttempt{attempt: a, prior: prior, outcome: decide(prior + 1)}
	s.attempts.record(queued)
	if queued.err != nil {
		return 0, Outcome{}, queued.err
	}
	if queued.recorded {
		return prior + 1, queued.outcome, nil
	}
	var number int
	var outcome Outcome
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var count int
		if err := tx.GetContext(ctx, &count, lockDeliveryQuery, a.DeliveryID); err != nil {
			return fmt.Errorf("lock delivery %s: %w", a.DeliveryID, mapError(err))
		}
		number, outcome = count+1, decide(count+1)
		recorded, err := recordAttemptRow(ctx, tx, a, count, outcome)
		if err == nil && !recorded {
			err = fmt.Errorf("record attempt of delivery %s: its attempt count changed under its lock", a.DeliveryID)
		}
		return err
	})
	return number, outcome, err
}

// recordAttemptRow stores a as attempt prior+1 with the delivery's new state if the
// delivery's count is still prior, and reports whether it did.
func recordAttemptRow(ctx context.Context, q sqlx.QueryerContext, a Attempt, prior int, outcome Outcome) (bool, error) {
	// JSON goes as text, which jsonb takes as is from any driver (lib/pq sent []byte as bytea).
	var got []int
	err := sqlx.SelectContext(ctx, q, &got, recordAttemptQuery, a.ID, a.DeliveryID, prior+1, a.Trigger,
		a.StartedAt, a.DurationMS, a.RequestURL, jsonText(a.RequestHeaders), a.RequestBody,
		a.ResponseStatus, jsonText(a.ResponseHeaders), a.ResponseBody, a.Error,
		prior, outcome.Status, outcome.NextAttemptAt, outcome.LastStatusCode, outcome.LastError)
	if err != nil {
		return false, fmt.Errorf("record attempt of delivery %s: %w", a.DeliveryID, mapError(err))
	}
	return len(got) == 1, nil
}

const failDeliveryQuery = `
UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, last_error = $2, updated_at = now()
WHERE id = $1 AND status <> 'delivered'`

// FailDelivery ends a delivery that will get no further attempt (its webhook was
// deactivated), recording why.
func (s *Store) FailDelivery(ctx context.Context, deliveryID uuid.UUID, reason string) error {
	if _, err := s.db.ExecContext(ctx, failDeliveryQuery, deliveryID, reason); err != nil {
		return fmt.Errorf("fail delivery %s: %w", deliveryID, err)
	}
	return nil
}

// jsonText passes a JSON document as text, or NULL when empty.
func jsonText(doc []byte) *string {
	if len(doc) == 0 {
		return nil
	}
	s := string(doc)
	return &s
}
