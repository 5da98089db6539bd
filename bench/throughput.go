package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
	"go.temporal.io/sdk/client"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/signature"
)

// eventType is the type of every benchmark event.
const eventType = "survey.response.completed"

// driver is one way of publishing and delivering events: ours, bare or raw.
type driver interface {
	// prepare sets up the pass's webhooks (p.secrets) before anything is timed.
	prepare(ctx context.Context, p *pass) error
	// publish publishes event i, recording its publish time in p before it goes out.
	publish(ctx context.Context, p *pass, i int, at time.Time)
	// finished returns how many deliveries are over: delivered, and failed for good.
	finished(ctx context.Context, p *pass) (delivered, failed int, err error)
	// errors returns the publish errors and the first one.
	errors() (int, string)
}

func newDriver(st *stack, name string) driver {
	switch name {
	case ScenarioOurs:
		return &oursDriver{st: st, data: payloadData(st.opts.PayloadBytes)}
	case ScenarioBare, ScenarioBareSA:
		return &bareDriver{st: st, data: payloadData(st.opts.PayloadBytes), baseFailed: st.bare.failed.Load(),
			searchAttributes: name == ScenarioBareSA}
	default:
		return &rawDriver{st: st, data: payloadData(st.opts.PayloadBytes)}
	}
}

// runThroughput runs one pass of a throughput scenario: publish, wait until every delivery
// is over, and measure. label names a pass other than the first ("half").
func runThroughput(ctx context.Context, st *stack, opts Options, name string, rate float64, label string) (Result, error) {
	d := newDriver(st, name)
	p := st.recv.begin(opts.FanOut, opts.FailRate, opts.ReceiverLatency)
	if err := d.prepare(ctx, p); err != nil {
		return Result{}, err
	}
	count := opts.Count
	if name == ScenarioRaw && rate == 0 {
		count = max(count, rawMinEvents)
	}

	if opts.ProfileDir != "" && label == "" {
		stop, err := startProfile(filepath.Join(opts.ProfileDir, name+".pprof"))
		if err != nil {
			return Result{}, err
		}
		defer stop()
	}
	st.settling(name, label)
	before := quiesce(ctx, st.pgPIDFile)
	start := time.Now()
	var published atomic.Int64
	stopProgress := st.showProgress(name, label, p, &published, count, start)
	defer stopProgress()
	events := drive(ctx, load{count: count, duration: opts.Duration, concurrency: opts.Concurrency, rate: rate},
		func(ctx context.Context, i int, at time.Time) {
			d.publish(ctx, p, i, at)
			published.Add(1)
		})
	publishEnd := time.Now()
	p.donePublishing()

	delivered, failed, err := waitFinished(ctx, opts, d, p, name == ScenarioOurs)
	end := time.Now()
	stopProgress()
	// The CPU of the work this pass left behind is this pass's.
	st.settling(name, label)
	after := quiesce(ctx, st.pgPIDFile)
	var stall *stallError
	if errors.As(err, &stall) {
		// Reported with what did arrive; the next scenario still runs.
		delivered, failed = stall.delivered, stall.failed
	} else if err != nil {
		return Result{}, err
	}

	res := Result{
		Scenario:       name,
		Pass:           label,
		TargetRate:     rate,
		Events:         events,
		Delivered:      delivered,
		Failed:         failed,
		Seconds:        end.Sub(start).Seconds(),
		PublishSeconds: publishEnd.Sub(start).Seconds(),
		DrainSeconds:   max(0, after.at.Sub(end).Seconds()-idleWindow.Seconds()),
	}
	if stall != nil {
		res.Incomplete = stall.Error()
	}
	res.PublishErrors, res.FirstError = d.errors()
	if o, ok := d.(*oursDriver); ok {
		res.Queued = int(o.queued.Load())
		lat, err := o.deliveredLatency(ctx)
		if err != nil {
			return Result{}, err
		}
		res.DeliveredStatus = &lat
	}
	p.mu.Lock()
	res.Deliveries = p.expected
	res.Requests, res.Refused, res.Duplicates, res.BadSignatures = p.requests, p.refused, p.duplicates, p.badSignatures
	res.Receiver = summarize(p.latencies)
	p.mu.Unlock()
	res.measure(before, after)
	return res, nil
}

// startProfile starts a CPU profile into path and returns what stops it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// stallAfter is how long nothing may move before a pass is declared stalled, on top of
// an attempt and the schedule: a fan-out whose local activity times out (30 s) is retried
// after up to a minute.
const stallAfter = 2 * time.Minute

