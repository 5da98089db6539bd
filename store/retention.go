package store

import (
	"context"
	"fmt"
	"time"
)

// The retention queries each delete a bounded batch of rows older than the cutoff $1,
// chosen through an index on the row's time, so that every statement is short and locks
// only the rows it deletes; the caller repeats them until a batch comes back short. The
// rows to delete are collected into an array first ("id = ANY (ARRAY(...))"): a plain
// "id IN (subquery)" lets the planner hash-join against a scan of the whole table, once
// per batch.
//
// An event goes with its whole history, and only when nothing can happen to it any more:
// it was handed to Temporal, and each of its deliveries is finished and last changed before
// the cutoff. A delivery still pending or retrying keeps its event, its siblings and its
// attempts.

// Attempts of finished deliveries, oldest first (delivery_attempts_started_at_idx). Attempts
// of an unfinished delivery stay with it. $2 is the batch size.
const deleteExpiredAttemptsQuery = `
DELETE FROM delivery_attempts WHERE id = ANY (ARRAY(
	SELECT a.id FROM delivery_attempts a
	JOIN deliveries d ON d.id = a.delivery_id
	WHERE a.started_at < $1 AND d.status IN ('delivered', 'failed')
	ORDER BY a.started_at
	LIMIT $2))`

// Expired events, oldest first (events_created_at_idx), $2 at a time; deleting an event
// deletes its deliveries (ON DELETE CASCADE, through their event_id index), whose attempts
// are gone already unless one was recorded since. The check of an event's deliveries is a
// correlated subquery on purpose: it probes the deliveries of each candidate by index,
// where an anti-join may scan every delivery. The deliveries are counted in the snapshot
// the statement starts from, before the cascade.
const deleteExpiredEventsQuery = `
WITH picked AS MATERIALIZED (
	SELECT e.id FROM events e
	WHERE e.created_at < $1 AND e.dispatched_at IS NOT NULL
	  AND coalesce((
		SELECT bool_and(u.status IN ('delivered', 'failed') AND u.updated_at < $1)
		FROM deliveries u WHERE u.event_id = e.id), true)
	ORDER BY e.created_at
	LIMIT $2
), deleted AS (
	DELETE FROM events WHERE id = ANY (ARRAY(SELECT id FROM picked)) RETURNING id
)
SELECT
	(SELECT count(*) FROM deleted) AS events,
	(SELECT count(*) FROM deliveries d WHERE d.event_id = ANY (ARRAY(SELECT id FROM picked))) AS deliveries`

// Webhook stats of hours before the cutoff, oldest first (webhook_stats_bucket_idx).
const deleteExpiredStatsQuery = `
DELETE FROM webhook_stats WHERE (webhook_id, bucket) = ANY (ARRAY(
	SELECT (webhook_id, bucket) FROM webhook_stats WHERE bucket < $1 ORDER BY bucket LIMIT $2))`

// DeleteExpiredStats deletes up to limit hours of webhook stats before cutoff and returns
// how many it deleted.
func (s *Store) DeleteExpiredStats(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return s.deleteExpired(ctx, "stats", deleteExpiredStatsQuery, cutoff, limit)
}

// DeleteExpiredAttempts deletes up to limit attempts started before cutoff whose delivery
// has finished (delivered or failed), and returns how many it deleted.
func (s *Store) DeleteExpiredAttempts(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return s.deleteExpired(ctx, "attempts", deleteExpiredAttemptsQuery, cutoff, limit)
}

// deleteExpired runs one of the retention queries that delete a batch of rows ($2) older
// than the cutoff ($1), and returns how many rows it deleted.
func (s *Store) deleteExpired(ctx context.Context, what, query string, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("delete expired %s: batch size %d is not positive", what, limit)
	}
	res, err := s.q.ExecContext(ctx, query, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired %s: count rows: %w", what, err)
	}
	return int(n), nil
}

// DeleteExpiredEvents deletes up to limit expired events — created before cutoff,
// dispatched, with every delivery finished and last changed before cutoff — with their
// deliveries and any attempt left (call DeleteExpiredAttempts first, so that the cascade
// stays small). It returns how many events and deliveries it deleted.
func (s *Store) DeleteExpiredEvents(ctx context.Context, cutoff time.Time, limit int) (events, deliveries int, err error) {
	if limit <= 0 {
		return 0, 0, fmt.Errorf("delete expired events: batch size %d is not positive", limit)
	}
	row := s.q.QueryRowxContext(ctx, deleteExpiredEventsQuery, cutoff, limit)
	if err := row.Scan(&events, &deliveries); err != nil {
		return 0, 0, fmt.Errorf("delete expired events: %w", err)
	}
	return events, deliveries, nil
}

// clearExpiredSecretsQuery forgets previous secrets and signing keys whose overlap has ended. Reads already
// hide them; this keeps them from staying in the table, its backups and its dumps. It leaves
// updated_at alone: nothing the user set has changed.
const clearExpiredSecretsQuery = `UPDATE webhooks
	SET previous_secret_sealed = NULL, previous_signing_key_sealed = NULL, previous_secret_expires_at = NULL
	WHERE previous_secret_expires_at <= now()`

// ClearExpiredSecrets deletes every previous secret past its overlap and returns how many
// it deleted.
func (s *Store) ClearExpiredSecrets(ctx context.Context) (int, error) {
	res, err := s.q.ExecContext(ctx, clearExpiredSecretsQuery)
	if err != nil {
		return 0, fmt.Errorf("clear expired secrets: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("clear expired secrets: count rows: %w", err)
	}
	return int(n), nil
}
