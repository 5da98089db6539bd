package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/lib/pq"
	"go.temporal.io/sdk/worker"
)

// BackoffResult is the process's memory before and after Deliveries deliveries were left
// waiting for their next attempt (their receiver refused the first one).
type BackoffResult struct {
	Deliveries int `json:"deliveries"`
	// Seconds it took to publish them and see every one waiting.
	Seconds float64 `json:"seconds"`
	Before  Memory  `json:"before"`
	// Waiting is with every delivery waiting; a second reading, Settled, follows after as
	// long again (a minute at most), to show whether memory grows while nothing happens.
	Waiting Memory `json:"waiting"`
	Settled Memory `json:"settled"`
	// WorkerStopped is after stopping the worker and emptying the SDK's sticky workflow
	// cache: what is left over Before is the Temporal server's share.
	WorkerStopped Memory `json:"workerStopped"`
}

// Memory is the process's memory at one moment, after a garbage collection that returns
// free memory to the OS.
type Memory struct {
	RSSBytes       int64  `json:"rssBytes"`
	HeapInuseBytes uint64 `json:"heapInuseBytes"`
	Goroutines     int    `json:"goroutines"`
}

func readMemory() Memory {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Memory{RSSBytes: currentRSS(), HeapInuseBytes: ms.HeapInuse, Goroutines: runtime.NumGoroutine()}
}

const waitingQuery = `
SELECT count(*) FILTER (WHERE status = 'retrying'), count(*) FILTER (WHERE status IN ('delivered', 'failed'))
FROM deliveries WHERE webhook_id = ANY($1::uuid[])`

// runBackoff publishes opts.Count events to a webhook that refuses everything and measures
// memory once all their deliveries wait for attempt 2. It stops the worker at the end, so
// it must be the run's last scenario.
func runBackoff(ctx context.Context, st *stack, opts Options) (*BackoffResult, error) {
	p := st.recv.begin(1, 1, 0)
	o := &oursDriver{st: st, data: payloadData(opts.PayloadBytes)}
	if err := o.prepare(ctx, p); err != nil {
		return nil, err
	}
	res := &BackoffResult{Before: readMemory()}
	start := time.Now()
	drive(ctx, load{count: opts.Count, concurrency: opts.Concurrency}, func(ctx context.Context, i int, at time.Time) {
		o.publish(ctx, p, i, at)
	})
	p.donePublishing()
	if n, first := o.errors(); n > 0 {
		return nil, fmt.Errorf("%d events not published (first: %s)", n, first)
	}
	_, expected, _ := p.counts()

	last, lastMove := -1, time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var waiting, over int
		if err := st.db.QueryRowContext(ctx, waitingQuery, pq.Array(o.webhookIDs)).Scan(&waiting, &over); err != nil {
			return nil, fmt.Errorf("count waiting deliveries: %w", err)
		}
		if over > 0 {
			return nil, fmt.Errorf("%d deliveries ended instead of waiting: is the first retry delay long enough?", over)
		}
		if st.opts.Progress != nil {
			fmt.Fprintf(st.opts.Progress, "\rbackoff      %d of %d deliveries waiting   ", waiting, expected)
		}
		if waiting >= expected {
			break
		}
		if waiting != last {
			last, lastMove = waiting, time.Now()
		} else if time.Since(lastMove) > stallAfter+st.opts.AttemptTimeout {
			return nil, fmt.Errorf("stalled: %d of %d deliveries waiting", waiting, expected)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	if st.opts.Progress != nil {
		fmt.Fprintf(st.opts.Progress, "\r%80s\r", "")
	}
	res.Deliveries = expected
	res.Seconds = time.Since(start).Seconds()
	res.Waiting = readMemory()
	settle := time.NewTimer(min(time.Since(start), time.Minute))
	select {
	case <-ctx.Done():
		settle.Stop()
		return nil, ctx.Err()
	case <-settle.C:
	}
	res.Settled = readMemory()
	st.stopWorker()
	worker.PurgeStickyWorkflowCache()
	res.WorkerStopped = readMemory()
	return res, nil
}

func (r *BackoffResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "\n%d deliveries waiting for their next attempt (%.0f s to get there)\n", r.Deliveries, r.Seconds)
	fmt.Fprintf(w, "%-40s %10s %12s %11s\n", "", "RSS", "Go heap", "goroutines")
	row := func(name string, m Memory) {
		fmt.Fprintf(w, "%-40s %10s %12s %11d\n", name, mib(m.RSSBytes), mib(int64(m.HeapInuseBytes)), m.Goroutines)
	}
	row("before", r.Before)
	row("all waiting", r.Waiting)
	row("later, still waiting", r.Settled)
	row("worker stopped, workflow cache emptied", r.WorkerStopped)
}
