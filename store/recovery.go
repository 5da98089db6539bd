package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// RecoveryFilter picks the deliveries a recovery attempts again: those made in
// [Since, Until) whose status is one of Statuses, of one webhook (WebhookID), or of an
// account (AccountID, WebhookID nil), then optionally of one survey's events (SurveyID) and
// of one event type (EventType).
type RecoveryFilter struct {
	WebhookID uuid.UUID
	AccountID string
	SurveyID  string
	EventType string
	Since     time.Time
	Until     time.Time
	Statuses  []string
}

// recoveryStatements are the statements of one kind of filter: a webhook's deliveries
// through deliveries_webhook_status_idx, or an account's through deliveries_account_idx, so
// that each is planned for its own index.
type recoveryStatements struct {
	list, count, outcomes string
}

// The picks of a webhook's filter: $1 the webhook, $2 the statuses, [$3, $4) the creation
// window.
const webhookPicks = `d.webhook_id = $1 AND d.status = ANY ($2::text[]) AND d.created_at >= $3 AND d.created_at < $4`

// The picks of an account's filter: $1 the account, $2 the statuses, [$3, $4) the creation
// window, $5 the survey and $6 the event type ("" for any).
const accountPicks = `d.account_id = $1 AND d.status = ANY ($2::text[]) AND d.created_at >= $3 AND d.created_at < $4
	AND ($5 = '' OR EXISTS (SELECT FROM events e WHERE e.id = d.event_id AND e.survey_id = $5))
	AND ($6 = '' OR EXISTS (SELECT FROM events e WHERE e.id = d.event_id AND e.event_type = $6))`

// list and count take the filter's arguments, list then the last id of the previous batch
// (the nil UUID for the first) and the batch size; outcomes takes them without the
// statuses (it counts the deliveries by their status now), then the last id handled and
// when the recovery started. Ids are UUIDv7: id order is creation order.
var (
	webhookRecovery = recoveryStatements{
		list:  `SELECT d.id FROM deliveries d WHERE ` + webhookPicks + ` AND d.id > $5 ORDER BY d.id LIMIT $6`,
		count: `SELECT count(*) FROM deliveries d WHERE ` + webhookPicks,
		outcomes: `SELECT d.status, count(*) AS n FROM deliveries d
			WHERE d.webhook_id = $1 AND d.created_at >= $2 AND d.created_at < $3 AND d.id <= $4
			  AND EXISTS (SELECT FROM delivery_attempts a WHERE a.delivery_id = d.id AND a.trigger = 'manual' AND a.started_at >= $5)
			GROUP BY d.status`,
	}
	accountRecovery = recoveryStatements{
		list:  `SELECT d.id FROM deliveries d WHERE ` + accountPicks + ` AND d.id > $7 ORDER BY d.id LIMIT $8`,
		count: `SELECT count(*) FROM deliveries d WHERE ` + accountPicks,
		outcomes: `SELECT d.status, count(*) AS n FROM deliveries d
			WHERE d.account_id = $1 AND d.created_at >= $2 AND d.created_at < $3 AND d.id <= $6
			  AND ($4 = '' OR EXISTS (SELECT FROM events e WHERE e.id = d.event_id AND e.survey_id = $4))
			  AND ($5 = '' OR EXISTS (SELECT FROM events e WHERE e.id = d.event_id AND e.event_type = $5))
			  AND EXISTS (SELECT FROM delivery_attempts a WHERE a.delivery_id = d.id AND a.trigger = 'manual' AND a.started_at >= $7)
			GROUP BY d.status`,
	}
)

// statements returns f's statements and arguments.
func (f RecoveryFilter) statements() (recoveryStatements, []any) {
	if f.WebhookID != uuid.Nil {
		return webhookRecovery, []any{f.WebhookID, pq.StringArray(f.Statuses), f.Since, f.Until}
	}
	return accountRecovery, []any{f.AccountID, pq.StringArray(f.Statuses), f.Since, f.Until, f.SurveyID, f.EventType}
}

// String names what f picks, for errors.
func (f RecoveryFilter) String() string {
	if f.WebhookID != uuid.Nil {
		return "webhook " + f.WebhookID.String()
	}
	return "account " + f.AccountID
}

// CountRecoverable counts the deliveries f picks now.
func (s *Store) CountRecoverable(ctx context.Context, f RecoveryFilter) (int, error) {
	stmts, args := f.statements()
	var n int
	if err := s.q.GetContext(ctx, &n, stmts.count, args...); err != nil {
		return 0, fmt.Errorf("count deliveries to recover of %s: %w", f, mapError(err))
	}
	return n, nil
}

// ListRecoverable returns up to limit ids of the deliveries f picks, after the id after,
// in id order.
func (s *Store) ListRecoverable(ctx context.Context, f RecoveryFilter, after uuid.UUID, limit int) ([]uuid.UUID, error) {
	stmts, args := f.statements()
	ids := []uuid.UUID{}
	if err := s.q.SelectContext(ctx, &ids, stmts.list, append(args, after, limit)...); err != nil {
		return nil, fmt.Errorf("list deliveries to recover of %s: %w", f, mapError(err))
	}
	return ids, nil
}

// RecoveredOutcomes counts by status the deliveries of f's window (whatever their status
// now), up to last, that got a manual attempt since started: a recovery's retries, as they
// ended so far.
func (s *Store) RecoveredOutcomes(ctx context.Context, f RecoveryFilter, last uuid.UUID, started time.Time) (map[string]int, error) {
	stmts, args := f.statements()
	args = append(args[:1], args[2:]...) // all but the statuses
	var rows []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	if err := s.q.SelectContext(ctx, &rows, stmts.outcomes, append(args, last, started)...); err != nil {
		return nil, fmt.Errorf("count the outcomes of a recovery of %s: %w", f, mapError(err))
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}
