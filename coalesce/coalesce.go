// Package coalesce sends what concurrent callers queue in shared batches, without a timer:
// an item goes out at once when fewer than MaxFlushers batches are in flight, and otherwise
// with the next batch, together with every item queued meanwhile (at most MaxBatch). A
// caller never waits for a batch to fill. The store's statements that many concurrent
// activities make (attempt records, dispatch marks) go through it: one statement for many
// rows costs PostgreSQL about half the CPU per row of one statement each.
package coalesce

import (
	"slices"
	"sync"
)

// Queue batches the items of concurrent callers. Its zero value is not usable: set every
// exported field.
type Queue[T any] struct {
	// MaxFlushers bounds the batches in flight; MaxBatch the items of one batch.
	MaxFlushers, MaxBatch int
	// Flush sends one batch; it runs in its own goroutine and must answer every item.
	Flush func(batch []T)

	mu       sync.Mutex
	queue    []T
	flushers int
}

// Add queues item for the next batch; Flush answers it.
func (c *Queue[T]) Add(item T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, item)
	if c.flushers < c.MaxFlushers {
		c.flushers++
		go c.flushQueued()
	}
}

// flushQueued sends the queued items until none is left.
func (c *Queue[T]) flushQueued() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), c.MaxBatch)
		if n == 0 {
			c.flushers--
			c.mu.Unlock()
			return
		}
		batch := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		c.mu.Unlock()
		c.Flush(batch)
	}
}

// Queued is the number of items waiting for a batch.
func (c *Queue[T]) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}
