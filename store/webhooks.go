package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// webhookColumns lists the columns every webhook query reads into a webhookRow. A previous
// secret or signing key past its expiry reads as none: it signs nothing any more, and no
// caller should hold it (retention and every write to the row clear it for good). An
// account-wide webhook's survey_id reads as "".
const webhookColumns = `id, account_id, coalesce(survey_id, '') AS survey_id, survey_ids, name, url, events,
	description, is_active, disabled_at, disabled_reason, rate_limit, rate_burst, signing, secret_sealed, signing_key_sealed,
	CASE WHEN previous_secret_expires_at > now() THEN previous_secret_sealed END AS previous_secret_sealed,
	CASE WHEN previous_secret_expires_at > now() THEN previous_signing_key_sealed END AS previous_signing_key_sealed,
	CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at,
	created_at, updated_at`

// inScope is how every webhook query names the scope it acts in ($1 the account, $2 the
// survey, or the empty string for account-wide), through webhooks_scope_idx.
const inScope = `account_id = $1 AND coalesce(survey_id, '') = $2`

// keepLivePreviousSecret is the SET clause of every write to a webhook: it clears a previous
// secret or signing key whose overlap has ended.
const keepLivePreviousSecret = `
	previous_secret_sealed = CASE WHEN previous_secret_expires_at > now() THEN previous_secret_sealed END,
	previous_signing_key_sealed = CASE WHEN previous_secret_expires_at > now() THEN previous_signing_key_sealed END,
	previous_secret_expires_at = CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END`

const insertWebhookQuery = `INSERT INTO webhooks
	(id, account_id, survey_id, survey_ids, name, url, events, description, is_active, signing, secret_sealed,
	 signing_key_sealed, rate_limit, rate_burst)
	VALUES ($1, $2, NULLIF($3, ''), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
	RETURNING ` + webhookColumns

const getWebhookQuery = `SELECT ` + webhookColumns + ` FROM webhooks
	WHERE ` + inScope + ` AND id = $3`

// listWebhooksQuery pages by id: ids are UUIDv7, so id order is creation order.
const listWebhooksQuery = `SELECT ` + webhookColumns + ` FROM webhooks
	WHERE ` + inScope + ` AND ($3::uuid IS NULL OR id > $3::uuid)
	ORDER BY id
	LIMIT $4`

// listAccountWebhooksQuery pages through every webhook of an account, its surveys' too.
const listAccountWebhooksQuery = `SELECT ` + webhookColumns + ` FROM webhooks
	WHERE account_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid)
	ORDER BY id
	LIMIT $3`

const webhookScopeQuery = `SELECT account_id, coalesce(survey_id, '') AS survey_id FROM webhooks
	WHERE account_id = $1 AND id = $2`

// updateWebhookQuery changes only the columns whose argument is not NULL; survey_ids is
// set when $10 is true (to $9, NULL meaning every survey), and the rate limit when $11 is
// (to $12 and $13, NULL and 0 meaning none). Turning a webhook on clears
// why it was disabled.
const updateWebhookQuery = `UPDATE webhooks SET
	name = COALESCE($4, name),
	url = COALESCE($5, url),
	events = COALESCE($6::text[], events),
	description = COALESCE($7, description),
	is_active = COALESCE($8, is_active),
	disabled_at = CASE WHEN $8 THEN NULL ELSE disabled_at END,
	disabled_reason = CASE WHEN $8 THEN '' ELSE disabled_reason END,
	survey_ids = CASE WHEN $10::boolean THEN $9::text[] ELSE survey_ids END,
	rate_limit = CASE WHEN $11::boolean THEN $12::double precision ELSE rate_limit END,
	rate_burst = CASE WHEN $11::boolean THEN $13::integer ELSE rate_burst END,
	updated_at = now(),` + keepLivePreviousSecret + `
	WHERE ` + inScope + ` AND id = $3
	RETURNING ` + webhookColumns

