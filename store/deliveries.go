package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const deliveryColumns = `d.id, d.account_id, d.event_id, d.webhook_id, d.status, d.attempt_count, d.next_attempt_at,
	d.last_status_code, d.last_error, d.created_at, d.updated_at, d.delivered_at, e.event_type`

const listEventDeliveriesQuery = `
SELECT ` + deliveryColumns + `
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE d.event_id = $1
ORDER BY d.id`

// deliveryPageQuery returns the statement and arguments for one page of the deliveries whose
// owner column (d.webhook_id or d.account_id) is owner, newest first, with the given status
// ("" for all) and after the page's cursor. Each combination of filters gets its own statement
// text: a single text whose optional filters are "$n IS NULL OR ..." gets a generic plan from
// PostgreSQL that applies the status and the cursor row by row, while here both are conditions on
// deliveries_{webhook,account}_status_idx or deliveries_{webhook,account}_idx.
func deliveryPageQuery(column string, owner any, status string, page Page) (string, []any) {
	var q strings.Builder
	q.WriteString("SELECT " + deliveryColumns + "\nFROM deliveries d JOIN events e ON e.id = d.event_id\nWHERE " + column + " = $1")
	args := []any{owner}
	if status != "" {
		args = append(args, status)
		fmt.Fprintf(&q, " AND d.status = $%d", len(args))
	}
	if page.After != nil {
		args = append(args, *page.After)
		fmt.Fprintf(&q, " AND d.id < $%d", len(args))
	}
	args = append(args, page.Limit)
	fmt.Fprintf(&q, "\nORDER BY d.id DESC\nLIMIT $%d", len(args))
	return q.String(), args
}

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
	if err := s.q.SelectContext(ctx, &deliveries, listEventDeliveriesQuery, eventID); err != nil {
		return nil, fmt.Errorf("list deliveries of event %s: %w", eventID, err)
	}
	return deliveries, nil
}

// ListWebhookDeliveries returns one page of a webhook's deliveries, newest first, with the
// given status ("" for all).
func (s *Store) ListWebhookDeliveries(ctx context.Context, webhookID uuid.UUID, status string, page Page) ([]Delivery, error) {
	deliveries := []Delivery{}
	query, args := deliveryPageQuery("d.webhook_id", webhookID, status, page)
	err := s.q.SelectContext(ctx, &deliveries, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of webhook %s: %w", webhookID, err)
	}
	return deliveries, nil
}

// ListAccountDeliveries returns one page of an account's deliveries to all its webhooks,
// newest first, with the given status ("" for all).
func (s *Store) ListAccountDeliveries(ctx context.Context, accountID, status string, page Page) ([]Delivery, error) {
	deliveries := []Delivery{}
	query, args := deliveryPageQuery("d.account_id", accountID, status, page)
	err := s.q.SelectContext(ctx, &deliveries, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of account %s: %w", accountID, err)
	}
	return deliveries, nil
}

// GetDelivery returns a delivery of the webhook, or ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, webhookID, deliveryID uuid.UUID) (Delivery, error) {
	var d Delivery
	if err := s.q.GetContext(ctx, &d, getDeliveryQuery, webhookID, deliveryID); err != nil {
		return Delivery{}, fmt.Errorf("get delivery %s: %w", deliveryID, mapError(err))
	}
	return d, nil
}

