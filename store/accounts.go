package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// APIKey is an account's API key, as lists show it: the key itself is never stored, only
// its hash.
type APIKey struct {
	ID        uuid.UUID  `db:"id"`
	AccountID string     `db:"account_id"`
	Name      string     `db:"name"`
	Prefix    string     `db:"prefix"`
	CreatedAt time.Time  `db:"created_at"`
	ExpiresAt *time.Time `db:"expires_at"`
	RevokedAt *time.Time `db:"revoked_at"`
}

// Usable reports whether the key opens the API at now: neither revoked nor expired.
func (k APIKey) Usable(now time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

const apiKeyColumns = `id, account_id, name, prefix, created_at, expires_at, revoked_at`

const insertAPIKeyQuery = `INSERT INTO api_keys (id, account_id, name, prefix, hash, expires_at)
	VALUES ($1, $2, $3, $4, $5, $6) RETURNING ` + apiKeyColumns

const findAPIKeyQuery = `SELECT ` + apiKeyColumns + `, hash FROM api_keys WHERE prefix = $1`

const listAPIKeysQuery = `SELECT ` + apiKeyColumns + ` FROM api_keys
	WHERE account_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid)
	ORDER BY id LIMIT $3`

// revokeAPIKeyQuery revokes once: a second revocation keeps the first one's time.
const revokeAPIKeyQuery = `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
	WHERE account_id = $1 AND id = $2 RETURNING ` + apiKeyColumns

// CreateAPIKey stores k (its ID is made here) with the hash of the key.
func (s *Store) CreateAPIKey(ctx context.Context, k APIKey, hash []byte) (APIKey, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return APIKey{}, fmt.Errorf("new key id: %w", err)
	}
	var row APIKey
	if err := s.q.GetContext(ctx, &row, insertAPIKeyQuery, id, k.AccountID, k.Name, k.Prefix, hash, k.ExpiresAt); err != nil {
		return APIKey{}, fmt.Errorf("insert api key: %w", mapError(err))
	}
	return row, nil
}

// FindAPIKey returns the key with prefix and its stored hash, or ErrNotFound.
func (s *Store) FindAPIKey(ctx context.Context, prefix string) (APIKey, []byte, error) {
	var row struct {
		APIKey
		Hash []byte `db:"hash"`
	}
	if err := s.q.GetContext(ctx, &row, findAPIKeyQuery, prefix); err != nil {
		return APIKey{}, nil, fmt.Errorf("find api key: %w", mapError(err))
	}
	return row.APIKey, row.Hash, nil
}

// ListAPIKeys returns one page of an account's keys in creation order.
func (s *Store) ListAPIKeys(ctx context.Context, accountID string, page Page) ([]APIKey, error) {
	keys := []APIKey{}
	if err := s.q.SelectContext(ctx, &keys, listAPIKeysQuery, accountID, page.After, page.Limit); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey revokes an account's key for good and returns it, or ErrNotFound.
func (s *Store) RevokeAPIKey(ctx context.Context, accountID string, id uuid.UUID) (APIKey, error) {
	var row APIKey
	if err := s.q.GetContext(ctx, &row, revokeAPIKeyQuery, accountID, id); err != nil {
		return APIKey{}, fmt.Errorf("revoke api key: %w", mapError(err))
	}
	return row, nil
}

// AuditEntry is one change made through the API. Changes never holds a secret.
type AuditEntry struct {
	ID        uuid.UUID `db:"id"`
	AccountID string    `db:"account_id"`
	// KeyPrefix names the key that made the change.
	KeyPrefix string `db:"key_prefix"`
	// Action is what happened, e.g. "webhook.created".
	Action string `db:"action"`
	// Resource is the id of what changed.
	Resource string `db:"resource"`
	// Changes are the fields as set by the change.
	Changes json.RawMessage `db:"changes"`
	At      time.Time       `db:"at"`
}

const insertAuditQuery = `INSERT INTO audit_log (id, account_id, key_prefix, action, resource, changes)
	VALUES ($1, $2, $3, $4, $5, $6)`

const listAuditQuery = `SELECT id, account_id, key_prefix, action, resource, changes, at FROM audit_log
	WHERE account_id = $1 AND ($2::uuid IS NULL OR id < $2::uuid)
	ORDER BY id DESC LIMIT $3`

// Audited runs fn with a Store whose statements share one transaction with the audit
// entry, which fn completes (with the id of what it created, say): the change and its record
// commit together, or neither does.
func (s *Store) Audited(ctx context.Context, entry *AuditEntry, fn func(*Store) error) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := fn(&Store{db: s.db, q: tx, keys: s.keys}); err != nil {
			return err
		}
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("new audit id: %w", err)
		}
		changes := entry.Changes
		if len(changes) == 0 {
			changes = json.RawMessage("{}")
		}
		_, err = tx.ExecContext(ctx, insertAuditQuery, id, entry.AccountID, entry.KeyPrefix, entry.Action,
			entry.Resource, string(changes))
		if err != nil {
			return fmt.Errorf("record audit entry: %w", err)
		}
		return nil
	})
}

