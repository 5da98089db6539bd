package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/localpg"
)

// topologyRateEnv sets the publish rate of TestTopologyFaultsUnderLoad, events a second.
const topologyRateEnv = "E2E_TOPOLOGY_RATE"

// fault is one thing that goes wrong, held for a while and then repaired.
type fault struct {
	name   string
	inject func()
	hold   time.Duration
	repair func()
	// watch names a worker whose return to work the figures report.
	watch string
}

// phase is a stretch of the run: a fault from its start to the next phase's start.
type phase struct {
	name                 string
	start, fault, repair time.Time // fault and repair are zero for the steady phase
	end                  time.Time
	watch                string
}

// TestTopologyFaultsUnderLoad runs the production shape on loopback: a Temporal cluster of
// two nodes built from the pinned server module (persistence and visibility on PostgreSQL,
// settings from docker-compose.yml) behind a load balancer, surveyhooks' own PostgreSQL,
// two API replicas and three workers. A steady publish rate, spread over both replicas,
// runs throughout; about 20% of first attempts answer 500. Faults come one after another,
// each repaired and given time to recover: SIGKILL of a Temporal node, of a worker, of an
// API replica; a restart of surveyhooks' PostgreSQL; a worker cut off from Temporal for
// 20 s. No accepted event loses a delivery, a delivery that arrives twice carries the same
// webhook-id and bytes, and every event has exactly one workflow run although both
// replicas dispatch the outbox. RELIABILITY.md keeps the figures it logs.
func TestTopologyFaultsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal cluster of two nodes and seven processes; not with -short")
	}
	rate := 6.0
	if v := os.Getenv(topologyRateEnv); v != "" {
		var err error
		rate, err = strconv.ParseFloat(v, 64)
		require.NoError(t, err)
	}
	compose := readCompose(t)
	top := startTopology(t, compose)

	respond := func(w http.ResponseWriter, r *http.Request, nth int) string {
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		if nth == 0 && failsFirst20(r.Header.Get("webhook-id")) {
			w.WriteHeader(http.StatusInternalServerError)
			return "500"
		}
		w.WriteHeader(http.StatusOK)
		return "200"
	}
	all, completed := newReceiver(t, respond), newReceiver(t, respond)
	setup := top.apiClient(0, &http.Client{Timeout: 30 * time.Second})
	setup.createWebhook(t, all.URL, "*")
	setup.createWebhook(t, completed.URL, "survey.response.completed")
	hits := func() []hit { return append(all.got(), completed.got()...) }

	loadCtx, stopLoad := context.WithCancel(context.WithoutCancel(t.Context()))
	defer stopLoad()
	sampler := &workSampler{top: top}
	samplerDone := make(chan struct{})
	go func() { sampler.run(loadCtx); close(samplerDone) }()
	pub := newPublisher(top, rate)
	began := time.Now()
	pub.start(loadCtx)
	since := func(at time.Time) string { return fmt.Sprintf("+%.1fs", at.Sub(began).Seconds()) }
	t.Logf("load: %.1f events/s over both API replicas, half of them completed responses (fan-out 2)", rate)

	hold := func(d time.Duration) {
		select {
		case <-time.After(d):
		case <-t.Context().Done():
		}
	}
	// flowing waits until a delivery of an event first sent after from has arrived.
	flowing := func(from time.Time) time.Time {
		var at time.Time
		require.Eventually(t, func() bool {
			fresh := map[string]bool{}
			for _, e := range pub.accepted() {
				if e.firstTry.After(from) {
					fresh[e.id] = true
				}
			}
			for _, h := range hits() {
				if h.Answer == "200" && fresh[h.EventID] {
					at = h.At
					return true
				}
			}
			return false
		}, 3*time.Minute, 100*time.Millisecond, "deliveries flow again after %s", since(from))
		return at
	}

	steady := &phase{name: "steady load, no fault", start: began}
	phases := []*phase{steady}
	flowing(began)
	hold(15 * time.Second)

	pg := top.pg
	faults := []fault{
		{
			name:   "SIGKILL temporal-1 (frontend, history, matching, worker), restarted after 15 s",
			inject: top.cluster.Nodes[0].Kill,
			hold:   15 * time.Second,
			repair: func() { require.NoError(t, top.cluster.Nodes[0].Start(t.Context())) },
		},
		{
			name:   "SIGKILL worker-2, a new worker-2' after 10 s",
			inject: func() { top.allWorkers()[1].proc.kill(t) },
			hold:   10 * time.Second,
			repair: func() { top.startWorker(t, "worker-2'", top.cluster.Front.Addr()) },
			watch:  "worker-2'",
		},
		{
			name:   "SIGKILL api-2, restarted after 10 s",
			inject: func() { top.apis[1].proc.kill(t) },
			hold:   10 * time.Second,
			repair: func() { top.startAPI(t, 1, top.apis[1].addr); top.waitReady(t, 1) },
		},
		{
			name: "restart of surveyhooks' PostgreSQL (stopped, started after 5 s)",
			inject: func() {
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				require.NoError(t, pg.Stop(ctx))
			},
			hold: 5 * time.Second,
			repair: func() {
				var err error
				pg, err = localpg.Start(t.Context(), localpg.Options{DataDir: pg.DataDir, Port: pg.Port})
				require.NoError(t, err)
			},
		},
		{
			name:   "worker-3 cut off from Temporal for 20 s (its proxy holds every byte), then reconnected",
			inject: top.cutoff.Pause,
			hold:   20 * time.Second,
			repair: top.cutoff.Resume,
			watch:  "worker-3",
		},
	}
	for _, f := range faults {
		ph := &phase{name: f.name, start: time.Now(), watch: f.watch}
		phases[len(phases)-1].end = ph.start
		phases = append(phases, ph)
		f.inject()
		ph.fault = time.Now()
		t.Logf("%s fault: %s", since(ph.fault), f.name)
		hold(f.hold)
		f.repair()
		ph.repair = time.Now()
		back := flowing(ph.fault)
		t.Logf("%s repaired (%v after the fault); deliveries of events sent after the fault arrive from %s (%v after it)",
			since(ph.repair), ph.repair.Sub(ph.fault).Round(100*time.Millisecond), since(back), back.Sub(ph.fault).Round(100*time.Millisecond))
		flowing(ph.repair)
		hold(10 * time.Second)
	}
	stopLoad()
	<-samplerDone
	pub.wait()
	loadEnd := time.Now()
	phases[len(phases)-1].end = loadEnd
	require.Empty(t, pub.gaveUp, "publishes never accepted")
	events := pub.accepted()
	want := 0
	for _, e := range events {
		want += e.fanout()
	}
	t.Logf("%s load stopped: %d events accepted, %d deliveries expected", since(loadEnd), len(events), want)

	counts := waitSettled(t, top.store, want, 3*time.Minute)
	require.Equal(t, want, counts[delivery.StatusDelivered], "every delivery delivered: %v", counts)
	require.Eventually(t, func() bool { return distinctOK(all.got(), completed.got()) >= want }, 30*time.Second, 50*time.Millisecond)
	t.Logf("%s every delivery settled", since(time.Now()))
	// Same webhook-id, same bytes on every request of a delivery.
	dupAll, dupCompleted := countDuplicates(t, all.got()), countDuplicates(t, completed.got())
	runs := workflowRuns(t, top, events)

	figures := topologyFigures(phases, events, pub.allTries(), all.got(), completed.got(), runs, sampler, top)
	t.Log("figures per phase (RELIABILITY.md):\n" + figures.table())
	for _, f := range figures {
		assert.Zero(t, f.lost, "%s: deliveries lost", f.name)
		assert.Equal(t, f.events, f.oneRun, "%s: events with exactly one workflow run", f.name)
	}
	t.Logf("RESULT topology: %d events, %d deliveries, %d requests, duplicates %d, lost %d, events with one workflow run %d of %d, %v",
		len(events), want, dupAll.requests+dupCompleted.requests, dupAll.extra2xx+dupCompleted.extra2xx,
		figures.total(func(f phaseFigures) int { return f.lost }), figures.total(func(f phaseFigures) int { return f.oneRun }), len(events),
		time.Since(began).Round(time.Second))
}