const resetStreakQuery = `UPDATE webhook_health SET consecutive_failures = 0, failing_since = NULL,
	updated_at = now() WHERE webhook_id = $1 AND consecutive_failures > 0`

// disableWebhookQuery turns an active webhook off with the reason, and ends its deliveries
// that wait for an attempt: skipped when none was made yet, failed otherwise. Their
// workflows find them finished at their next attempt and send nothing.
const disableWebhookQuery = `
WITH w AS (
	UPDATE webhooks SET is_active = false, disabled_at = now(), disabled_reason = $2, updated_at = now()
	WHERE id = $1 AND is_active
	RETURNING id
), waiting AS (
	UPDATE deliveries d SET
		status = CASE WHEN d.status = 'pending' THEN 'skipped' ELSE 'failed' END,
		next_attempt_at = NULL, last_error = 'the webhook was disabled: ' || $2, updated_at = now()
	FROM w WHERE d.webhook_id = w.id AND d.status IN ('pending', 'retrying')
)
SELECT count(*) FROM w`

// DisableWebhook turns the active webhook id off for reason (delivery.DisablePolicy), as
// surveyhooks does by itself, ends its deliveries waiting for an attempt, and publishes
// notices (the events that tell of it) in the same transaction, so that a webhook is never
// turned off without them. It reports whether it did: false when the webhook was off
// already or is gone, and then publishes nothing.
func (s *Store) DisableWebhook(ctx context.Context, id uuid.UUID, reason string, notices ...Event) (bool, error) {
	var done bool
	err := s.atomically(ctx, func(q queryer) error {
		var n int
		if err := q.GetContext(ctx, &n, disableWebhookQuery, id, reason); err != nil {
			return fmt.Errorf("disable webhook %s: %w", id, mapError(err))
		}
		if done = n == 1; !done {
			return nil
		}
		in := &Store{db: s.db, q: q, keys: s.keys}
		for _, ev := range notices {
			if _, err := in.PublishEvent(ctx, ev); err != nil {
				return fmt.Errorf("disable webhook %s: notice %s: %w", id, ev.EventType, err)
			}
		}
		return nil
	})
	return done, err
}

const countActiveWebhooksQuery = `SELECT count(*) FROM webhooks WHERE is_active`

const deleteWebhookQuery = `DELETE FROM webhooks WHERE ` + inScope + ` AND id = $3`

const deleteWebhookHealthQuery = `
WITH health AS (DELETE FROM webhook_health WHERE webhook_id = $1),
	throttle AS (DELETE FROM webhook_throttle WHERE webhook_id = $1)
DELETE FROM webhook_stats WHERE webhook_id = $1`

// rotateWebhookSecretQuery keeps the current secret, or an ed25519 webhook's signing key, as
// the previous one for the overlap ($5, in microseconds); with no overlap the old one is
// dropped at once. $4 is the new sealed secret and $6 the new sealed key, one of them NULL
// as the webhook's signing ($7) has it. It changes
// nothing while an earlier rotation's overlap runs, unless $5 is 0: a second rotation would
// push out the secret receivers may still be using, and tell its caller that its own secret
// is current when a concurrent one has replaced it. A concurrent rotation waits for the row
// lock, then finds the overlap and changes nothing. An overlap of 0 always applies: it drops
// every older secret, which is what a leaked secret calls for.
const rotateWebhookSecretQuery = `UPDATE webhooks SET
	previous_secret_sealed = CASE WHEN $5::bigint > 0 THEN secret_sealed END,
	previous_signing_key_sealed = CASE WHEN $5::bigint > 0 THEN signing_key_sealed END,
	previous_secret_expires_at = CASE WHEN $5::bigint > 0 THEN now() + $5::bigint * interval '1 microsecond' END,
	secret_sealed = $4,
	signing_key_sealed = $6,
	updated_at = now()
	WHERE ` + inScope + ` AND id = $3 AND signing = $7
	  AND ($5::bigint = 0 OR previous_secret_expires_at IS NULL OR previous_secret_expires_at <= now())
	RETURNING ` + webhookColumns

