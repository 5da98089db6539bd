package activities

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/surveyhooks/surveyhooks/store"
)

// TargetCache hands what a fan-out loaded (the event's body, each webhook with its secrets)
// to the first attempt of each delivery it created, so that the attempt does not read it all
// back from PostgreSQL: one statement less per delivery. The fan-out is either the API's
// publish, when the API and the worker share a process and this cache (dev), or the FanOut
// local activity, which runs in the same workflow task as the first attempts; either way
// milliseconds before them. The targets stay in this process's memory, never in the
// workflow's history (they hold secrets).
//
// An entry is taken once and kept at most targetTTL, so a webhook changed after its fan-out
// is read fresh by any attempt that did not follow at once. A miss (the workflow task moved
// to another worker, the entry expired, the cache was full) only costs the read.
type TargetCache struct {
	ttl      time.Duration
	maxBytes int

	mu      sync.Mutex
	entries map[uuid.UUID]cachedTarget
	bytes   int
	puts    int
}

type cachedTarget struct {
	target  store.Target
	expires time.Time
	size    int
}

const (
	// targetTTL is how long a fanned-out target waits for its first attempt. Under load the
	// attempt waits for a free local-activity slot, well under a second as measured.
	targetTTL = 5 * time.Second
	// targetCacheBytes bounds the bodies held; beyond it attempts read their target.
	targetCacheBytes = 64 << 20
	// sweepEvery puts, expired entries (never taken: the workflow task failed after its
	// fan-out) are dropped.
	sweepEvery = 1024
	// targetOverhead approximates an entry's size beside its body.
	targetOverhead = 512
)

// NewTargetCache returns an empty cache; share it between the API and the worker of one
// process (activities.WithTargetCache, dispatch.Options.Targets).
func NewTargetCache() *TargetCache {
	return &TargetCache{ttl: targetTTL, maxBytes: targetCacheBytes, entries: map[uuid.UUID]cachedTarget{}}
}

// Put keeps t for its delivery's first attempt. Time is the process's own clock (monotonic),
// never a test's.
func (c *TargetCache) Put(t store.Target) {
	now := time.Now()
	size := len(t.Body) + targetOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	c.puts++
	if c.puts%sweepEvery == 0 || c.bytes+size > c.maxBytes {
		c.sweep(now)
	}
	if c.bytes+size > c.maxBytes {
		return
	}
	if old, ok := c.entries[t.DeliveryID]; ok {
		c.bytes -= old.size
	}
	c.entries[t.DeliveryID] = cachedTarget{target: t, expires: now.Add(c.ttl), size: size}
	c.bytes += size
}

// take returns and forgets the delivery's target, if it is held and fresh.
func (c *TargetCache) take(deliveryID uuid.UUID) (store.Target, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[deliveryID]
	if !ok {
		return store.Target{}, false
	}
	delete(c.entries, deliveryID)
	c.bytes -= e.size
	if time.Now().After(e.expires) {
		return store.Target{}, false
	}
	return e.target, true
}

// sweep drops expired entries; the caller holds c.mu.
func (c *TargetCache) sweep(now time.Time) {
	for id, e := range c.entries {
		if now.After(e.expires) {
			delete(c.entries, id)
			c.bytes -= e.size
		}
	}
}