// workflowRuns counts the runs of each event's workflow in Temporal's visibility store,
// once every accepted event is there (it is written asynchronously), and logs the runs of
// any event that has more than one.
func workflowRuns(t *testing.T, top *topology, events []*publishedEvent) map[string]int {
	t.Helper()
	var runs map[string][]*workflowpb.WorkflowExecutionInfo
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		runs = map[string][]*workflowpb.WorkflowExecutionInfo{}
		var token []byte
		for {
			resp, err := top.temporal.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: top.namespace, Query: "WorkflowType = 'Event'", PageSize: 1000, NextPageToken: token,
			})
			if !assert.NoError(c, err) {
				return
			}
			for _, e := range resp.GetExecutions() {
				id := e.GetExecution().GetWorkflowId()
				if !slices.ContainsFunc(runs[id], func(o *workflowpb.WorkflowExecutionInfo) bool {
					return o.GetExecution().GetRunId() == e.GetExecution().GetRunId()
				}) {
					runs[id] = append(runs[id], e)
				}
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
		for _, e := range events {
			assert.Contains(c, runs, delivery.WorkflowID(e.id))
		}
	}, time.Minute, time.Second)
	known := map[string]*publishedEvent{}
	for _, e := range events {
		known[delivery.WorkflowID(e.id)] = e
	}
	counts := map[string]int{}
	for id, list := range runs {
		if strings.HasPrefix(id, delivery.WorkflowID("notice-")) {
			// surveyhooks' own events: a fifth of first attempts answer 500, so a webhook
			// may fail five times in a row, and its webhook.failing notice is an event too.
			t.Logf("notice %s: %d run(s)", id, len(list))
			continue
		}
		e := known[id]
		require.NotNil(t, e, "workflow %s belongs to no accepted event", id)
		counts[id] = len(list)
		if len(list) == 1 {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "event %s (first sent %s, accepted %s with %d after %d tries) has %d workflow runs:",
			e.id, e.firstTry.Format("15:04:05.000"), e.accepted.Format("15:04:05.000"), e.status, e.tries, len(list))
		for _, r := range list {
			fmt.Fprintf(&b, "\n  run %s: %s, started %s, closed %s", r.GetExecution().GetRunId(), r.GetStatus(),
				r.GetStartTime().AsTime().Format("15:04:05.000"), r.GetCloseTime().AsTime().Format("15:04:05.000"))
		}
		t.Log(b.String())
	}
	return counts
}