// RotationOverlapError refuses a rotation while the previous rotation's overlap runs.
type RotationOverlapError struct {
	// Until is when the overlap ends and the webhook may rotate again.
	Until time.Time
}

// Error implements error.
func (e *RotationOverlapError) Error() string {
	return "previous secret still in its overlap until " + e.Until.UTC().Format(time.RFC3339)
}

// CreateWebhook stores w under a new UUIDv7 id and returns the stored row. ID, timestamps
// and the previous-secret fields of w are ignored; the caller has validated the rest. An
// HMAC webhook (Signing "" or SigningHMAC) needs its Secret, an ed25519 one its SigningKey.
func (s *Store) CreateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Webhook{}, fmt.Errorf("new webhook id: %w", err)
	}
	if w.Signing == "" {
		w.Signing = SigningHMAC
	}
	credential := w.Secret
	if w.Signing == SigningEd25519 {
		credential = w.SigningKey
	}
	secret, key, err := s.sealCredential(id, w.Signing, credential)
	if err != nil {
		return Webhook{}, err
	}
	var row webhookRow
	err = s.q.GetContext(ctx, &row, insertWebhookQuery,
		id, w.AccountID, w.SurveyID, surveyIDsArg(w.SurveyIDs), w.Name, w.URL, w.Events, w.Description, w.IsActive,
		w.Signing, secret, key, w.RateLimit, w.RateBurst)
	if err != nil {
		return Webhook{}, fmt.Errorf("insert webhook: %w", mapError(err))
	}
	return s.open(row)
}

// surveyIDsArg sends a nil filter (every survey) as NULL.
func surveyIDsArg(ids []string) any {
	if ids == nil {
		return nil
	}
	return pq.StringArray(ids)
}

// GetWebhook returns the webhook id in scope, or ErrNotFound (also when the id belongs to
// another scope).
func (s *Store) GetWebhook(ctx context.Context, scope Scope, id uuid.UUID) (Webhook, error) {
	var row webhookRow
	if err := s.q.GetContext(ctx, &row, getWebhookQuery, scope.AccountID, scope.SurveyID, id); err != nil {
		return Webhook{}, fmt.Errorf("get webhook: %w", mapError(err))
	}
	return s.open(row)
}

// ListWebhooks returns up to page.Limit webhooks of the scope in creation order, starting
// after page.After. The caller caps the limit.
func (s *Store) ListWebhooks(ctx context.Context, scope Scope, page Page) ([]Webhook, error) {
	if page.Limit <= 0 {
		return nil, fmt.Errorf("list webhooks: limit %d is not positive", page.Limit)
	}
	var rows []webhookRow
	if err := s.q.SelectContext(ctx, &rows, listWebhooksQuery, scope.AccountID, scope.SurveyID, page.After, page.Limit); err != nil {
		return nil, fmt.Errorf("list webhooks: %w", mapError(err))
	}
	return s.openAll(rows)
}

// ListAccountWebhooks returns up to page.Limit webhooks of the account, account-wide and
// its surveys', in creation order, starting after page.After. The caller caps the limit.
func (s *Store) ListAccountWebhooks(ctx context.Context, accountID string, page Page) ([]Webhook, error) {
	if page.Limit <= 0 {
		return nil, fmt.Errorf("list account webhooks: limit %d is not positive", page.Limit)
	}
	var rows []webhookRow
	if err := s.q.SelectContext(ctx, &rows, listAccountWebhooksQuery, accountID, page.After, page.Limit); err != nil {
		return nil, fmt.Errorf("list account webhooks: %w", mapError(err))
	}
	return s.openAll(rows)
}

