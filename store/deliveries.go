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

// DeliveryFilter narrows a listing of deliveries; zero fields filter nothing. EventType,
// SurveyID, Since and Until are their event's.
type DeliveryFilter struct {
	Status, EventType, SurveyID string
	Since, Until                time.Time
}

// deliveryPageQuery returns the statement and arguments for one page of the deliveries whose
// owner column (d.webhook_id or d.account_id) is owner, newest first, that pass f and come
// after the page's cursor. Each combination of filters gets its own statement text: a single
// text whose optional filters are "$n IS NULL OR ..." gets a generic plan from PostgreSQL that
// applies the status and the cursor row by row, while here both are conditions on
// deliveries_{webhook,account}_status_idx or deliveries_{webhook,account}_idx. The event's
// filters apply to the joined event as the index walk finds each delivery.
func deliveryPageQuery(column string, owner any, f DeliveryFilter, page Page) (string, []any) {
	var q strings.Builder
	q.WriteString("SELECT " + deliveryColumns + "\nFROM deliveries d JOIN events e ON e.id = d.event_id\nWHERE " + column + " = $1")
	args := []any{owner}
	cond := func(format string, v any) {
		args = append(args, v)
		fmt.Fprintf(&q, format, len(args))
	}
	if f.Status != "" {
		cond(" AND d.status = $%d", f.Status)
	}
	if f.EventType != "" {
		cond(" AND e.event_type = $%d", f.EventType)
	}
	if f.SurveyID != "" {
		cond(" AND e.survey_id = $%d", f.SurveyID)
	}
	if !f.Since.IsZero() {
		cond(" AND e.created_at >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		cond(" AND e.created_at < $%d", f.Until)
	}
	if page.After != nil {
		cond(" AND d.id < $%d", *page.After)
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

// ListWebhookDeliveries returns one page of a webhook's deliveries that pass f, newest first.
func (s *Store) ListWebhookDeliveries(ctx context.Context, webhookID uuid.UUID, f DeliveryFilter, page Page) ([]Delivery, error) {
	deliveries := []Delivery{}
	query, args := deliveryPageQuery("d.webhook_id", webhookID, f, page)
	err := s.q.SelectContext(ctx, &deliveries, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries of webhook %s: %w", webhookID, err)
	}
	return deliveries, nil
}

// ListAccountDeliveries returns one page of an account's deliveries to all its webhooks that
// pass f, newest first.
func (s *Store) ListAccountDeliveries(ctx context.Context, accountID string, f DeliveryFilter, page Page) ([]Delivery, error) {
	deliveries := []Delivery{}
	query, args := deliveryPageQuery("d.account_id", accountID, f, page)
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
	// PausedUntil is when the webhook's pause ends (PauseWebhook), nil when none was asked.
	PausedUntil *time.Time `db:"paused_until"`
	Webhook     Webhook    `db:"-"`
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
	w.is_active AS "webhook.is_active", w.rate_limit AS "webhook.rate_limit", w.rate_burst AS "webhook.rate_burst",
	w.signing AS "webhook.signing", w.secret_sealed AS "webhook.secret_sealed",
	w.previous_secret_sealed AS "webhook.previous_secret_sealed", w.signing_key_sealed AS "webhook.signing_key_sealed",
	w.previous_signing_key_sealed AS "webhook.previous_signing_key_sealed",
	w.previous_secret_expires_at AS "webhook.previous_secret_expires_at",
	w.created_at AS "webhook.created_at", w.updated_at AS "webhook.updated_at"
	, t.paused_until
FROM deliveries d
JOIN events e ON e.id = d.event_id
JOIN webhooks w ON w.id = d.webhook_id
LEFT JOIN webhook_throttle t ON t.webhook_id = w.id
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

// attemptRow is an AttemptRecord as recordAttemptsQuery's JSON rows name its columns.
type attemptRow struct {
	AttemptID       uuid.UUID  `json:"attempt_id"`
	DeliveryID      uuid.UUID  `json:"delivery_id"`
	Number          int        `json:"number"`
	Trigger         string     `json:"trigger"`
	StartedAt       time.Time  `json:"started_at"`
	DurationMS      float64    `json:"duration_ms"`
	RequestURL      string     `json:"request_url"`
	RequestHeaders  jsonDoc    `json:"request_headers"`
	RequestBody     string     `json:"request_body"`
	ResponseStatus  *int       `json:"response_status"`
	ResponseHeaders jsonDoc    `json:"response_headers"`
	ResponseBody    string     `json:"response_body"`
	Error           string     `json:"error"`
	Prior           int        `json:"prior"`
	Status          string     `json:"status"`
	NextAttemptAt   *time.Time `json:"next_attempt_at"`
	LastStatusCode  *int       `json:"last_status_code"`
	LastError       string     `json:"last_error"`
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

// LatencyBounds are the upper bounds, in milliseconds, of the latency classes a webhook's
// hourly stats count: class i holds the attempts that took less than LatencyBounds[i] and
// not less than the bound before; the last class, one past these, holds the slower ones.
var LatencyBounds = []float64{10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// recordAttemptsQuery stores attempts, given as one JSON array of attemptRow ($1), with
// their deliveries' new state: each when its delivery's attempt count is still its prior
// one. Two attempts of one delivery from the same count update the delivery once; only that
// one is stored. In the same statement, each stored attempt counts in its webhook's health
// (the streak of failures, the last success and failure) and in its hourly stats, latency
// classes by LatencyBounds ($2); an attempt succeeds when it got a 2xx answer. Health and
// stats rows are written in key order, so that concurrent statements lock them in the same
// order. It returns each stored attempt with its webhook's streak after the statement.
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
	RETURNING v.attempt_id, d.webhook_id
), stored AS (
	INSERT INTO delivery_attempts (id, delivery_id, number, trigger, started_at, duration_ms,
		request_url, request_headers, request_body, response_status, response_headers,
		response_body, error)
	SELECT v.attempt_id, v.delivery_id, v.number, v.trigger, v.started_at, v.duration_ms,
		v.request_url, v.request_headers, v.request_body, v.response_status, v.response_headers,
		v.response_body, v.error
	FROM v JOIN updated USING (attempt_id)
	RETURNING id
), a AS (
	SELECT u.webhook_id, v.started_at, v.duration_ms, v.response_status, v.error,
		coalesce(v.response_status BETWEEN 200 AND 299, false) AS ok
	FROM v JOIN updated u USING (attempt_id)
), streak AS (
	-- Per webhook: the batch's last success, and its failures after that success.
	SELECT webhook_id,
		max(started_at) FILTER (WHERE ok) AS last_success_at,
		max(started_at) FILTER (WHERE NOT ok) AS last_failure_at,
		count(*) FILTER (WHERE NOT ok AND started_at > last_ok) AS failures_after,
		min(started_at) FILTER (WHERE NOT ok AND started_at > last_ok) AS failing_after,
		(array_agg(response_status ORDER BY started_at DESC) FILTER (WHERE NOT ok))[1] AS last_failure_status,
		(array_agg(error ORDER BY started_at DESC) FILTER (WHERE NOT ok))[1] AS last_failure_error
	FROM (SELECT *, coalesce(max(started_at) FILTER (WHERE ok) OVER (PARTITION BY webhook_id), '-infinity') AS last_ok FROM a) a
	GROUP BY webhook_id
), health AS (
	INSERT INTO webhook_health AS h (webhook_id, consecutive_failures, failing_since, last_success_at,
		last_failure_at, last_failure_status, last_failure_error)
	SELECT webhook_id, failures_after, failing_after, last_success_at, last_failure_at,
		last_failure_status, coalesce(last_failure_error, '')
	FROM streak ORDER BY webhook_id
	ON CONFLICT (webhook_id) DO UPDATE SET
		consecutive_failures = CASE WHEN excluded.last_success_at IS NULL
			THEN h.consecutive_failures + excluded.consecutive_failures ELSE excluded.consecutive_failures END,
		failing_since = CASE WHEN excluded.last_success_at IS NULL
			THEN coalesce(h.failing_since, excluded.failing_since) ELSE excluded.failing_since END,
		last_success_at = greatest(h.last_success_at, excluded.last_success_at),
		last_failure_at = greatest(h.last_failure_at, excluded.last_failure_at),
		last_failure_status = CASE WHEN excluded.last_failure_at IS NULL
			THEN h.last_failure_status ELSE excluded.last_failure_status END,
		last_failure_error = CASE WHEN excluded.last_failure_at IS NULL
			THEN h.last_failure_error ELSE excluded.last_failure_error END,
		updated_at = now()
	RETURNING webhook_id, consecutive_failures, failing_since
), hour AS (
	SELECT webhook_id, date_trunc('hour', started_at) AS bucket, count(*) AS attempts,
		count(*) FILTER (WHERE ok) AS successes, count(*) FILTER (WHERE NOT ok) AS failures
	FROM a GROUP BY 1, 2
), latency AS (
	SELECT webhook_id, date_trunc('hour', started_at) AS bucket,
		width_bucket(duration_ms, $2::float8[]) AS class, count(*) AS n
	FROM a GROUP BY 1, 2, 3
), stats AS (
	INSERT INTO webhook_stats AS s (webhook_id, bucket, attempts, successes, failures, latency_counts)
	SELECT hour.webhook_id, hour.bucket, hour.attempts, hour.successes, hour.failures,
		ARRAY(SELECT coalesce(sum(l.n), 0)::int FROM generate_series(0, cardinality($2::float8[])) AS c
			LEFT JOIN latency l ON l.webhook_id = hour.webhook_id AND l.bucket = hour.bucket AND l.class = c
			GROUP BY c ORDER BY c)
	FROM hour ORDER BY hour.webhook_id, hour.bucket
	ON CONFLICT (webhook_id, bucket) DO UPDATE SET
		attempts = s.attempts + excluded.attempts,
		successes = s.successes + excluded.successes,
		failures = s.failures + excluded.failures,
		latency_counts = ARRAY(SELECT coalesce(x, 0) + coalesce(y, 0)
			FROM unnest(s.latency_counts, excluded.latency_counts) AS t (x, y))
)
SELECT stored.id AS attempt_id, health.webhook_id, health.consecutive_failures, health.failing_since,
	CASE WHEN streak.last_success_at IS NULL THEN health.consecutive_failures - streak.failures_after ELSE 0 END
		AS failures_before
FROM stored
JOIN updated ON updated.attempt_id = stored.id
JOIN health ON health.webhook_id = updated.webhook_id
JOIN streak ON streak.webhook_id = updated.webhook_id`

// Streak is a webhook's run of failed attempts, as recorded.
type Streak struct {
	WebhookID uuid.UUID `db:"webhook_id"`
	// ConsecutiveFailures counts the failed attempts since the last successful one.
	ConsecutiveFailures int `db:"consecutive_failures"`
	// FailingSince is when the first of them started; nil when there is none.
	FailingSince *time.Time `db:"failing_since"`
	// FailuresBefore is ConsecutiveFailures before the statement that returned the streak
	// (0 when that statement recorded a success), so that a threshold is seen crossed once.
	FailuresBefore int `db:"failures_before"`
}

// RecordAttempt stores r's attempt as number r.Prior+1 with the delivery's new state, in
// one statement, when the delivery's attempt count is still r.Prior, and reports whether it
// did, with the webhook's streak after it. Numbers count every attempt of the delivery,
// manual ones included, so the schedule goes on from the real count.
func (s *Store) RecordAttempt(ctx context.Context, r AttemptRecord) (Streak, bool, error) {
	recorded, err := recordAttempts(ctx, s.q, []AttemptRecord{r})
	streak, ok := recorded[r.Attempt.ID]
	return streak, ok, err
}

// RecordAttempts is RecordAttempt for many records in one statement; it returns the
// attempts stored, by id, each with its webhook's streak after the statement.
func (s *Store) RecordAttempts(ctx context.Context, records []AttemptRecord) (map[uuid.UUID]Streak, error) {
	return recordAttempts(ctx, s.q, records)
}

// recordAttempts runs recordAttemptsQuery. The deliveries are updated in id order, so that
// concurrent statements lock the rows they share in the same order.
func recordAttempts(ctx context.Context, q sqlx.QueryerContext, records []AttemptRecord) (map[uuid.UUID]Streak, error) {
	rows := make([]attemptRow, len(records))
	for i, r := range records {
		rows[i] = newAttemptRow(r)
	}
	slices.SortFunc(rows, func(x, y attemptRow) int { return strings.Compare(x.DeliveryID.String(), y.DeliveryID.String()) })
	doc, err := json.Marshal(rows)
	if err != nil {
		return nil, fmt.Errorf("encode %d attempts: %w", len(rows), err)
	}
	var stored []struct {
		AttemptID uuid.UUID `db:"attempt_id"`
		Streak
	}
	if err := sqlx.SelectContext(ctx, q, &stored, recordAttemptsQuery, string(doc), LatencyBounds); err != nil {
		if len(rows) == 1 {
			return nil, fmt.Errorf("record attempt of delivery %s: %w", rows[0].DeliveryID, mapError(err))
		}
		return nil, fmt.Errorf("record %d attempts: %w", len(rows), mapError(err))
	}
	recorded := make(map[uuid.UUID]Streak, len(stored))
	for _, st := range stored {
		recorded[st.AttemptID] = st.Streak
	}
	return recorded, nil
}

const lockDeliveryQuery = `SELECT attempt_count FROM deliveries WHERE id = $1 FOR UPDATE`

// RecordAttemptRenumbered stores an attempt whose delivery's count changed since the
// attempt was numbered (another attempt was recorded meanwhile): under the delivery's row
// lock, it numbers the attempt from the current count and records it with the outcome
// decide returns for that number. ErrNotFound means the delivery is gone.
func (s *Store) RecordAttemptRenumbered(ctx context.Context, a Attempt, decide func(number int) Outcome) (int, Outcome, Streak, error) {
	var number int
	var outcome Outcome
	var streak Streak
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var count int
		if err := tx.GetContext(ctx, &count, lockDeliveryQuery, a.DeliveryID); err != nil {
			return fmt.Errorf("lock delivery %s: %w", a.DeliveryID, mapError(err))
		}
		number, outcome = count+1, decide(count+1)
		recorded, err := recordAttempts(ctx, tx, []AttemptRecord{{Attempt: a, Prior: count, Outcome: outcome}})
		if err != nil {
			return err
		}
		var ok bool
		if streak, ok = recorded[a.ID]; !ok {
			return fmt.Errorf("record attempt of delivery %s: its attempt count changed under its lock", a.DeliveryID)
		}
		return nil
	})
	return number, outcome, streak, err
}

const failDeliveryQuery = `
UPDATE deliveries SET status = 'failed', next_attempt_at = NULL, last_error = $2, updated_at = now()
WHERE id = $1 AND status IN ('pending', 'retrying')`

// FailDelivery ends a delivery that will get no further attempt (its webhook was
// deactivated), recording why; a finished one (delivered, failed, skipped) stays as it is.
func (s *Store) FailDelivery(ctx context.Context, deliveryID uuid.UUID, reason string) error {
	if _, err := s.q.ExecContext(ctx, failDeliveryQuery, deliveryID, reason); err != nil {
		return fmt.Errorf("fail delivery %s: %w", deliveryID, err)
	}
	return nil
}
