package store

// ObserveAttemptBatches has f told the size of each attempt batch before it is sent. Call
// it before any attempt is recorded.
func (s *Store) ObserveAttemptBatches(f func(size int)) {
	s.attempts.observe = f
}

// QueuedAttempts is the number of attempts waiting for a batch.
func (s *Store) QueuedAttempts() int {
	return s.attempts.queue.queued()
}

// The dispatch marks' statements, for the test of their plans.
const (
	MarkEventDispatchedQuery  = markEventDispatchedQuery
	MarkEventsDispatchedQuery = markEventsDispatchedQuery
)
