package store

// ObserveAttemptBatches has f told the size of each attempt batch before it is sent.
func (s *Store) ObserveAttemptBatches(f func(size int)) {
	s.attempts.mu.Lock()
	defer s.attempts.mu.Unlock()
	s.attempts.observe = f
}

// QueuedAttempts is the number of attempts waiting for a batch.
func (s *Store) QueuedAttempts() int {
	s.attempts.mu.Lock()
	defer s.attempts.mu.Unlock()
	return len(s.attempts.queue)
}