// waitFinished waits until every expected delivery of p is over. It gives up when nothing
// moves for stallAfter plus an attempt and the whole schedule.
func waitFinished(ctx context.Context, opts Options, d driver, p *pass, fromDatabase bool) (delivered, failed int, err error) {
	idle := stallAfter + opts.AttemptTimeout
	for _, delay := range opts.RetryDelays {
		idle += delay
	}
	last, lastMove := -1, time.Now()
	var asked time.Time // when d.finished last ran
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-timer.C:
		}
		// The receiver's counts are in memory and cheap; the database is asked rarely
		// until the receiver has seen about every delivery, since polling it is load on
		// what is measured, and then at once: a pass's end must not wait for a slow tick.
		received, expected, _ := p.counts()
		timer.Reset(5 * time.Millisecond)
		if fromDatabase && received+failed < expected && time.Since(asked) < 250*time.Millisecond {
			continue
		}
		asked = time.Now()
		delivered, failed, err = d.finished(ctx, p)
		if err != nil {
			return 0, 0, err
		}
		if delivered+failed >= expected {
			return delivered, failed, nil
		}
		if delivered+failed != last {
			last, lastMove = delivered+failed, time.Now()
		} else if time.Since(lastMove) > idle {
			return 0, 0, &stallError{delivered: delivered, failed: failed, expected: expected, idle: idle}
		}
		if fromDatabase && received+failed >= expected {
			// Every delivery reached the receiver: the records follow within milliseconds.
			timer.Reset(10 * time.Millisecond)
		}
	}
}

// stallError says that deliveries stopped ending before all of them did.
type stallError struct {
	delivered, failed, expected int
	idle                        time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("stalled: %d of %d deliveries over (%d delivered, %d failed) and none for %s",
		e.delivered+e.failed, e.expected, e.delivered, e.failed, e.idle.Round(time.Second))
}

// oursDriver publishes through the REST API and reads delivery states from the database.
type oursDriver struct {
	st         *stack
	data       json.RawMessage
	survey     string
	webhookIDs []string
	queued     atomic.Int64
	errs       errorCounter
}

func (o *oursDriver) prepare(ctx context.Context, p *pass) error {
	o.survey = fmt.Sprintf("bench-%s-%d", o.st.runID, p.number)
	for i := range p.secrets {
		id, secret, err := o.st.createWebhook(ctx, o.survey, fmt.Sprintf("bench %d", i), o.st.recv.url(p, i))
		if err != nil {
			return err
		}
		o.webhookIDs = append(o.webhookIDs, id)
		p.secrets[i] = secret
	}
	return nil
}

func (o *oursDriver) publish(ctx context.Context, p *pass, i int, at time.Time) {
	id := eventID(o.st.runID, p.number, i)
	body, err := json.Marshal(publishRequest{EventID: id, EventType: eventType, SurveyID: o.survey, Data: o.data})
	if err != nil {
		o.errs.add(err.Error())
		return
	}
	p.publishing(id, at)
	status, raw, err := o.st.publish(ctx, body)
	switch {
	case err != nil:
		o.errs.add(err.Error())
	case status == 201:
		p.accepted(len(p.secrets))
	case status == 202:
		// Stored; the dispatcher starts it once Temporal answers.
		o.queued.Add(1)
		p.accepted(len(p.secrets))
	default:
		o.errs.add(fmt.Sprintf("POST /api/events answered %d: %s", status, firstLine(raw)))
	}
}

const finishedQuery = `
SELECT count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'failed')
FROM deliveries WHERE webhook_id = ANY($1::uuid[])`

func (o *oursDriver) finished(ctx context.Context, _ *pass) (int, int, error) {
	var delivered, failed int
	if err := o.st.db.QueryRowContext(ctx, finishedQuery, pq.Array(o.webhookIDs)).Scan(&delivered, &failed); err != nil {
		return 0, 0, fmt.Errorf("count finished deliveries: %w", err)
	}
	return delivered, failed, nil
}

func (o *oursDriver) errors() (int, string) { return o.errs.summary() }

// Both times are the database's clock: the event row's insert and the delivery's update.
const deliveredLatencyQuery = `
SELECT extract(epoch FROM d.delivered_at - e.created_at) * 1000
FROM deliveries d JOIN events e ON e.id = d.event_id
WHERE d.webhook_id = ANY($1::uuid[]) AND d.delivered_at IS NOT NULL`

// deliveredLatency is event stored → delivery recorded delivered, for every delivery.
func (o *oursDriver) deliveredLatency(ctx context.Context) (Latency, error) {
	var ms []float64
	if err := o.st.db.SelectContext(ctx, &ms, deliveredLatencyQuery, pq.Array(o.webhookIDs)); err != nil {
		return Latency{}, fmt.Errorf("read delivered latencies: %w", err)
	}
	return summarize(ms), nil
}

// bareDriver starts the bare workflow directly, as the API's dispatcher starts ours.
type bareDriver struct {
	st               *stack
	data             json.RawMessage
	baseFailed       int64
	searchAttributes bool
	errs             errorCounter
}

func (b *bareDriver) prepare(_ context.Context, p *pass) error {
	return generateSecrets(p)
}

