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

// webhookColumns lists the columns every webhook query reads into a Webhook. A previous
// secret past its expiry reads as none: it signs nothing any more, and no caller should hold
// it (retention and every write to the row clear it for good).
const webhookColumns = `id, survey_id, name, url, events, description, is_active, secret,
	CASE WHEN previous_secret_expires_at > now() THEN previous_secret END AS previous_secret,
	CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at,
	created_at, updated_at`

// keepLivePreviousSecret is the SET clause of every write to a webhook: it clears a previous
// secret whose overlap has ended.
const keepLivePreviousSecret = `
	previous_secret = CASE WHEN previous_secret_expires_at > now() THEN previous_secret END,
	previous_secret_expires_at = CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END`

const insertWebhookQuery = `INSERT INTO webhooks
	(id, survey_id, name, url, events, description, is_active, secret)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	RETURNING ` + webhookColumns

const getWebhookQuery = `SELECT ` + webhookColumns + ` FROM webhooks
	WHERE survey_id = $1 AND id = $2`

// listWebhooksQuery pages by id: ids are UUIDv7, so id order is creation order.
const listWebhooksQuery = `SELECT ` + webhookColumns + ` FROM webhooks
	WHERE survey_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid)
	ORDER BY id
	LIMIT $3`

const listActiveWebhooksQuery = `SELECT ` + webhookColumns + ` FROM webhooks
	WHERE survey_id = $1 AND is_active
	ORDER BY id`

// updateWebhookQuery changes only the columns whose argument is not NULL.
const updateWebhookQuery = `UPDATE webhooks SET
	name = COALESCE($3, name),
	url = COALESCE($4, url),
	events = COALESCE($5::text[], events),
	description = COALESCE($6, description),
	is_active = COALESCE($7, is_active),
	updated_at = now(),` + keepLivePreviousSecret + `
	WHERE survey_id = $1 AND id = $2
	RETURNING ` + webhookColumns

const countActiveWebhooksQuery = `SELECT count(*) FROM webhooks WHERE is_active`

const deleteWebhookQuery = `DELETE FROM webhooks WHERE survey_id = $1 AND id = $2`

