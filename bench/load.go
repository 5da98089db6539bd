package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// load says how many events to publish, for how long, how many at once and how fast.
type load struct {
	count       int
	duration    time.Duration
	concurrency int
	// rate is events per second; 0 is as fast as the publishers go.
	rate float64
}

// drive calls publish from l.concurrency goroutines, once per event number, until l.count
// events (or l.duration) have been handed out, and returns how many were. At a fixed rate,
// at is the event's intended publish time, which the publisher records as its publish time:
// an event that waited for a free publisher counts that wait as latency.
func drive(ctx context.Context, l load, publish func(ctx context.Context, i int, at time.Time)) int {
	type job struct {
		i  int
		at time.Time
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range l.concurrency {
		wg.Go(func() {
			for j := range jobs {
				at := j.at
				if at.IsZero() {
					at = time.Now()
				}
				publish(ctx, j.i, at)
			}
		})
	}

	start := time.Now()
	var deadline time.Time
	if l.duration > 0 {
		deadline = start.Add(l.duration)
	}
	handed := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
loop:
	for i := 0; ; i++ {
		if l.duration <= 0 && i >= l.count {
			break
		}
		var at time.Time
		if l.rate > 0 {
			at = start.Add(time.Duration(float64(i) / l.rate * float64(time.Second)))
			if wait := time.Until(at); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
					break loop
				case <-timer.C:
				}
			}
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			break loop
		case jobs <- job{i: i, at: at}:
			handed++
		}
	}
	close(jobs)
	wg.Wait()
	return handed
}

// errorCounter keeps the number of errors and the first one, for the report.
type errorCounter struct {
	n     atomic.Int64
	mu    sync.Mutex
	first string
}

func (e *errorCounter) add(msg string) {
	if e.n.Add(1) == 1 {
		e.mu.Lock()
		e.first = msg
		e.mu.Unlock()
	}
}

func (e *errorCounter) summary() (int, string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return int(e.n.Load()), e.first
}