// ListAudit returns one page of an account's audit log, newest first.
func (s *Store) ListAudit(ctx context.Context, accountID string, page Page) ([]AuditEntry, error) {
	entries := []AuditEntry{}
	if err := s.q.SelectContext(ctx, &entries, listAuditQuery, accountID, page.After, page.Limit); err != nil {
		return nil, fmt.Errorf("list audit log: %w", err)
	}
	return entries, nil
}

// listAccountsQuery lists the accounts that own webhooks or events, after $1 in id order:
// each side skips from one account to the next through its index (a loose index scan),
// so that the cost is the accounts listed, not the rows they own.
const listAccountsQuery = `
WITH RECURSIVE hooks(account_id) AS (
	(SELECT account_id FROM webhooks WHERE account_id > $1 ORDER BY account_id LIMIT 1)
	UNION ALL
	SELECT (SELECT w.account_id FROM webhooks w WHERE w.account_id > hooks.account_id ORDER BY w.account_id LIMIT 1)
	FROM hooks WHERE hooks.account_id IS NOT NULL
), evs(account_id) AS (
	(SELECT account_id FROM events WHERE account_id > $1 ORDER BY account_id LIMIT 1)
	UNION ALL
	SELECT (SELECT e.account_id FROM events e WHERE e.account_id > evs.account_id ORDER BY e.account_id LIMIT 1)
	FROM evs WHERE evs.account_id IS NOT NULL
)
SELECT account_id FROM (
	(SELECT account_id FROM hooks WHERE account_id IS NOT NULL LIMIT $2)
	UNION
	(SELECT account_id FROM evs WHERE account_id IS NOT NULL LIMIT $2)
) a
ORDER BY account_id LIMIT $2`

// ListAccounts returns up to limit ids of accounts that own webhooks or events, in id
// order, after the id after.
func (s *Store) ListAccounts(ctx context.Context, after string, limit int) ([]string, error) {
	ids := []string{}
	if err := s.q.SelectContext(ctx, &ids, listAccountsQuery, after, limit); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return ids, nil
}

// deleteBatch is how many rows one statement of DeleteAccount removes: each statement
// holds its locks for a short while, so that deliveries and requests go on around it.
const deleteBatch = 1000