// ListAttempts returns a delivery's attempts in order.
func (s *Store) ListAttempts(ctx context.Context, deliveryID uuid.UUID) ([]Attempt, error) {
	attempts := []Attempt{}
	if err := s.q.SelectContext(ctx, &attempts, listAttemptsQuery, deliveryID); err != nil {
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
	Webhook       Webhook    `db:"-"`
}

// targetRow is a Target as read, with its webhook's secrets and signing keys sealed.
type targetRow struct {
	Target
	Hook webhookRow `db:"webhook"`
}

const getTargetQuery = `
SELECT d.id AS delivery_id, d.status, d.attempt_count, d.next_attempt_at, e.id AS event_id, e.event_type, e.body,
	w.id AS "webhook.id", w.account_id AS "webhook.account_id",
	coalesce(w.survey_id, '') AS "webhook.survey_id", w.survey_ids AS "webhook.survey_ids", w.name AS "webhook.name",
	w.url AS "webhook.url", w.events AS "webhook.events", w.description AS "webhook.description",
	w.is_active AS "webhook.is_active", w.signing AS "webhook.signing", w.secret_sealed AS "webhook.secret_sealed",
	w.previous_secret_sealed AS "webhook.previous_secret_sealed", w.signing_key_sealed AS "webhook.signing_key_sealed",
	w.previous_signing_key_sealed AS "webhook.previous_signing_key_sealed",
	w.previous_secret_expires_at AS "webhook.previous_secret_expires_at",
	w.created_at AS "webhook.created_at", w.updated_at AS "webhook.updated_at"
FROM deliveries d
JOIN events e ON e.id = d.event_id
JOIN webhooks w ON w.id = d.webhook_id
WHERE d.id = $1`

// GetTarget loads what an attempt of the delivery needs in one round trip. ErrNotFound means
// the delivery is gone (its webhook was deleted).
func (s *Store) GetTarget(ctx context.Context, deliveryID uuid.UUID) (Target, error) {
	var row targetRow
	if err := s.q.GetContext(ctx, &row, getTargetQuery, deliveryID); err != nil {
		return Target{}, fmt.Errorf("get delivery target %s: %w", deliveryID, mapError(err))
	}
	t := row.Target
	hook, err := s.open(row.Hook)
	if err != nil {
		return Target{}, fmt.Errorf("get delivery target %s: %w", deliveryID, err)
	}
	t.Webhook = hook
	return t, nil
}

// Outcome is a delivery's state after an attempt.
type Outcome struct {
	Status         string
	NextAttemptAt  *time.Time
	LastStatusCode *int
	LastError      string
}

// AttemptRecord is an attempt to store as number Prior+1 of its delivery, with the
// delivery's state after it, provided the delivery's attempt count is still Prior.
type AttemptRecord struct {
	Attempt Attempt
	Prior   int
	Outcome Outcome
}

// attemptRow is an AttemptRecord as recordAttemptQuery's named parameters and
// recordAttemptsQuery's JSON rows name its columns.
type attemptRow struct {
	AttemptID       uuid.UUID  `db:"attempt_id" json:"attempt_id"`
	DeliveryID      uuid.UUID  `db:"delivery_id" json:"delivery_id"`
	Number          int        `db:"number" json:"number"`
	Trigger         string     `db:"trigger" json:"trigger"`
	StartedAt       time.Time  `db:"started_at" json:"started_at"`
	DurationMS      float64    `db:"duration_ms" json:"duration_ms"`
	RequestURL      string     `db:"request_url" json:"request_url"`
	RequestHeaders  jsonDoc    `db:"request_headers" json:"request_headers"`
	RequestBody     string     `db:"request_body" json:"request_body"`
	ResponseStatus  *int       `db:"response_status" json:"response_status"`
	ResponseHeaders jsonDoc    `db:"response_headers" json:"response_headers"`
	ResponseBody    string     `db:"response_body" json:"response_body"`
	Error           string     `db:"error" json:"error"`
	Prior           int        `db:"prior" json:"prior"`
	Status          string     `db:"status" json:"status"`
	NextAttemptAt   *time.Time `db:"next_attempt_at" json:"next_attempt_at"`
	LastStatusCode  *int       `db:"last_status_code" json:"last_status_code"`
	LastError       string     `db:"last_error" json:"last_error"`
}

func newAttemptRow(r AttemptRecord) attemptRow {
	a, o := r.Attempt, r.Outcome
	return attemptRow{
		AttemptID: a.ID, DeliveryID: a.DeliveryID, Number: r.Prior + 1, Trigger: a.Trigger,
		StartedAt: a.StartedAt, DurationMS: a.DurationMS, RequestURL: a.RequestURL,
		RequestHeaders: jsonDoc(a.RequestHeaders), RequestBody: a.RequestBody,
		ResponseStatus: a.ResponseStatus, ResponseHeaders: jsonDoc(a.ResponseHeaders),
		ResponseBody: a.ResponseBody, Error: a.Error, Prior: r.Prior,
		Status: o.Status, NextAttemptAt: o.NextAttemptAt, LastStatusCode: o.LastStatusCode, LastError: o.LastError,
	}
}

// jsonDoc is a JSON document column: text to the driver, which jsonb takes as is whatever
// the driver, and itself inside JSON; NULL when empty.
type jsonDoc []byte

// Value implements driver.Valuer.
func (d jsonDoc) Value() (driver.Value, error) {
	if len(d) == 0 {
		return nil, nil
	}
	return string(d), nil
}

// MarshalJSON implements json.Marshaler.
func (d jsonDoc) MarshalJSON() ([]byte, error) {
	if len(d) == 0 {
		return []byte("null"), nil
	}
	return d, nil
}

// recordAttemptQuery stores an attempt and its delivery's new state in one statement when
// the delivery's attempt count is still :prior; it returns no row when another attempt got
// in first.
const recordAttemptQuery = `
WITH delivery AS (
	UPDATE deliveries SET
		attempt_count = :number,
		status = :status,
		next_attempt_at = :next_attempt_at,
		last_status_code = :last_status_code,
		last_error = :last_error,
		delivered_at = CASE WHEN :status = 'delivered' THEN coalesce(delivered_at, now()) ELSE delivered_at END,
		updated_at = now()
	WHERE id = :delivery_id AND attempt_count = :prior
	RETURNING id
)
INSERT INTO delivery_attempts (id, delivery_id, number, trigger, started_at, duration_ms,
	request_url, request_headers, request_body, response_status, response_headers,
	response_body, error)
SELECT :attempt_id, delivery.id, :number, :trigger, :started_at, :duration_ms,
	:request_url, :request_headers, :request_body, :response_status, :response_headers,
	:response_body, :error
FROM delivery
RETURNING number`

// recordAttemptsQuery is recordAttemptQuery for many attempts, given as one JSON array of
// attemptRow: each is stored when its delivery's attempt count is still its prior one. Two
// attempts of one delivery from the same count update the delivery once; only that one is
// stored and returned.
const recordAttemptsQuery = `
WITH v AS (
	SELECT * FROM jsonb_to_recordset($1::jsonb) AS v (attempt_id uuid, delivery_id uuid,
		number int, trigger text, started_at timestamptz, duration_ms float8, request_url text,
		request_headers jsonb, request_body text, response_status int, response_headers jsonb,
		response_body text, error text, prior int, status text, next_attempt_at timestamptz,
		last_status_code int, last_error text)
), updated AS (
	UPDATE deliveries d SET
		attempt_count = v.number,
		status = v.status,
		next_attempt_at = v.next_attempt_at,
		last_status_code = v.last_status_code,
		last_error = v.last_error,
		delivered_at = CASE WHEN v.status = 'delivered' THEN coalesce(d.delivered_at, now()) ELSE d.delivered_at END,
		updated_at = now()
	FROM v
	WHERE d.id = v.delivery_id AND d.attempt_count = v.prior
	RETURNING v.attempt_id
)
INSERT INTO delivery_attempts (id, delivery_id, number, trigger, started_at, duration_ms,
	request_url, request_headers, request_body, response_status, response_headers,
	response_body, error)
SELECT v.attempt_id, v.delivery_id, v.number, v.trigger, v.started_at, v.duration_ms,
	v.request_url, v.request_headers, v.request_body, v.response_status, v.response_headers,
	v.response_body, v.error
FROM v JOIN updated USING (attempt_id)
RETURNING id`

// RecordAttempt stores r's attempt as number r.Prior+1 with the delivery's new state, in
// one statement, when the delivery's attempt count is still r.Prior, and reports whether it
// did. Numbers count every attempt of the delivery, manual ones included, so the schedule
// goes on from the real count.
func (s *Store) RecordAttempt(ctx context.Context, r AttemptRecord) (bool, error) {
	return recordAttempt(ctx, s.q, r)
}

func recordAttempt(ctx context.Context, q sqlx.ExtContext, r AttemptRecord) (bool, error) {
	query, args, err := sqlx.Named(recordAttemptQuery, newAttemptRow(r))
	if err != nil {
		return false, fmt.Errorf("bind attempt: %w", err)
	}
	var got []int
	if err := sqlx.SelectContext(ctx, q, &got, q.Rebind(query), args...); err != nil {
		return false, fmt.Errorf("record attempt of delivery %s: %w", r.Attempt.DeliveryID, mapError(err))
	}
	return len(got) == 1, nil
}

// RecordAttempts is RecordAttempt for many records in one statement; it returns the ids of
// the attempts stored. The deliveries are updated in id order, so that concurrent calls
// lock the rows they share in the same order.
func (s *Store) RecordAttempts(ctx context.Context, records []AttemptRecord) (map[uuid.UUID]bool, error) {
	rows := make([]attemptRow, len(records))
	for i, r := range records {
		rows[i] = newAttemptRow(r)
	}
	slices.SortFunc(rows, func(x, y attemptRow) int { return strings.Compare(x.DeliveryID.String(), y.DeliveryID.String()) })
	doc, err := json.Marshal(rows)
	if err != nil {
		return nil, fmt.Errorf("encode %d attempts: %w", len(rows), err)
	}
	var stored []uuid.UUID
	if err := s.q.SelectContext(ctx, &stored, recordAttemptsQuery, string(doc)); err != nil {
		return nil, fmt.Errorf("record %d attempts: %w", len(rows), mapError(err))
	}
	recorded := make(map[uuid.UUID]bool, len(stored))
	for _, id := range stored {
		recorded[id] = true
	}
	return recorded, nil
}

const lockDeliveryQuery = `SELECT attempt_count FROM deliveries WHERE id = $1 FOR UPDATE`

// RecordAttemptRenumbered stores an attempt whose delivery's count changed since the
// attempt was numbered (another attempt was recorded meanwhile): under the delivery's row
// lock, it numbers the attempt from the current count and records it with the outcome
// decide returns for that number. ErrNotFound means the delivery is gone.
func (s *Store) RecordAttemptRenumbered(ctx context.Context, a Attempt, decide func(number int) Outcome) (int, Outcome, error) {
	var number int
	var outcome Outcome
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var count int
		if err := tx.GetContext(ctx, &count, lockDeliveryQuery, a.DeliveryID); err != nil {
			return fmt.Errorf("lock delivery %s: %w", a.DeliveryID, mapError(err))
		}
		number, outcome = count+1, decide(count+1)
		recorded, err := recordAttempt(ctx, tx, AttemptRecord{Attempt: a, Prior: count, Outcome: outcome})
		if err == nil && !recorded {
			err = fmt.Errorf("record attempt of delivery %s: its attempt count changed under its lock", a.DeliveryID)
		}
		return err
	})
	return number, outcome, err
}

const failDeliveryQuery = `
UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, last_error = $2, updated_at = now()
WHERE id = $1 AND status <> 'delivered'`

// FailDelivery ends a delivery that will get no further attempt (its webhook was
// deactivated), recording why.
func (s *Store) FailDelivery(ctx context.Context, deliveryID uuid.UUID, reason string) error {
	if _, err := s.q.ExecContext(ctx, failDeliveryQuery, deliveryID, reason); err != nil {
		return fmt.Errorf("fail delivery %s: %w", deliveryID, err)
	}
	return nil
}