// WebhookScope returns the scope of the account's webhook id (its survey, or "" for an
// account-wide one), or ErrNotFound when the account has no such webhook. A webhook never
// changes scope, so the answer stays true for as long as the webhook exists.
func (s *Store) WebhookScope(ctx context.Context, accountID string, id uuid.UUID) (Scope, error) {
	var row struct {
		AccountID string `db:"account_id"`
		SurveyID  string `db:"survey_id"`
	}
	if err := s.q.GetContext(ctx, &row, webhookScopeQuery, accountID, id); err != nil {
		return Scope{}, fmt.Errorf("webhook scope: %w", mapError(err))
	}
	return Scope(row), nil
}

// WebhookUpdate lists the fields a partial update changes; a nil field is left as it is.
type WebhookUpdate struct {
	Name        *string
	URL         *string
	Events      *[]string
	Description *string
	IsActive    *bool
	// SurveyIDs sets an account-wide webhook's filter; a nil filter in it means every
	// survey.
	SurveyIDs *[]string
	// RateLimit sets the webhook's rate limit; one with PerSecond 0 removes it.
	RateLimit *RateLimit
}

// Apply makes u's changes to w.
func (u WebhookUpdate) Apply(w *Webhook) {
	if u.Name != nil {
		w.Name = *u.Name
	}
	if u.URL != nil {
		w.URL = *u.URL
	}
	if u.Events != nil {
		w.Events = *u.Events
	}
	if u.Description != nil {
		w.Description = *u.Description
	}
	if u.IsActive != nil {
		w.IsActive = *u.IsActive
	}
	if u.SurveyIDs != nil {
		w.SurveyIDs = *u.SurveyIDs
	}
	if u.RateLimit != nil {
		w.RateLimit, w.RateBurst = nil, 0
		if u.RateLimit.PerSecond > 0 {
			perSecond := u.RateLimit.PerSecond
			w.RateLimit, w.RateBurst = &perSecond, u.RateLimit.Burst
		}
	}
}

// IsZero reports whether u changes nothing.
func (u WebhookUpdate) IsZero() bool {
	return u.Name == nil && u.URL == nil && u.Events == nil && u.Description == nil && u.IsActive == nil &&
		u.SurveyIDs == nil && u.RateLimit == nil
}

// UpdateWebhook applies u to the webhook id in scope and returns the stored row, or
// ErrNotFound. An empty update changes nothing, not even updated_at.
func (s *Store) UpdateWebhook(ctx context.Context, scope Scope, id uuid.UUID, u WebhookUpdate) (Webhook, error) {
	if u.IsZero() {
		return s.GetWebhook(ctx, scope, id)
	}
	// A nil any is sent as NULL, which COALESCE turns into "keep the column".
	var events, surveyIDs any
	if u.Events != nil {
		events = pq.StringArray(*u.Events)
	}
	if u.SurveyIDs != nil {
		surveyIDs = surveyIDsArg(*u.SurveyIDs)
	}
	var perSecond *float64
	var burst int
	if u.RateLimit != nil && u.RateLimit.PerSecond > 0 {
		perSecond, burst = &u.RateLimit.PerSecond, u.RateLimit.Burst
	}
	var row webhookRow
	err := s.atomically(ctx, func(q queryer) error {
		err := q.GetContext(ctx, &row, updateWebhookQuery,
			scope.AccountID, scope.SurveyID, id, u.Name, u.URL, events, u.Description, u.IsActive, surveyIDs, u.SurveyIDs != nil,
			u.RateLimit != nil, perSecond, burst)
		if err != nil || u.IsActive == nil || !*u.IsActive {
			return err
		}
		// Turned on again, it starts a new streak: the failures that disabled it no longer
		// count towards disabling it again.
		_, err = q.ExecContext(ctx, resetStreakQuery, id)
		return err
	})
	if err != nil {
		return Webhook{}, fmt.Errorf("update webhook: %w", mapError(err))
	}
	return s.open(row)
}