// phaseFigures are the figures of one phase.
type phaseFigures struct {
	name                        string
	start, fault, repair, end   time.Duration // since the load began
	accepted, refused, outboxed int           // publish requests in the phase; outboxed: 202
	events, deliveries, lost    int           // of the events accepted in the phase
	duplicates                  int           // 2xx requests in the phase repeating a delivered webhook-id
	oneRun                      int           // events accepted in the phase with exactly one workflow run
	flow, stall                 time.Duration // first fresh delivery after the fault; longest gap between deliveries
	latencyP50, latencyMax      time.Duration // first send to delivery, events accepted in the phase
	work                        []string      // attempts per worker
	watch                       string
	rejoined                    time.Duration // watched worker: repair to its first attempt
}

type allFigures []phaseFigures

func (fs allFigures) total(f func(phaseFigures) int) int {
	n := 0
	for _, x := range fs {
		n += f(x)
	}
	return n
}

func topologyFigures(phases []*phase, events []*publishedEvent, tries []publishTry, hitsAll, hitsCompleted []hit,
	runs map[string]int, sampler *workSampler, top *topology) allFigures {
	began := phases[0].start
	in := func(p *phase, at time.Time) bool { return !at.Before(p.start) && at.Before(p.end) }
	hits := append(slices.Clone(hitsAll), hitsCompleted...)
	slices.SortFunc(hits, func(a, b hit) int { return a.At.Compare(b.At) })
	// A 2xx request of a delivery that had one before is a duplicate.
	dup := make([]bool, len(hits))
	seenOK := map[string]bool{}
	for i, h := range hits {
		if h.Answer == "200" {
			dup[i] = seenOK[h.WebhookID]
			seenOK[h.WebhookID] = true
		}
	}
	// The first 2xx of each event at each receiver.
	type key struct {
		event    string
		receiver int
	}
	delivered := map[key]time.Time{}
	for r, list := range [][]hit{hitsAll, hitsCompleted} {
		for _, h := range list {
			if h.Answer != "200" {
				continue
			}
			if at, ok := delivered[key{h.EventID, r}]; !ok || h.At.Before(at) {
				delivered[key{h.EventID, r}] = h.At
			}
		}
	}
	firstTry := map[string]time.Time{}
	for _, e := range events {
		firstTry[e.id] = e.firstTry
	}
	var out allFigures
	for _, p := range phases {
		f := phaseFigures{name: p.name, start: p.start.Sub(began), end: p.end.Sub(began), watch: p.watch}
		if !p.fault.IsZero() {
			f.fault, f.repair = p.fault.Sub(began), p.repair.Sub(began)
		}
		for _, tr := range tries {
			if !in(p, tr.at) {
				continue
			}
			if tr.accepted() {
				f.accepted++
				if tr.status == http.StatusAccepted {
					f.outboxed++
				}
			} else {
				f.refused++
			}
		}
		var latencies []time.Duration
		for _, e := range events {
			if !in(p, e.accepted) {
				continue
			}
			f.events++
			f.deliveries += e.fanout()
			if runs[delivery.WorkflowID(e.id)] == 1 {
				f.oneRun++
			}
			for r := range e.fanout() {
				at, ok := delivered[key{e.id, r}]
				if !ok {
					f.lost++
					continue
				}
				latencies = append(latencies, at.Sub(e.firstTry))
			}
		}
		if len(latencies) > 0 {
			slices.Sort(latencies)
			f.latencyP50, f.latencyMax = latencies[len(latencies)/2], latencies[len(latencies)-1]
		}
		from := p.start
		if !p.fault.IsZero() {
			from = p.fault
		}
		last := from
		for i, h := range hits {
			if h.Answer != "200" {
				continue
			}
			if dup[i] && in(p, h.At) {
				f.duplicates++
			}
			if h.At.Before(from) || !h.At.Before(p.end) {
				continue
			}
			f.stall = max(f.stall, h.At.Sub(last))
			last = h.At
			if f.flow == 0 && firstTry[h.EventID].After(from) {
				f.flow = h.At.Sub(from)
			}
		}
		f.stall = max(f.stall, p.end.Sub(last))
		for _, w := range top.allWorkers() {
			if w.started.Before(p.end) {
				n := sampler.at(w.name, p.end) - sampler.at(w.name, p.start)
				f.work = append(f.work, fmt.Sprintf("%s %d", w.name, n))
			}
		}
		if p.watch != "" {
			if at := sampler.resumed(p.watch, p.repair); !at.IsZero() {
				f.rejoined = at.Sub(p.repair)
			}
		}
		out = append(out, f)
	}
	return out
}

// table renders the figures as the Markdown table RELIABILITY.md keeps.
func (fs allFigures) table() string {
	var b strings.Builder
	b.WriteString("| phase | window | publishes accepted / refused (202) | events, deliveries | lost | duplicates | one run per event | deliveries flow after | longest gap | latency p50 / max | attempts per worker |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	for _, f := range fs {
		window := fmt.Sprintf("%s–%s", sec(f.start), sec(f.end))
		flow := "—"
		if f.fault != 0 {
			window = fmt.Sprintf("fault %s, repaired %s, until %s", sec(f.fault), sec(f.repair), sec(f.end))
			flow = sec(f.flow)
		}
		work := strings.Join(f.work, ", ")
		if f.watch != "" {
			work += fmt.Sprintf("; %s working %s after the repair", f.watch, sec(f.rejoined))
		}
		fmt.Fprintf(&b, "| %s | %s | %d / %d (%d) | %d, %d | %d | %d | %d of %d | %s | %s | %s / %s | %s |\n",
			f.name, window, f.accepted, f.refused, f.outboxed, f.events, f.deliveries, f.lost, f.duplicates,
			f.oneRun, f.events, flow, sec(f.stall), sec(f.latencyP50), sec(f.latencyMax), work)
	}
	return b.String()
}
