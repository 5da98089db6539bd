package activities

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
)

func TestTargetCacheHandsEachTargetOverOnce(t *testing.T) {
	t.Parallel()
	c := NewTargetCache()
	id := uuid.New()
	c.Put(store.Target{DeliveryID: id, Body: []byte("{}")})

	got, ok := c.take(id)
	require.True(t, ok)
	require.Equal(t, id, got.DeliveryID)
	_, ok = c.take(id)
	require.False(t, ok, "a second attempt reads its target from the database")
	require.Zero(t, c.bytes)
}

func TestTargetCacheForgetsExpiredTargets(t *testing.T) {
	t.Parallel()
	c := NewTargetCache()
	c.ttl = time.Nanosecond
	id := uuid.New()
	c.Put(store.Target{DeliveryID: id})
	time.Sleep(time.Millisecond)
	_, ok := c.take(id)
	require.False(t, ok)

	// Entries never taken are swept.
	for range sweepEvery {
		c.Put(store.Target{DeliveryID: uuid.New()})
	}
	time.Sleep(time.Millisecond)
	c.Put(store.Target{DeliveryID: uuid.New()})
	require.Less(t, len(c.entries), sweepEvery)
}

func TestTargetCacheHoldsAtMostItsBytes(t *testing.T) {
	t.Parallel()
	c := NewTargetCache()
	c.maxBytes = 3 * (targetOverhead + 100)
	var ids []uuid.UUID
	for range 5 {
		id := uuid.New()
		ids = append(ids, id)
		c.Put(store.Target{DeliveryID: id, Body: make([]byte, 100)})
	}
	require.Len(t, c.entries, 3)
	require.LessOrEqual(t, c.bytes, c.maxBytes)
	_, ok := c.take(ids[4])
	require.False(t, ok, "a target beyond the bound is read from the database")
	_, ok = c.take(ids[0])
	require.True(t, ok)
	c.Put(store.Target{DeliveryID: ids[4], Body: make([]byte, 100)})
	_, ok = c.take(ids[4])
	require.True(t, ok, "room freed by a take is used again")
}
