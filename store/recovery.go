package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// RecoveryFilter picks the deliveries of a webhook that a recovery attempts again: those
// made in [Since, Until) whose status is one of Statuses.
type RecoveryFilter struct {
	WebhookID uuid.UUID
	Since     time.Time
	Until     time.Time
	Statuses  []string
}

// The filter's deliveries by id, which orders them by creation (UUIDv7), through
// deliveries_webhook_status_idx: $2 the statuses, [$3, $4) the creation window, $5 the last
// id of the previous batch (the nil UUID for the first), $6 the batch size.
const listRecoverableQuery = `
SELECT id FROM deliveries
WHERE webhook_id = $1 AND status = ANY ($2::text[]) AND created_at >= $3 AND created_at < $4 AND id > $5
ORDER BY id
LIMIT $6`

const countRecoverableQuery = `
SELECT count(*) FROM deliveries
WHERE webhook_id = $1 AND status = ANY ($2::text[]) AND created_at >= $3 AND created_at < $4`

// CountRecoverable counts the deliveries f picks now.
func (s *Store) CountRecoverable(ctx context.Context, f RecoveryFilter) (int, error) {
	var n int
	if err := s.q.GetContext(ctx, &n, countRecoverableQuery, f.WebhookID, pq.StringArray(f.Statuses), f.Since, f.Until); err != nil {
		return 0, fmt.Errorf("count deliveries to recover of webhook %s: %w", f.WebhookID, mapError(err))
	}
	return n, nil
}

// ListRecoverable returns up to limit ids of the deliveries f picks, after the id after,
// in id order.
func (s *Store) ListRecoverable(ctx context.Context, f RecoveryFilter, after uuid.UUID, limit int) ([]uuid.UUID, error) {
	ids := []uuid.UUID{}
	err := s.q.SelectContext(ctx, &ids, listRecoverableQuery, f.WebhookID, pq.StringArray(f.Statuses), f.Since, f.Until, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries to recover of webhook %s: %w", f.WebhookID, mapError(err))
	}
	return ids, nil
}

// recoveredOutcomesQuery counts, by status, the deliveries of a recovery's filter up to its
// last one handled ($4) that got a manual attempt since it started ($5): its retries, as
// they ended so far.
const recoveredOutcomesQuery = `
SELECT d.status, count(*) AS n FROM deliveries d
WHERE d.webhook_id = $1 AND d.created_at >= $2 AND d.created_at < $3 AND d.id <= $4
  AND EXISTS (SELECT FROM delivery_attempts a WHERE a.delivery_id = d.id AND a.trigger = 'manual' AND a.started_at >= $5)
GROUP BY d.status`

// RecoveredOutcomes counts by status the deliveries of f, up to last, that got a manual
// attempt since started.
func (s *Store) RecoveredOutcomes(ctx context.Context, f RecoveryFilter, last uuid.UUID, started time.Time) (map[string]int, error) {
	var rows []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	if err := s.q.SelectContext(ctx, &rows, recoveredOutcomesQuery, f.WebhookID, f.Since, f.Until, last, started); err != nil {
		return nil, fmt.Errorf("count the outcomes of a recovery of webhook %s: %w", f.WebhookID, mapError(err))
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}
