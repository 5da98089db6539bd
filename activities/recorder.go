package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/surveyhooks/surveyhooks/coalesce"
	"github.com/surveyhooks/surveyhooks/store"
)

// Attempts are recorded in batches: an event's deliveries are attempted side by side and
// finish at about the same time, and one statement for many attempts costs PostgreSQL
// less per attempt than one each.
const (
	// maxAttemptFlushers bounds the attempt statements in flight from one process.
	maxAttemptFlushers = 2
	// maxAttemptBatch bounds the attempts of one statement.
	maxAttemptBatch = 128
	// attemptFlushTimeout bounds one statement. Callers wait for it whatever their own
	// context says: an attempt a caller gave up on might be recorded all the same, and would
	// then be counted twice when its activity is retried.
	attemptFlushTimeout = 30 * time.Second
)

// queuedAttempt is an attempt waiting for a batch; recorded and err are set before done is
// closed.
type queuedAttempt struct {
	record store.AttemptRecord
	// recorded is false when another attempt of the delivery got in first.
	recorded bool
	// streak is the webhook's streak after the attempt, when recorded.
	streak store.Streak
	err    error
	done   chan struct{}
}

// recorder records attempts, sharing statements among concurrent ones.
type recorder struct {
	store *store.Store
	// observe, when set (tests, before any attempt), is told the size of each batch before
	// it is sent.
	observe func(size int)
	queue   *coalesce.Queue[*queuedAttempt]
}

func newRecorder(st *store.Store) *recorder {
	r := &recorder{store: st}
	r.queue = &coalesce.Queue[*queuedAttempt]{MaxFlushers: maxAttemptFlushers, MaxBatch: maxAttemptBatch, Flush: r.flush}
	return r
}

// record numbers and stores an attempt of its delivery with the outcome decide returns for
// that number, atomically. prior is the attempt count read before the attempt: while it is
// still current, a shared statement records the attempt as number prior+1; otherwise
// (another attempt was recorded meanwhile) the attempt is numbered again under the
// delivery's lock. It also returns the webhook's streak after the attempt.
// store.ErrNotFound means the delivery is gone.
func (r *recorder) record(ctx context.Context, a store.Attempt, prior int, decide func(number int) store.Outcome) (int, store.Outcome, store.Streak, error) {
	if a.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return 0, store.Outcome{}, store.Streak{}, fmt.Errorf("new attempt id: %w", err)
		}
		a.ID = id
	}
	q := &queuedAttempt{record: store.AttemptRecord{Attempt: a, Prior: prior, Outcome: decide(prior + 1)}, done: make(chan struct{})}
	r.queue.Add(q)
	<-q.done
	if q.err != nil {
		return 0, store.Outcome{}, store.Streak{}, q.err
	}
	if q.recorded {
		return prior + 1, q.record.Outcome, q.streak, nil
	}
	return r.store.RecordAttemptRenumbered(ctx, a, decide)
}

// flush records batch: one attempt with the single-row statement, more in one statement.
// If that statement fails, each attempt is tried on its own, so that one bad row cannot
// fail the others.
func (r *recorder) flush(batch []*queuedAttempt) {
	if r.observe != nil {
		r.observe(len(batch))
	}
	ctx, cancel := context.WithTimeout(context.Background(), attemptFlushTimeout)
	defer cancel()
	defer func() {
		for _, q := range batch {
			close(q.done)
		}
	}()
	if len(batch) > 1 {
		records := make([]store.AttemptRecord, len(batch))
		for i, q := range batch {
			records[i] = q.record
		}
		recorded, err := r.store.RecordAttempts(ctx, records)
		if err == nil {
			for _, q := range batch {
				q.streak, q.recorded = recorded[q.record.Attempt.ID]
			}
			return
		}
	}
	for _, q := range batch {
		q.streak, q.recorded, q.err = r.store.RecordAttempt(ctx, q.record)
	}
}