func (b *bareDriver) publish(ctx context.Context, p *pass, i int, at time.Time) {
	id := eventID(b.st.runID, p.number, i)
	body, err := envelope(id, b.data)
	if err != nil {
		b.errs.add(err.Error())
		return
	}
	in := bareInput{
		EventID: id, EventType: eventType, Body: body,
		Delays: b.st.opts.RetryDelays, AttemptTimeout: b.st.opts.AttemptTimeout, Local: b.st.opts.BareLocal,
		SearchAttributes: b.searchAttributes,
	}
	for h, secret := range p.secrets {
		in.Targets = append(in.Targets, bareTarget{URL: b.st.recv.url(p, h), Secret: secret})
	}
	start := client.StartWorkflowOptions{TaskQueue: b.st.wiring.TaskQueue}
	if b.searchAttributes {
		// Ours' start options: search attributes, summary and details.
		start = delivery.StartOptions(delivery.EventInput{
			EventID: id, EventType: eventType, SurveyID: "bench",
			Schedule: delivery.Schedule{Delays: in.Delays, AttemptTimeout: in.AttemptTimeout},
		}, b.st.wiring.TaskQueue)
	}
	start.ID = "bench-" + id
	// As the delivery service starts ours: the worker shares this client.
	start.EnableEagerStart = true
	p.publishing(id, at)
	_, err = b.st.tc.ExecuteWorkflow(ctx, start, bareWorkflowName, in)
	if err != nil {
		b.errs.add(err.Error())
		return
	}
	p.accepted(len(p.secrets))
}

func (b *bareDriver) finished(_ context.Context, p *pass) (int, int, error) {
	delivered, _, _ := p.counts()
	return delivered, int(b.st.bare.failed.Load() - b.baseFailed), nil
}

func (b *bareDriver) errors() (int, string) { return b.errs.summary() }

// rawDriver signs and POSTs from the publishers themselves, retrying on the schedule.
type rawDriver struct {
	st     *stack
	data   json.RawMessage
	failed atomic.Int64
	errs   errorCounter
}

func (r *rawDriver) prepare(_ context.Context, p *pass) error {
	return generateSecrets(p)
}

func (r *rawDriver) publish(ctx context.Context, p *pass, i int, at time.Time) {
	id := eventID(r.st.runID, p.number, i)
	body, err := envelope(id, r.data)
	if err != nil {
		r.errs.add(err.Error())
		return
	}
	p.publishing(id, at)
	p.accepted(len(p.secrets))
	for h := range p.secrets {
		r.attempt(ctx, p, fmt.Sprintf("%s-%d", id, h), h, body, 1)
	}
}

// attempt makes attempt n of a delivery; a failed one is tried again after the schedule's
// delay, off the publisher, as a timer would in a real sender.
func (r *rawDriver) attempt(ctx context.Context, p *pass, deliveryID string, hook int, body []byte, n int) {
	status, err := post(ctx, r.st.delivery, r.st.opts.AttemptTimeout, r.st.recv.url(p, hook), p.secrets[hook], deliveryID, eventType, body)
	if err == nil && status >= 200 && status < 300 {
		return
	}
	delays := r.st.opts.RetryDelays
	if n > len(delays) || ctx.Err() != nil {
		r.failed.Add(1)
		return
	}
	time.AfterFunc(delays[n-1], func() { r.attempt(ctx, p, deliveryID, hook, body, n+1) })
}

func (r *rawDriver) finished(_ context.Context, p *pass) (int, int, error) {
	delivered, _, _ := p.counts()
	return delivered, int(r.failed.Load()), nil
}

func (r *rawDriver) errors() (int, string) { return r.errs.summary() }

// publishRequest is the body of POST /api/events.
type publishRequest struct {
	EventID   string          `json:"event_id"`
	EventType string          `json:"event_type"`
	SurveyID  string          `json:"survey_id"`
	Data      json.RawMessage `json:"data"`
}

func eventID(runID string, pass, i int) string {
	return fmt.Sprintf("bench-%s-%d-%d", runID, pass, i)
}

// envelope is the body bare and raw send: the envelope the API builds for ours.
func envelope(id string, data json.RawMessage) ([]byte, error) {
	return json.Marshal(signature.Event{
		EventID:   id,
		EventType: eventType,
		Timestamp: time.Now().UTC().Truncate(time.Millisecond),
		Data:      data,
	})
}

// envelopeOverhead is about what the envelope adds around data.
const envelopeOverhead = len(`{"event_id":"bench-01234567-1-12345","event_type":"survey.response.completed","timestamp":"2026-01-01T00:00:00.123Z","data":}`)

// payloadData is a survey response whose envelope is about size bytes.
func payloadData(size int) json.RawMessage {
	const base = `{"survey":{"id":"bench","title":"Benchmark survey"},"response":{"id":"r-1","completed_at":"2026-01-01T00:00:00Z","answers":[{"questionId":"q1","value":""}]}}`
	pad := max(0, size-envelopeOverhead-len(base))
	return json.RawMessage(strings.Replace(base, `"value":""`, `"value":"`+strings.Repeat("x", pad)+`"`, 1))
}

func generateSecrets(p *pass) error {
	for i := range p.secrets {
		secret, err := signature.GenerateSecret()
		if err != nil {
			return err
		}
		p.secrets[i] = secret
	}
	return nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
