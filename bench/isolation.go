package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// ScenarioIsolation publishes at a fixed rate to a healthy endpoint alone, then at twice
// that rate with every other event going to an endpoint that never answers (each request is
// held until the attempt timeout ends it), and compares the healthy endpoint's latency.
const ScenarioIsolation = "isolation"

// Defaults of the isolation scenario, for the zero Options.Rate and Duration.
const (
	defaultIsolationRate     = 40
	defaultIsolationDuration = 60 * time.Second
)

// IsolationResult is the isolation scenario's two phases, measured in one run.
type IsolationResult struct {
	// Rate is the events per second of the second phase; the first publishes half of it.
	Rate    float64          `json:"rate"`
	Seconds float64          `json:"seconds"`
	Phases  []IsolationPhase `json:"phases"`
	// P99Ratio is the healthy endpoint's receiver p99 with the hanging endpoint over that
	// without it.
	P99Ratio float64 `json:"p99Ratio"`
}

// IsolationPhase is one phase: the healthy endpoint's receiver latency (publish to arrival)
// and what the hanging endpoint held.
type IsolationPhase struct {
	Name            string  `json:"name"`
	HealthyEvents   int     `json:"healthyEvents"`
	HealthyArrived  int     `json:"healthyArrived"`
	Receiver        Latency `json:"receiver"`
	HangingEvents   int     `json:"hangingEvents"`
	HangingRequests int64   `json:"hangingRequests"`
	// HangingPeak is the most requests the hanging endpoint held open at once: the worker
	// slots it took.
	HangingPeak int64 `json:"hangingPeak"`
}

// hangingEndpoint never answers: it holds each request until the client gives up.
type hangingEndpoint struct {
	srv              *httptest.Server
	stop             chan struct{}
	open, peak, seen atomic.Int64
}

func newHangingEndpoint() *hangingEndpoint {
	h := &hangingEndpoint{stop: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		h.seen.Add(1)
		n := h.open.Add(1)
		for {
			peak := h.peak.Load()
			if n <= peak || h.peak.CompareAndSwap(peak, n) {
				break
			}
		}
		select {
		case <-r.Context().Done():
		case <-h.stop:
		}
		h.open.Add(-1)
	}))
	return h
}

// close lets the requests still held go, then stops the server.
func (h *hangingEndpoint) close() {
	close(h.stop)
	h.srv.Close()
}

// runIsolation runs the two phases with webhooks of their own, on another port for the
// hanging endpoint: a different endpoint, as another customer's would be.
func runIsolation(ctx context.Context, st *stack, opts Options) (*IsolationResult, error) {
	rate, duration := opts.Rate, opts.Duration
	if rate <= 0 {
		rate = defaultIsolationRate
	}
	if duration <= 0 {
		duration = defaultIsolationDuration
	}
	hanging := newHangingEndpoint()
	defer hanging.close()
	res := &IsolationResult{Rate: rate}
	start := time.Now()
	for _, phase := range []struct {
		name    string
		rate    float64
		hanging bool
	}{{"healthy endpoint alone", rate / 2, false}, {"with a hanging endpoint", rate, true}} {
		hanging.peak.Store(hanging.open.Load())
		before := hanging.seen.Load()
		p := st.recv.begin(1, 0, 0)
		survey := fmt.Sprintf("isolation-%s-%d", st.runID, p.number)
		_, secret, err := st.createWebhook(ctx, survey, "healthy", st.recv.url(p, 0))
		if err != nil {
			return nil, err
		}
		p.secrets[0] = secret
		hangingSurvey := survey + "-hanging"
		if _, _, err := st.createWebhook(ctx, hangingSurvey, "hanging", hanging.srv.URL+"/"); err != nil {
			return nil, err
		}
		st.settling(ScenarioIsolation, phase.name)
		data := payloadData(opts.PayloadBytes)
		var errs errorCounter
		var hangingEvents atomic.Int64
		drive(ctx, load{duration: duration, concurrency: opts.Concurrency, rate: phase.rate}, func(ctx context.Context, i int, at time.Time) {
			target := survey
			id := eventID(st.runID, p.number, i)
			if phase.hanging && i%2 == 1 {
				target = hangingSurvey
				hangingEvents.Add(1)
			} else {
				p.publishing(id, at)
			}
			body, err := json.Marshal(publishRequest{EventID: id, EventType: eventType, SurveyID: target, Data: data})
			if err != nil {
				errs.add(err.Error())
				return
			}
			status, raw, err := st.publish(ctx, body)
			switch {
			case err != nil:
				errs.add(err.Error())
			case status != http.StatusCreated && status != http.StatusAccepted:
				errs.add(fmt.Sprintf("POST /api/events answered %d: %s", status, firstLine(raw)))
			case target == survey:
				p.accepted(1)
			}
		})
		p.donePublishing()
		if n, first := errs.summary(); n > 0 {
			return nil, fmt.Errorf("isolation, %s: %d publish errors, the first: %s", phase.name, n, first)
		}
		// The healthy deliveries arrive within seconds, or the endpoint was not isolated.
		deadline := time.Now().Add(opts.AttemptTimeout + time.Minute)
		for {
			delivered, expected, _ := p.counts()
			if delivered >= expected || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		p.mu.Lock()
		res.Phases = append(res.Phases, IsolationPhase{Name: phase.name, HealthyEvents: p.expected,
			HealthyArrived: len(p.delivered), Receiver: summarize(p.latencies), HangingEvents: int(hangingEvents.Load()),
			HangingRequests: hanging.seen.Load() - before, HangingPeak: hanging.peak.Load()})
		p.mu.Unlock()
	}
	res.Seconds = time.Since(start).Seconds()
	if alone := res.Phases[0].Receiver.P99; alone > 0 {
		res.P99Ratio = res.Phases[1].Receiver.P99 / alone
	}
	return res, nil
}

func (r *IsolationResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "\nisolation: %.0f events/s with every other one to an endpoint that never answers, against %.0f/s to the healthy endpoint alone\n", r.Rate, r.Rate/2)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\thealthy events\tarrived\tp50 ms\tp99 ms\tmax ms\thanging events\thanging requests\thanging peak open\t")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t\n", p.Name, p.HealthyEvents, p.HealthyArrived,
			p.Receiver.P50, p.Receiver.P99, p.Receiver.Max, p.HangingEvents, p.HangingRequests, p.HangingPeak)
	}
	tw.Flush()
	fmt.Fprintf(w, "healthy receiver p99 with the hanging endpoint / without: %.2f\n", r.P99Ratio)
}