// The statements of DeleteAccount, children before parents: each removes one batch,
// deleting attempts before their deliveries so that no cascade grows a statement past its
// batch.
var deleteAccountQueries = []struct{ what, query string }{
	{"delivery attempts", `DELETE FROM delivery_attempts WHERE id IN (
		SELECT a.id FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id
		WHERE d.account_id = $1 LIMIT $2)`},
	{"deliveries", `DELETE FROM deliveries WHERE id IN (
		SELECT id FROM deliveries WHERE account_id = $1 LIMIT $2)`},
	{"events", `DELETE FROM events WHERE id IN (
		SELECT id FROM events WHERE account_id = $1 LIMIT $2)`},
	// A webhook's health and stats go after its deliveries, as DeleteWebhook does.
	{"webhook stats", `DELETE FROM webhook_stats WHERE (webhook_id, bucket) IN (
		SELECT s.webhook_id, s.bucket FROM webhooks w JOIN webhook_stats s ON s.webhook_id = w.id
		WHERE w.account_id = $1 LIMIT $2)`},
	{"webhook health", `DELETE FROM webhook_health WHERE webhook_id IN (
		SELECT h.webhook_id FROM webhooks w JOIN webhook_health h ON h.webhook_id = w.id
		WHERE w.account_id = $1 LIMIT $2)`},
	{"webhook throttles", `DELETE FROM webhook_throttle WHERE webhook_id IN (
		SELECT t.webhook_id FROM webhooks w JOIN webhook_throttle t ON t.webhook_id = w.id
		WHERE w.account_id = $1 LIMIT $2)`},
	{"webhooks", `DELETE FROM webhooks WHERE id IN (
		SELECT id FROM webhooks WHERE account_id = $1 LIMIT $2)`},
	// Before the keys: an unopened link of a deleted account must not mint a new one.
	{"console links", `DELETE FROM console_links WHERE token_hash IN (
		SELECT token_hash FROM console_links WHERE account_id = $1 LIMIT $2)`},
	{"api keys", `DELETE FROM api_keys WHERE id IN (
		SELECT id FROM api_keys WHERE account_id = $1 LIMIT $2)`},
	{"audit entries", `DELETE FROM audit_log WHERE id IN (
		SELECT id FROM audit_log WHERE account_id = $1 LIMIT $2)`},
}

// DeleteAccount removes everything the account owns, in batches of deleteBatch rows, and
// returns how many rows of each kind went. Stopped part way (ctx), it can simply be called
// again. Deliveries in flight stop at their next attempt, finding themselves gone.
func (s *Store) DeleteAccount(ctx context.Context, accountID string) (map[string]int64, error) {
	deleted := map[string]int64{}
	for _, d := range deleteAccountQueries {
		for {
			res, err := s.q.ExecContext(ctx, d.query, accountID, deleteBatch)
			if err != nil {
				return deleted, fmt.Errorf("delete account %s: %s: %w", accountID, d.what, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return deleted, fmt.Errorf("delete account %s: %s: %w", accountID, d.what, err)
			}
			deleted[d.what] += n
			if n < deleteBatch {
				break
			}
		}
	}
	return deleted, nil
}

// EventFilter narrows a listing of an account's events; zero fields filter nothing.
type EventFilter struct {
	SurveyID, EventType string
	Since, Until        time.Time
	// Before is the cursor: the seq of the last event of the previous page.
	Before int64
	Limit  int
}

// listAccountEventsQuery lists newest first by seq, through events_account_survey_idx
// when a survey is named and events_account_idx otherwise.
const listAccountEventsQuery = `SELECT ` + eventColumns + ` FROM events
	WHERE account_id = $1
	  AND ($2 = '' OR survey_id = $2)
	  AND ($3 = '' OR event_type = $3)
	  AND ($4::timestamptz IS NULL OR created_at >= $4)
	  AND ($5::timestamptz IS NULL OR created_at < $5)
	  AND ($6::bigint = 0 OR seq < $6)
	ORDER BY seq DESC LIMIT $7`

// ListAccountEvents returns one page of an account's events, newest first.
func (s *Store) ListAccountEvents(ctx context.Context, accountID string, f EventFilter) ([]Event, error) {
	if f.Limit <= 0 {
		return nil, errors.New("list events: limit is not positive")
	}
	events := []Event{}
	err := s.q.SelectContext(ctx, &events, listAccountEventsQuery, accountID, f.SurveyID, f.EventType,
		nullTime(f.Since), nullTime(f.Until), f.Before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return events, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
