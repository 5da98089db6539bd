package store

import (
	"context"
	"fmt"
	"time"
)

// The retention queries each delete at most $2 rows older than the cutoff $1, choosing them
// through an index on the row's time so that every statement is short and locks only the
// rows it deletes; the caller repeats them until a batch comes back short.
//
// A delivery whose last change is younger than the cutoff, or that is still pending or
// retrying, keeps its event, its siblings and its attempts: the whole history of an event
// goes at once, and only when nothing can happen to it any more.

// Attempts of finished deliveries, oldest first (delivery_attempts_started_at_idx). Attempts
// of an unfinished delivery stay with it.
const deleteExpiredAttemptsQuery = `
DELETE FROM delivery_attempts WHERE id IN (
	SELECT a.id FROM delivery_attempts a
	JOIN deliveries d ON d.id = a.delivery_id
	WHERE a.started_at < $1 AND d.status IN ('delivered', 'failed')
	ORDER BY a.started_at
	LIMIT $2)`

// expiredEventCondition holds for an event e that is older than the cutoff, was handed to
// Temporal, and has no delivery that is unfinished or changed since the cutoff.
const expiredEventCondition = `
	e.created_at < $1 AND e.dispatched_at IS NOT NULL
	AND NOT EXISTS (
		SELECT 1 FROM deliveries u
		WHERE u.event_id = e.id
		  AND (u.status IN ('pending', 'retrying') OR u.updated_at >= $1))`

// Deliveries of expired events, oldest event first (events_created_at_idx). Their attempts
// are gone already (they all started before the last change, which is before the cutoff);
// the cascade only catches one recorded since the previous statement.
const deleteExpiredDeliveriesQuery = `
DELETE FROM deliveries WHERE id IN (
	SELECT d.id FROM events e
	JOIN deliveries d ON d.event_id = e.id
	WHERE ` + expiredEventCondition + `
	ORDER BY e.created_at
	LIMIT $2)`

// Expired events whose deliveries are gone (or that had none), oldest first.
const deleteExpiredEventsQuery = `
DELETE FROM events WHERE id IN (
	SELECT e.id FROM events e
	WHERE ` + expiredEventCondition + `
	  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
	ORDER BY e.created_at
	LIMIT $2)`

// DeleteExpiredAttempts deletes up to limit attempts started before cutoff whose delivery
// has finished (delivered or failed), and returns how many it deleted.
func (s *Store) DeleteExpiredAttempts(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return s.deleteBatch(ctx, "attempts", deleteExpiredAttemptsQuery, cutoff, limit)
}

// DeleteExpiredDeliveries deletes up to limit deliveries of expired events: events created
// before cutoff, dispatched, whose every delivery finished and last changed before cutoff.
// It returns how many it deleted.
func (s *Store) DeleteExpiredDeliveries(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return s.deleteBatch(ctx, "deliveries", deleteExpiredDeliveriesQuery, cutoff, limit)
}

// DeleteExpiredEvents deletes up to limit expired events that have no delivery left (call
// DeleteExpiredDeliveries first), and returns how many it deleted.
func (s *Store) DeleteExpiredEvents(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return s.deleteBatch(ctx, "events", deleteExpiredEventsQuery, cutoff, limit)
}

func (s *Store) deleteBatch(ctx context.Context, what, query string, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("delete expired %s: batch size %d is not positive", what, limit)
	}
	res, err := s.db.ExecContext(ctx, query, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired %s: count rows: %w", what, err)
	}
	return int(n), nil
}
