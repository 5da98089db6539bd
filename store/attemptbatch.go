package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// Attempts are recorded in batches (coalescer): an event's deliveries are attempted side
// by side and finish at about the same time.
const (
	// maxAttemptFlushers bounds the attempt statements in flight from one Store.
	maxAttemptFlushers = 2
	// maxAttemptBatch bounds the attempts of one statement (18 arrays of that length).
	maxAttemptBatch = 128
	// attemptFlushTimeout bounds one statement. Callers wait for it whatever their own
	// context says: an attempt a caller gave up on might be recorded all the same, and would
	// then be counted twice when its activity is retried.
	attemptFlushTimeout = 30 * time.Second
)

// queuedAttempt is an attempt waiting for a batch, numbered prior+1 with its outcome.
type queuedAttempt struct {
	attempt Attempt
	prior   int
	outcome Outcome
	// Set by the flush before done is closed: whether the fast path recorded the attempt
	// (false when another attempt of the delivery got in first), or why it failed.
	recorded bool
	err      error
	done     chan struct{}
}

// attemptBatcher groups the fast-path statements of concurrent RecordAttempt calls.
type attemptBatcher struct {
	db *sqlx.DB
	// observe, when set (tests, before any attempt), is told the size of each batch before
	// it is sent.
	observe func(size int)
	queue   coalescer[*queuedAttempt]
}

func newAttemptBatcher(db *sqlx.DB) *attemptBatcher {
	b := &attemptBatcher{db: db}
	b.queue = coalescer[*queuedAttempt]{maxFlushers: maxAttemptFlushers, maxBatch: maxAttemptBatch, flush: b.flush}
	return b
}

// record queues q and returns once a statement has recorded it, or failed to.
func (b *attemptBatcher) record(q *queuedAttempt) {
	q.done = make(chan struct{})
	b.queue.add(q)
	<-q.done
}

// flush records batch: one attempt with the single-row statement, more in one statement.
// If that statement fails, each attempt is tried on its own, so that one bad row cannot
// fail the others.
func (b *attemptBatcher) flush(batch []*queuedAttempt) {
	if b.observe != nil {
		b.observe(len(batch))
	}
	ctx, cancel := context.WithTimeout(context.Background(), attemptFlushTimeout)
	defer cancel()
	defer func() {
		for _, q := range batch {
			close(q.done)
		}
	}()
	if len(batch) > 1 {
		recorded, err := b.recordBatch(ctx, batch)
		if err == nil {
			for _, q := range batch {
				q.recorded = recorded[q.attempt.ID.String()]
			}
			return
		}
	}
	for _, q := range batch {
		q.recorded, q.err = recordAttemptRow(ctx, b.db, q.attempt, q.prior, q.outcome)
	}
}

// recordAttemptsQuery is recordAttemptQuery for many attempts: each is stored when its
// delivery's attempt count is still its prior one. Two attempts of one delivery from the
// same count update the delivery once; only that one is stored and returned.
const recordAttemptsQuery = `
WITH v AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::text[], $5::timestamptz[],
		$6::float8[], $7::text[], $8::jsonb[], $9::text[], $10::int[], $11::jsonb[], $12::text[],
		$13::text[], $14::int[], $15::text[], $16::timestamptz[], $17::int[], $18::text[])
	AS v (attempt_id, delivery_id, number, trigger, started_at, duration_ms, request_url,
		request_headers, request_body, response_status, response_headers, response_body,
		error, prior, status, next_attempt_at, last_status_code, last_error)
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

// recordBatch runs recordAttemptsQuery for batch and returns the ids of the attempts it
// stored.
func (b *attemptBatcher) recordBatch(ctx context.Context, batch []*queuedAttempt) (map[string]bool, error) {
	// Deliveries in id order: concurrent batches lock the rows they share in the same order.
	slices.SortFunc(batch, func(x, y *queuedAttempt) int {
		return cmp.Compare(x.attempt.DeliveryID.String(), y.attempt.DeliveryID.String())
	})
	var rows attemptRows
	for _, q := range batch {
		rows.add(q)
	}
	var stored []string
	if err := b.db.SelectContext(ctx, &stored, recordAttemptsQuery, rows.args()...); err != nil {
		return nil, fmt.Errorf("record %d attempts: %w", len(batch), mapError(err))
	}
	recorded := make(map[string]bool, len(stored))
	for _, id := range stored {
		recorded[id] = true
	}
	return recorded, nil
}

// attemptRows holds a batch column by column: the arrays recordAttemptsQuery unnests.
type attemptRows struct {
	ids, deliveryIDs                  []string
	numbers, priors                   []int32
	triggers, urls, requestBodies     []string
	startedAt                         []time.Time
	durations                         []float64
	requestHeaders, responseHeaders   []*string
	responseStatuses, lastStatusCodes []*int32
	responseBodies, errors            []string
	statuses, lastErrors              []string
	nextAttemptAt                     []*time.Time
}

// add appends q's attempt, numbered prior+1, and the delivery's outcome.
func (r *attemptRows) add(q *queuedAttempt) {
	a, o := q.attempt, q.outcome
	r.ids = append(r.ids, a.ID.String())
	r.deliveryIDs = append(r.deliveryIDs, a.DeliveryID.String())
	r.numbers = append(r.numbers, int32(q.prior+1))
	r.priors = append(r.priors, int32(q.prior))
	r.triggers = append(r.triggers, a.Trigger)
	r.startedAt = append(r.startedAt, a.StartedAt)
	r.durations = append(r.durations, a.DurationMS)
	r.urls = append(r.urls, a.RequestURL)
	// JSON goes as text, cast to jsonb by the query.
	r.requestHeaders = append(r.requestHeaders, jsonText(a.RequestHeaders))
	r.requestBodies = append(r.requestBodies, a.RequestBody)
	r.responseStatuses = append(r.responseStatuses, int32OrNil(a.ResponseStatus))
	r.responseHeaders = append(r.responseHeaders, jsonText(a.ResponseHeaders))
	r.responseBodies = append(r.responseBodies, a.ResponseBody)
	r.errors = append(r.errors, a.Error)
	r.statuses = append(r.statuses, o.Status)
	r.nextAttemptAt = append(r.nextAttemptAt, o.NextAttemptAt)
	r.lastStatusCodes = append(r.lastStatusCodes, int32OrNil(o.LastStatusCode))
	r.lastErrors = append(r.lastErrors, o.LastError)
}

// args are the arrays in the order of recordAttemptsQuery's parameters.
func (r *attemptRows) args() []any {
	return []any{r.ids, r.deliveryIDs, r.numbers, r.triggers, r.startedAt, r.durations, r.urls,
		r.requestHeaders, r.requestBodies, r.responseStatuses, r.responseHeaders, r.responseBodies,
		r.errors, r.priors, r.statuses, r.nextAttemptAt, r.lastStatusCodes, r.lastErrors}
}

func int32OrNil(v *int) *int32 {
	if v == nil {
		return nil
	}
	n := int32(*v)
	return &n
}