// rotateWebhookSecretQuery keeps the current secret as the previous one for the overlap
// ($4, in microseconds); with no overlap the old secret is dropped at once. It changes
// nothing while an earlier rotation's overlap runs, unless $4 is 0: a second rotation would
// push out the secret receivers may still be using, and tell its caller that its own secret
// is current when a concurrent one has replaced it. A concurrent rotation waits for the row
// lock, then finds the overlap and changes nothing. An overlap of 0 always applies: it drops
// every older secret, which is what a leaked secret calls for.
const rotateWebhookSecretQuery = `UPDATE webhooks SET
	previous_secret = CASE WHEN $4::bigint > 0 THEN secret END,
	previous_secret_expires_at = CASE WHEN $4::bigint > 0 THEN now() + $4::bigint * interval '1 microsecond' END,
	secret = $3,
	updated_at = now()
	WHERE survey_id = $1 AND id = $2
	  AND ($4::bigint = 0 OR previous_secret_expires_at IS NULL OR previous_secret_expires_at <= now())
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

// nonNilEvents makes an empty events array encode as [] rather than null.
func nonNilEvents(w Webhook) Webhook {
	if w.Events == nil {
		w.Events = pq.StringArray{}
	}
	return w
}

// CreateWebhook stores w under a new UUIDv7 id and returns the stored row. ID, timestamps
// and the previous-secret fields of w are ignored; the caller has validated the rest.
func (s *Store) CreateWebhook(ctx context.Context, w Webhook) (Webhook, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Webhook{}, fmt.Errorf("new webhook id: %w", err)
	}
	var row Webhook
	err = s.db.GetContext(ctx, &row, insertWebhookQuery,
		id, w.SurveyID, w.Name, w.URL, w.Events, w.Description, w.IsActive, w.Secret)
	if err != nil {
		return Webhook{}, fmt.Errorf("insert webhook: %w", mapError(err))
	}
	return nonNilEvents(row), nil
}

// GetWebhook returns the webhook id of survey surveyID, or ErrNotFound (also when the id
// belongs to another survey).
func (s *Store) GetWebhook(ctx context.Context, surveyID string, id uuid.UUID) (Webhook, error) {
	var row Webhook
	if err := s.db.GetContext(ctx, &row, getWebhookQuery, surveyID, id); err != nil {
		return Webhook{}, fmt.Errorf("get webhook: %w", mapError(err))
	}
	return nonNilEvents(row), nil
}

// ListWebhooks returns up to page.Limit webhooks of surveyID in creation order, starting
// after page.After. The caller caps the limit.
func (s *Store) ListWebhooks(ctx context.Context, surveyID string, page Page) ([]Webhook, error) {
	if page.Limit <= 0 {
		return nil, fmt.Errorf("list webhooks: limit %d is not positive", page.Limit)
	}
	rows := []Webhook{}
	if err := s.db.SelectContext(ctx, &rows, listWebhooksQuery, surveyID, page.After, page.Limit); err != nil {
		return nil, fmt.Errorf("list webhooks: %w", mapError(err))
	}
	return rows, nil
}

// ListActiveForSurvey returns every active webhook of surveyID in creation order, for the
// delivery engine to match against an event type.
func (s *Store) ListActiveForSurvey(ctx context.Context, surveyID string) ([]Webhook, error) {
	rows := []Webhook{}
	if err := s.db.SelectContext(ctx, &rows, listActiveWebhooksQuery, surveyID); err != nil {
		return nil, fmt.Errorf("list active webhooks: %w", mapError(err))
	}
	return rows, nil
}

// WebhookUpdate lists the fields a partial update changes; a nil field is left as it is.
type WebhookUpdate struct {
	Name        *string
	URL         *string
	Events      *[]string
	Description *string
	IsActive    *bool
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
}

// IsZero reports whether u changes nothing.
func (u WebhookUpdate) IsZero() bool {
	return u.Name == nil && u.URL == nil && u.Events == nil && u.Description == nil && u.IsActive == nil
}

// UpdateWebhook applies u to the webhook id of surveyID and returns the stored row, or
// ErrNotFound. An empty update changes nothing, not even updated_at.
func (s *Store) UpdateWebhook(ctx context.Context, surveyID string, id uuid.UUID, u WebhookUpdate) (Webhook, error) {
	if u.IsZero() {
		return s.GetWebhook(ctx, surveyID, id)
	}
	// A nil any is sent as NULL, which COALESCE turns into "keep the column".
	var events any
	if u.Events != nil {
		events = pq.StringArray(*u.Events)
	}
	var row Webhook
	err := s.db.GetContext(ctx, &row, updateWebhookQuery,
		surveyID, id, u.Name, u.URL, events, u.Description, u.IsActive)
	if err != nil {
		return Webhook{}, fmt.Errorf("update webhook: %w", mapError(err))
	}
	return nonNilEvents(row), nil
}

// DeleteWebhook deletes the webhook id of surveyID, or returns ErrNotFound. The schema
// cascades the delete to the webhook's deliveries, their attempts and its test events:
// the history goes with the webhook, and the delivery engine, finding the webhook gone,
// stops sending to it.
func (s *Store) DeleteWebhook(ctx context.Context, surveyID string, id uuid.UUID) error {
	res, err := s.db.ExecContext(ctx, deleteWebhookQuery, surveyID, id)
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
	return nil
}

// RotateWebhookSecret makes newSecret the webhook's secret. The old secret stays valid as
// the previous secret for overlap (so receivers can switch without a gap); overlap <= 0
// drops it, and any previous secret, at once. While an earlier overlap runs, a rotation with
// an overlap returns a *RotationOverlapError and changes nothing. Returns the stored row or
// ErrNotFound.
func (s *Store) RotateWebhookSecret(ctx context.Context, surveyID string, id uuid.UUID, newSecret string, overlap time.Duration) (Webhook, error) {
	// Twice at most: an overlap that ends between the two statements lets the second try in.
	for range 2 {
		var row Webhook
		err := s.db.GetContext(ctx, &row, rotateWebhookSecretQuery, surveyID, id, newSecret, max(overlap, 0).Microseconds())
		if err == nil {
			return nonNilEvents(row), nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Webhook{}, fmt.Errorf("rotate webhook secret: %w", mapError(err))
		}
		// No such webhook, or an overlap running: the row says which.
		current, err := s.GetWebhook(ctx, surveyID, id)
		if err != nil {
			return Webhook{}, fmt.Errorf("rotate webhook secret: %w", err)
		}
		if current.PreviousSecretExpiresAt != nil {
			return Webhook{}, fmt.Errorf("rotate webhook secret: %w", &RotationOverlapError{Until: *current.PreviousSecretExpiresAt})
		}
	}
	return Webhook{}, errors.New("rotate webhook secret: overlap ended, yet the rotation found it running")
}

// CountActiveWebhooks returns how many webhooks receive events, across all surveys.
func (s *Store) CountActiveWebhooks(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.GetContext(ctx, &n, countActiveWebhooksQuery); err != nil {
		return 0, fmt.Errorf("count active webhooks: %w", err)
	}
	return n, nil
}
