package signature

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// DefaultMaxBodyBytes is the largest body Middleware reads unless told
// otherwise: far above any survey event, small enough that a flood of large
// bodies cannot exhaust memory before the signature is checked.
const DefaultMaxBodyBytes = 1 << 20

// Option configures Middleware.
type Option func(*config)

type config struct {
	secrets       []string
	maxBodyBytes  int64
	tolerance     time.Duration
	now           func() time.Time
	untimestamped bool
}

// WithMaxBodyBytes sets the largest accepted body; larger requests get 413.
// Values below 1 keep DefaultMaxBodyBytes.
func WithMaxBodyBytes(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.maxBodyBytes = n
		}
	}
}

// WithTolerance sets how far webhook-timestamp may be from the clock.
// Values below 1 keep DefaultTolerance.
func WithTolerance(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.tolerance = d
		}
	}
}

// WithClock replaces time.Now for the timestamp check, for tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithSecrets accepts further secrets besides the one given to Middleware,
// for a receiver that is rotating: a request signed with any of them passes.
func WithSecrets(secrets ...string) Option {
	return func(c *config) {
		c.secrets = append(c.secrets, secrets...)
	}
}

// WithUntimestamped also accepts requests that carry only X-Webhook-Signature,
// for senders that do not send the Standard Webhooks headers. That scheme
// signs no timestamp: anyone who captured a request can replay it for ever,
// with the Standard Webhooks headers removed if it had them. Every request
// surveyhooks sends has them, so a receiver of surveyhooks never needs this.
func WithUntimestamped() Option {
	return func(c *config) {
		c.untimestamped = true
	}
}

type eventKey struct{}

// EventFromContext returns the Event that Middleware parsed from the request.
func EventFromContext(ctx context.Context) (*Event, bool) {
	ev, ok := ctx.Value(eventKey{}).(*Event)
	return ev, ok
}

// Middleware verifies every request before it reaches next.
//
// It reads at most the configured body size (413 beyond it), then checks the
// Standard Webhooks headers, whose signed timestamp refuses replays of old
// requests. Only with WithUntimestamped does a request without a
// webhook-signature header get checked against X-Webhook-Signature instead. A
// bad or missing signature gets 401. The body must then be an Event with event_id and
// event_type (else 400). All refusals are JSON {"code","message"} bodies.
//
// next receives the parsed Event through EventFromContext and can still read
// the raw body from r.Body.
func Middleware(secret string, opts ...Option) func(http.Handler) http.Handler {
	c := config{
		secrets:      []string{secret},
		maxBodyBytes: DefaultMaxBodyBytes,
		tolerance:    DefaultTolerance,
		now:          time.Now,
	}
	for _, opt := range opts {
		opt(&c)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > c.maxBodyBytes {
				writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "Request body is too large.")
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, c.maxBodyBytes))
			if err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "Request body is too large.")
					return
				}
				writeError(w, http.StatusBadRequest, "invalid_body", "Request body could not be read.")
				return
			}
			if err := c.verify(r.Header, body); err != nil {
				writeError(w, http.StatusUnauthorized, "invalid_signature", signatureMessage(err))
				return
			}
			var ev Event
			if err := json.Unmarshal(body, &ev); err != nil || ev.EventID == "" || ev.EventType == "" {
				writeError(w, http.StatusBadRequest, "invalid_event", "Request body is not a webhook event.")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), eventKey{}, &ev)))
		})
	}
}

// verify applies the scheme choice documented on Middleware.
func (c *config) verify(h http.Header, body []byte) error {
	if h.Get(HeaderWebhookSignature) != "" || !c.untimestamped {
		return verifyStandardAny(c.secrets, h, body, c.now(), c.tolerance)
	}
	return verifyAny(c.secrets, h.Get(HeaderSignature), body)
}

// signatureMessage tells the sender why a signature was refused without
// revealing anything about the expected value.
func signatureMessage(err error) string {
	switch {
	case errors.Is(err, ErrMissingSignature), errors.Is(err, ErrMissingHeaders):
		return "Webhook signature headers are missing."
	case errors.Is(err, ErrTimestampTooOld), errors.Is(err, ErrTimestampTooNew):
		return "Webhook timestamp is outside the accepted window."
	default:
		return "Webhook signature is invalid."
	}
}

// writeError answers with the JSON error shape surveyhooks' own API uses.
func writeError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, message})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
