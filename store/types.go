package store

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// DefaultAccount is the account of everything published or created without naming one (a
// platform key on seed 001's paths), and of everything stored before accounts existed.
const DefaultAccount = "default"

// Scope is where a webhook lives: an account, and a survey of it, or no survey for an
// account-wide webhook.
type Scope struct {
	AccountID string
	// SurveyID is "" for the account-wide webhooks.
	SurveyID string
}

// How a webhook's requests are signed (Webhook.Signing).
const (
	// SigningHMAC signs with a shared secret: HMAC-SHA256 in the profile header and in
	// Standard Webhooks' v1 signatures.
	SigningHMAC = "hmac"
	// SigningEd25519 signs with an ed25519 key pair: Standard Webhooks' v1a signatures,
	// which receivers verify with the public key alone.
	SigningEd25519 = "ed25519"
)

// Webhook is a URL subscribed to some event types of one survey, or of every survey (or
// some surveys) of its account.
type Webhook struct {
	ID        uuid.UUID `db:"id"`
	AccountID string    `db:"account_id"`
	// SurveyID is "" for an account-wide webhook.
	SurveyID string `db:"survey_id"`
	// SurveyIDs limits an account-wide webhook to these surveys; nil means every survey.
	SurveyIDs pq.StringArray `db:"survey_ids"`
	Name      string         `db:"name"`
	URL       string         `db:"url"`
	// Events are the subscribed event types and wildcards (a []string; pq.StringArray
	// scans PostgreSQL's text[]).
	Events      pq.StringArray `db:"events"`
	Description string         `db:"description"`
	IsActive    bool           `db:"is_active"`
	// DisabledAt is when surveyhooks turned the webhook off itself (DisableWebhook), with
	// DisabledReason; nil for an active webhook or one a person turned off.
	DisabledAt     *time.Time `db:"disabled_at"`
	DisabledReason string     `db:"disabled_reason"`
	// RateLimit, when set, bounds the requests per second sent to the webhook across all
	// workers, with up to RateBurst at once (Limit); RateBurst is 0 without it.
	RateLimit *float64 `db:"rate_limit"`
	RateBurst int      `db:"rate_burst"`
	// Signing is SigningHMAC (with Secret) or SigningEd25519 (with SigningKey); it never
	// changes. CreateWebhook takes "" as SigningHMAC.
	Signing string `db:"signing"`
	// Secret signs every request of an HMAC webhook ("" for an ed25519 one); never log it.
	// It is sealed in the database.
	Secret string `db:"-"`
	// PreviousSecret keeps signing until PreviousSecretExpiresAt after a rotation.
	PreviousSecret *string `db:"-"`
	// SigningKey is an ed25519 webhook's private key in the "whsk_" form ("" for an HMAC
	// one); it is never shown, never logged, and sealed in the database as secrets are.
	SigningKey string `db:"-"`
	// PreviousSigningKey keeps signing until PreviousSecretExpiresAt after a rotation.
	PreviousSigningKey *string `db:"-"`
	// PreviousSecretExpiresAt ends a rotation's overlap, of the secret or the signing key.
	PreviousSecretExpiresAt *time.Time `db:"previous_secret_expires_at"`
	CreatedAt               time.Time  `db:"created_at"`
	UpdatedAt               time.Time  `db:"updated_at"`
}

// Scope returns where the webhook lives.
func (w *Webhook) Scope() Scope {
	return Scope{AccountID: w.AccountID, SurveyID: w.SurveyID}
}

// PreviousSecretLive reports whether the previous secret or signing key of a rotation still
// signs at now. Reads already leave out a previous one past its expiry; a webhook read
// before may be used after it.
func (w *Webhook) PreviousSecretLive(now time.Time) bool {
	return (w.PreviousSecret != nil || w.PreviousSigningKey != nil) &&
		w.PreviousSecretExpiresAt != nil && now.Before(*w.PreviousSecretExpiresAt)
}

// SigningSecrets returns the secrets that sign a request sent at now, newest first: none
// for an ed25519 webhook.
func (w *Webhook) SigningSecrets(now time.Time) []string {
	if w.Signing == SigningEd25519 {
		return nil
	}
	return current(w.Secret, w.PreviousSecret, w.PreviousSecretLive(now))
}

// SigningKeys returns the "whsk_" keys that sign a request sent at now, newest first: none
// for an HMAC webhook.
func (w *Webhook) SigningKeys(now time.Time) []string {
	if w.Signing != SigningEd25519 {
		return nil
	}
	return current(w.SigningKey, w.PreviousSigningKey, w.PreviousSecretLive(now))
}

func current(newest string, previous *string, live bool) []string {
	if live && previous != nil {
		return []string{newest, *previous}
	}
	return []string{newest}
}

// Event is what a publisher sent, with the exact envelope bytes every attempt POSTs.
type Event struct {
	ID              string     `db:"id"`
	AccountID       string     `db:"account_id"`
	EventType       string     `db:"event_type"`
	SurveyID        string     `db:"survey_id"`
	Body            []byte     `db:"body"`
	TargetWebhookID *uuid.UUID `db:"target_webhook_id"`
	CreatedAt       time.Time  `db:"created_at"`
	DispatchedAt    *time.Time `db:"dispatched_at"`
	// Seq orders the account's events; their listing pages by it.
	Seq int64 `db:"seq"`
}

// Delivery is one event on its way to one webhook.
type Delivery struct {
	ID             uuid.UUID  `db:"id"`
	AccountID      string     `db:"account_id"`
	EventID        string     `db:"event_id"`
	WebhookID      uuid.UUID  `db:"webhook_id"`
	Status         string     `db:"status"`
	AttemptCount   int        `db:"attempt_count"`
	NextAttemptAt  *time.Time `db:"next_attempt_at"`
	LastStatusCode *int       `db:"last_status_code"`
	LastError      string     `db:"last_error"`
	CreatedAt      time.Time  `db:"created_at"`
	UpdatedAt      time.Time  `db:"updated_at"`
	DeliveredAt    *time.Time `db:"delivered_at"`
	// EventType is joined from the event for listings.
	EventType string `db:"event_type"`
}

// Attempt is one POST of a delivery, as sent and as answered.
type Attempt struct {
	ID              uuid.UUID       `db:"id"`
	DeliveryID      uuid.UUID       `db:"delivery_id"`
	Number          int             `db:"number"`
	Trigger         string          `db:"trigger"`
	StartedAt       time.Time       `db:"started_at"`
	DurationMS      float64         `db:"duration_ms"`
	RequestURL      string          `db:"request_url"`
	RequestHeaders  json.RawMessage `db:"request_headers"`
	RequestBody     string          `db:"request_body"`
	ResponseStatus  *int            `db:"response_status"`
	ResponseHeaders json.RawMessage `db:"response_headers"`
	ResponseBody    string          `db:"response_body"`
	Error           string          `db:"error"`
}

// Page asks for one page of a list ordered by id: After is the last id of the previous page.
type Page struct {
	After *uuid.UUID
	Limit int
}
