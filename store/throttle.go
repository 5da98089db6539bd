package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
)

// RateLimit bounds the requests sent to one webhook across every worker: PerSecond on
// average, with up to Burst at once.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// Limit returns the webhook's rate limit, nil when it has none.
func (w *Webhook) Limit() *RateLimit {
	if w.RateLimit == nil {
		return nil
	}
	return &RateLimit{PerSecond: *w.RateLimit, Burst: w.RateBurst}
}

// interval is the time between two requests at the limit's rate, and tolerance how far
// ahead of its turn a request of a burst may go.
func (l RateLimit) interval() time.Duration {
	return time.Duration(math.Ceil(float64(time.Second) / l.PerSecond))
}

func (l RateLimit) tolerance() time.Duration {
	return time.Duration(l.Burst-1) * l.interval()
}

// takeSlotQuery is one step of the generic cell rate algorithm on the webhook's row, under
// its row lock, so that concurrent workers take from one bucket: granted when the
// theoretical arrival time, less the burst's tolerance ($4), is not after now ($2); the
// arrival time then moves one interval ($3) on. A refused take whose slot frees within
// $5 is told to wait for it; any other moves only its wake-up: one interval after the last
// refused one's, and never before a request could go. Durations are in microseconds.
const takeSlotQuery = `
INSERT INTO webhook_throttle AS t (webhook_id, tat, granted) VALUES ($1, $2::timestamptz + $3::bigint * interval '1 microsecond', true)
ON CONFLICT (webhook_id) DO UPDATE SET
	granted = greatest(t.tat, $2) - $4::bigint * interval '1 microsecond' <= $2,
	tat = CASE WHEN greatest(t.tat, $2) - $4::bigint * interval '1 microsecond' <= $2
		THEN greatest(t.tat, $2) + $3::bigint * interval '1 microsecond' ELSE t.tat END,
	wake = CASE WHEN t.tat - $4::bigint * interval '1 microsecond' <= $2 + $5::bigint * interval '1 microsecond' THEN t.wake
		ELSE greatest(t.wake + $3::bigint * interval '1 microsecond', t.tat - $4::bigint * interval '1 microsecond') END
RETURNING granted, CASE
	WHEN granted THEN 0
	WHEN tat - $4::bigint * interval '1 microsecond' <= $2 + $5::bigint * interval '1 microsecond'
		THEN ceil(extract(epoch FROM tat - $4::bigint * interval '1 microsecond' - $2) * 1000000)::bigint
	ELSE ceil(extract(epoch FROM wake - $2) * 1000000)::bigint END`

// SlotGrace is how soon a refused take's slot must free for TakeSlot to tell it to wait for
// that slot, instead of giving it a turn behind the other refused ones: a request that
// comes back at its turn a little early waits the moment out, and its slot is not lost.
const SlotGrace = 100 * time.Millisecond

// TakeSlot asks the webhook's rate limit for one request at now. It returns 0 when the
// request may go, or how long the caller should wait before asking again: at most
// SlotGrace when a slot frees that soon, else its turn behind the other refused requests.
// Every worker takes from the same row, so the limit holds across them all, as long as
// their clocks agree.
func (s *Store) TakeSlot(ctx context.Context, webhookID uuid.UUID, limit RateLimit, now time.Time) (time.Duration, error) {
	var granted bool
	var waitUS int64
	err := s.q.QueryRowxContext(ctx, takeSlotQuery, webhookID, now,
		limit.interval().Microseconds(), limit.tolerance().Microseconds(), SlotGrace.Microseconds()).Scan(&granted, &waitUS)
	if err != nil {
		return 0, fmt.Errorf("take a slot of webhook %s: %w", webhookID, mapError(err))
	}
	if granted {
		return 0, nil
	}
	return max(time.Duration(waitUS)*time.Microsecond, time.Microsecond), nil
}

const pauseWebhookQuery = `
INSERT INTO webhook_throttle AS t (webhook_id, paused_until) VALUES ($1, $2)
ON CONFLICT (webhook_id) DO UPDATE SET paused_until = greatest(t.paused_until, $2)`

// PauseWebhook holds every delivery of the webhook until until (its receiver asked for a
// pause); a longer pause already asked for stays.
func (s *Store) PauseWebhook(ctx context.Context, webhookID uuid.UUID, until time.Time) error {
	if _, err := s.q.ExecContext(ctx, pauseWebhookQuery, webhookID, until); err != nil {
		return fmt.Errorf("pause webhook %s: %w", webhookID, mapError(err))
	}
	return nil
}
