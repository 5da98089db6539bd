package coalesce_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/coalesce"
)

// Items that come while every flusher is busy go out together in the next batch, at most
// MaxBatch at a time, and each is flushed once.
func TestQueueBatchesWhileFlushersAreBusy(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	q := &coalesce.Queue[int]{MaxFlushers: 1, MaxBatch: 4, Flush: func(batch []int) {
		mu.Lock()
		batches = append(batches, batch)
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release // the only flusher is busy with the first item
		}
	}}
	q.Add(0)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) == 1 }, 5*time.Second, time.Millisecond)
	for i := 1; i <= 6; i++ {
		q.Add(i)
	}
	require.Equal(t, 6, q.Queued())
	close(release)
	require.Eventually(t, func() bool { return q.Queued() == 0 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(batches) == 3 }, 5*time.Second, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, [][]int{{0}, {1, 2, 3, 4}, {5, 6}}, batches)
}
