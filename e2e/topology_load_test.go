package e2e_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// publisher publishes events at a steady rate, alternating between the API replicas; a
// refused publish (an error, or an answer other than 200, 201 or 202) is sent again to
// the other replica after a short wait, as a publisher would, until it is accepted.
type publisher struct {
	top      *topology
	interval time.Duration
	http     *http.Client

	mu     sync.Mutex
	tries  []publishTry
	events []*publishedEvent
	gaveUp []string
	wg     sync.WaitGroup
}

// publishTry is one request of a publish.
type publishTry struct {
	at      time.Time
	replica int
	status  int // 0: no answer
}

func (p publishTry) accepted() bool {
	return p.status == http.StatusOK || p.status == http.StatusCreated || p.status == http.StatusAccepted
}

// publishedEvent is an event the API accepted.
type publishedEvent struct {
	id        string
	completed bool // survey.response.completed: fan-out 2, else 1
	firstTry  time.Time
	accepted  time.Time
	status    int
	tries     int
}

// fanout is how many deliveries the event makes: every event goes to the receiver of "*",
// completed responses also to the receiver of completed responses.
func (e *publishedEvent) fanout() int {
	if e.completed {
		return 2
	}
	return 1
}

// publishGiveUp bounds one event's retries; no fault of the test lasts this long.
const publishGiveUp = 2 * time.Minute

func newPublisher(top *topology, rate float64) *publisher {
	return &publisher{
		top:      top,
		interval: time.Duration(float64(time.Second) / rate),
		http: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
		},
	}
}

// start publishes until ctx ends; wait then waits for the last publishes, retried until
// accepted. No publish begins once ctx has ended, so the events accepted after wait are all
// the events there are.
func (p *publisher) start(ctx context.Context) {
	p.wg.Go(func() {
		tick := time.NewTicker(p.interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Both cases may be ready at once, and select picks either.
			if ctx.Err() != nil {
				return
			}
			p.wg.Go(func() { p.publish(i) })
		}
	})
}

func (p *publisher) wait() { p.wg.Wait() }

func (p *publisher) publish(i int) {
	e := &publishedEvent{id: fmt.Sprintf("topo-%06d", i), completed: i%2 == 0, firstTry: time.Now()}
	eventType := "survey.response.updated"
	if e.completed {
		eventType = "survey.response.completed"
	}
	// Not the test's context: a publish under way when the load stops is finished.
	ctx := context.Background()
	for try := 0; time.Since(e.firstTry) < publishGiveUp; try++ {
		replica := (i + try) % 2
		status, _ := p.top.apiClient(replica, p.http).tryPublish(ctx, e.id, eventType)
		t := publishTry{at: time.Now(), replica: replica, status: status}
		p.mu.Lock()
		p.tries = append(p.tries, t)
		p.mu.Unlock()
		e.tries++
		if t.accepted() {
			e.accepted, e.status = t.at, status
			p.mu.Lock()
			p.events = append(p.events, e)
			p.mu.Unlock()
			return
		}
		time.Sleep(time.Duration(200+rand.IntN(200)) * time.Millisecond)
	}
	p.mu.Lock()
	p.gaveUp = append(p.gaveUp, e.id)
	p.mu.Unlock()
}

// accepted returns the events accepted so far.
func (p *publisher) accepted() []*publishedEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// allTries returns every request so far.
func (p *publisher) allTries() []publishTry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.tries)
}

// failsFirst20 picks about 20% of the deliveries, by id, to fail their first attempt.
func failsFirst20(webhookID string) bool {
	h := fnv.New32a()
	h.Write([]byte(webhookID))
	return h.Sum32()%10 < 2
}

// workSampler reads every worker's attempt counter twice a second.
type workSampler struct {
	top *topology

	mu      sync.Mutex
	samples map[string][]workSample // by worker name
}

type workSample struct {
	at       time.Time
	attempts int
}

func (s *workSampler) run(ctx context.Context) {
	s.samples = map[string][]workSample{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, w := range s.top.allWorkers() {
			if w.proc.exited() {
				continue
			}
			n, err := scrapeAttempts(ctx, w.metricsAddr)
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.samples[w.name] = append(s.samples[w.name], workSample{at: time.Now(), attempts: n})
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// at returns the worker's count at the last sample before t (0 before the first).
func (s *workSampler) at(name string, t time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, smp := range s.samples[name] {
		if smp.at.After(t) {
			break
		}
		n = smp.attempts
	}
	return n
}

// resumed returns when the worker's count first grew after t (zero if it has not).
func (s *workSampler) resumed(name string, t time.Time) time.Time {
	base := s.at(name, t)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, smp := range s.samples[name] {
		if smp.at.After(t) && smp.attempts > base {
			return smp.at
		}
	}
	return time.Time{}
}