// DeleteWebhook deletes the webhook id in scope, or returns ErrNotFound. The schema
// cascades the delete to the webhook's deliveries, their attempts and its test events:
// the history goes with the webhook, and the delivery engine, finding the webhook gone,
// stops sending to it.
func (s *Store) DeleteWebhook(ctx context.Context, scope Scope, id uuid.UUID) error {
	return s.atomically(ctx, func(q queryer) error {
		res, err := q.ExecContext(ctx, deleteWebhookQuery, scope.AccountID, scope.SurveyID, id)
		if err != nil {
			return fmt.Errorf("delete webhook: %w", mapError(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("delete webhook: %w", ErrNotFound)
		}
		// After the statement above, whose cascade deleted the deliveries: the order in
		// which recording an attempt locks them (migration 0006 says why).
		if _, err := q.ExecContext(ctx, deleteWebhookHealthQuery, id); err != nil {
			return fmt.Errorf("delete webhook: its health: %w", mapError(err))
		}
		return nil
	})
}

// RotateWebhookSecret makes newSecret the HMAC webhook's secret. The old secret stays valid
// as the previous secret for overlap (so receivers can switch without a gap); overlap <= 0
// drops it, and any previous secret, at once. While an earlier overlap runs, a rotation with
// an overlap returns a *RotationOverlapError and changes nothing. Returns the stored row, or
// ErrNotFound (also for an ed25519 webhook).
func (s *Store) RotateWebhookSecret(ctx context.Context, scope Scope, id uuid.UUID, newSecret string, overlap time.Duration) (Webhook, error) {
	return s.rotate(ctx, scope, id, SigningHMAC, newSecret, overlap)
}

// RotateWebhookSigningKey makes newKey ("whsk_") the ed25519 webhook's signing key, with the
// overlap rules of RotateWebhookSecret: the old key keeps signing for overlap. Returns the
// stored row, or ErrNotFound (also for an HMAC webhook).
func (s *Store) RotateWebhookSigningKey(ctx context.Context, scope Scope, id uuid.UUID, newKey string, overlap time.Duration) (Webhook, error) {
	return s.rotate(ctx, scope, id, SigningEd25519, newKey, overlap)
}

// rotate replaces what signs a webhook of the given signing, which must be the webhook's.
func (s *Store) rotate(ctx context.Context, scope Scope, id uuid.UUID, signing, credential string, overlap time.Duration) (Webhook, error) {
	secret, key, err := s.sealCredential(id, signing, credential)
	if err != nil {
		return Webhook{}, err
	}
	// Twice at most: an overlap that ends between the two statements lets the second try in.
	for range 2 {
		var row webhookRow
		err := s.q.GetContext(ctx, &row, rotateWebhookSecretQuery, scope.AccountID, scope.SurveyID, id, secret,
			max(overlap, 0).Microseconds(), key, signing)
		if err == nil {
			return s.open(row)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Webhook{}, fmt.Errorf("rotate webhook secret: %w", mapError(err))
		}
		// No such webhook, or an overlap running: the row says which.
		current, err := s.GetWebhook(ctx, scope, id)
		if err != nil {
			return Webhook{}, fmt.Errorf("rotate webhook secret: %w", err)
		}
		if current.Signing != signing {
			return Webhook{}, fmt.Errorf("rotate webhook secret: the webhook signs with %s, not %s: %w", current.Signing, signing, ErrNotFound)
		}
		if current.PreviousSecretExpiresAt != nil {
			return Webhook{}, fmt.Errorf("rotate webhook secret: %w", &RotationOverlapError{Until: *current.PreviousSecretExpiresAt})
		}
	}
	return Webhook{}, errors.New("rotate webhook secret: overlap ended, yet the rotation found it running")
}

// CountActiveWebhooks returns how many webhooks receive events, across all accounts.
func (s *Store) CountActiveWebhooks(ctx context.Context) (int64, error) {
	var n int64
	if err := s.q.GetContext(ctx, &n, countActiveWebhooksQuery); err != nil {
		return 0, fmt.Errorf("count active webhooks: %w", err)
	}
	return n, nil
}
