package store

import (
	"slices"
	"sync"
)

// coalescer sends what concurrent callers queue in shared statements, without a timer: an
// item goes out at once when fewer than maxFlushers statements are in flight, and
// otherwise with the next statement, together with every item queued meanwhile (at most
// maxBatch). One statement for many rows costs PostgreSQL about half the CPU per row of
// one statement each (BENCHMARKS.md), and a caller never waits for a batch to fill.
type coalescer[T any] struct {
	maxFlushers, maxBatch int
	// flush sends one batch; it runs in its own goroutine and must answer every item.
	flush func(batch []T)

	mu       sync.Mutex
	queue    []T
	flushers int
}

// add queues item for the next statement; flush answers it.
func (c *coalescer[T]) add(item T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, item)
	if c.flushers < c.maxFlushers {
		c.flushers++
		go c.flushQueued()
	}
}

// flushQueued sends the queued items until none is left.
func (c *coalescer[T]) flushQueued() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), c.maxBatch)
		if n == 0 {
			c.flushers--
			c.mu.Unlock()
			return
		}
		batch := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		c.mu.Unlock()
		c.flush(batch)
	}
}

// queued is the number of items waiting for a statement.
func (c *coalescer[T]) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}
