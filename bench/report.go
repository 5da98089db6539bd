package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured.
type Report struct {
	Machine  Machine  `json:"machine"`
	Settings Settings `json:"settings"`
	// Scenarios are the throughput passes in the order they ran.
	Scenarios []Result `json:"scenarios"`
	// Rounds are each throughput scenario's maximum-rate passes and their median, in the
	// order the scenarios ran.
	Rounds []Rounds `json:"rounds,omitempty"`
	// Ratios compare the medians of the maximum-rate passes of ours, bare and raw (with one
	// round, those passes).
	Ratios    *Ratios          `json:"ratios,omitempty"`
	List      *ListResult      `json:"list,omitempty"`
	Isolation *IsolationResult `json:"isolation,omitempty"`
	Recovery  *RecoveryResult  `json:"recovery,omitempty"`
	Backoff   *BackoffResult   `json:"backoff,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Date       time.Time `json:"date"`
	OS         string    `json:"os"`
	CPUs       int       `json:"cpus"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	CPUModel   string    `json:"cpuModel,omitempty"`
	GoVersion  string    `json:"goVersion"`
}

// Settings are the options the run used.
type Settings struct {
	Count           int      `json:"count"`
	Duration        string   `json:"duration,omitempty"`
	Concurrency     int      `json:"concurrency"`
	Rate            float64  `json:"rate"`
	FanOut          int      `json:"fanOut"`
	PayloadBytes    int      `json:"payloadBytes"`
	FailRate        float64  `json:"failRate"`
	ReceiverLatency string   `json:"receiverLatency"`
	RetryDelays     []string `json:"retryDelays"`
	AttemptTimeout  string   `json:"attemptTimeout"`
	BareLocal       bool     `json:"bareLocal"`
	ExternalDB      bool     `json:"externalDatabase"`
	Durable         bool     `json:"durablePostgres"`
	Rounds          int      `json:"rounds"`
}

// Result is one pass of one throughput scenario.
type Result struct {
	Scenario string `json:"scenario"`
	// Pass is "" for the first pass, "round N" for the Nth maximum-rate one, "half" for the
	// one at half the rate reached.
	Pass string `json:"pass,omitempty"`
	// TargetRate is the publish rate asked for, events/s; 0 is as fast as possible.
	TargetRate float64 `json:"targetRate"`
	// Events were published; Deliveries expected from them (events × fan-out).
	Events     int `json:"events"`
	Deliveries int `json:"deliveries"`
	// Delivered and Failed are the deliveries that ended so.
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	// Queued counts events the API stored but could not start at once (202).
	Queued        int `json:"queued"`
	PublishErrors int `json:"publishErrors"`
	// Incomplete says why the pass ended before every delivery did ("" when it did not).
	Incomplete string `json:"incomplete,omitempty"`
	FirstError string `json:"firstError,omitempty"`
	// Requests the receiver got, of which Refused were answered 500 on purpose and
	// Duplicates repeated a delivery already answered 2xx.
	Requests      int `json:"requests"`
	Refused       int `json:"refused"`
	Duplicates    int `json:"duplicates"`
	BadSignatures int `json:"badSignatures"`
	// Seconds runs from the first publish until every delivery is over; PublishSeconds
	// until the last publish returned.
	Seconds        float64 `json:"seconds"`
	PublishSeconds float64 `json:"publishSeconds"`
	// DrainSeconds is how long the stack stayed busy after the last delivery (Temporal's
	// visibility and cleanup work catching up); its CPU counts in CPUSeconds.
	DrainSeconds     float64 `json:"drainSeconds"`
	EventsPerSec     float64 `json:"eventsPerSec"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	PublishPerSec    float64 `json:"publishPerSec"`
	// Receiver is publish → first 2xx answer at the receiver.
	Receiver Latency `json:"receiverLatency"`
	// DeliveredStatus is event stored → delivery recorded delivered (ours only).
	DeliveredStatus *Latency `json:"deliveredStatusLatency,omitempty"`
	// CPUSeconds is this process's CPU time (Temporal server, worker, API, receiver and
	// the harness itself) from the first publish until the stack is idle again after the
	// last delivery; PostgresCPUSeconds the cluster's, when the bench started it.
	CPUSeconds               float64  `json:"cpuSeconds"`
	CPUMsPerDelivery         float64  `json:"cpuMsPerDelivery"`
	PostgresCPUSeconds       *float64 `json:"postgresCpuSeconds,omitempty"`
	PostgresCPUMsPerDelivery *float64 `json:"postgresCpuMsPerDelivery,omitempty"`
	// MachineBusy is the fraction of all the machine's CPU time that was busy, whoever
	// used it: near 1 means the run was CPU bound (or shared the machine).
	MachineBusy float64 `json:"machineBusy"`
	// OtherCores is the CPU other processes used meanwhile, in cores (a PostgreSQL given
	// by URL counts as other).
	OtherCores float64 `json:"otherCores"`
	// RSSBytes is the process's resident set at the end; PeakRSSBytes its peak so far.
	RSSBytes     int64 `json:"rssBytes"`
	PeakRSSBytes int64 `json:"peakRssBytes"`
}

// Rounds are one scenario's deliveries/s over its maximum-rate passes.
type Rounds struct {
	Scenario         string    `json:"scenario"`
	DeliveriesPerSec []float64 `json:"deliveriesPerSec"`
	Median           float64   `json:"median"`
}

// Ratios compare deliveries/s of the maximum-rate passes (their medians).
type Ratios struct {
	OursToBare   float64 `json:"oursToBare,omitempty"`
	OursToBareSA float64 `json:"oursToBareSa,omitempty"`
	OursToRaw    float64 `json:"oursToRaw,omitempty"`
}

func newReport(o Options) *Report {
	r := &Report{
		Machine: Machine{
			Date:       time.Now().UTC().Truncate(time.Second),
			OS:         runtime.GOOS + "/" + runtime.GOARCH,
			CPUs:       runtime.NumCPU(),
			GOMAXPROCS: runtime.GOMAXPROCS(0),
			CPUModel:   cpuModel(),
			GoVersion:  runtime.Version(),
		},
		Settings: Settings{
			Count:           o.Count,
			Concurrency:     o.Concurrency,
			Rate:            o.Rate,
			FanOut:          o.FanOut,
			PayloadBytes:    o.PayloadBytes,
			FailRate:        o.FailRate,
			ReceiverLatency: o.ReceiverLatency.String(),
			AttemptTimeout:  o.AttemptTimeout.String(),
			BareLocal:       o.BareLocal,
			ExternalDB:      o.DatabaseURL != "",
			Durable:         o.Durable,
			Rounds:          o.Rounds,
			RetryDelays:     []string{},
		},
		Scenarios: []Result{},
	}
	if o.Duration > 0 {
		r.Settings.Duration = o.Duration.String()
	}
	for _, d := range o.RetryDelays {
		r.Settings.RetryDelays = append(r.Settings.RetryDelays, d.String())
	}
	return r
}

// maxRate reports whether r is one of its scenario's maximum-rate passes.
func (r Result) maxRate() bool {
	return r.Pass == "" || strings.HasPrefix(r.Pass, "round ")
}

// medianOf is the median of value over name's maximum-rate passes, 0 when it has none.
func (r *Report) medianOf(name string, value func(Result) float64) float64 {
	var values []float64
	for _, res := range r.Scenarios {
		if res.Scenario == name && res.maxRate() {
			values = append(values, value(res))
		}
	}
	return median(values)
}

// median of values (the mean of the middle two when their number is even), 0 for none.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarizeRounds fills Rounds and Ratios from the maximum-rate passes.
func (r *Report) summarizeRounds() {
	deliveriesPerSec := func(res Result) float64 { return res.DeliveriesPerSec }
	r.Rounds = nil
	for _, res := range r.Scenarios {
		if !res.maxRate() || slices.ContainsFunc(r.Rounds, func(x Rounds) bool { return x.Scenario == res.Scenario }) {
			continue
		}
		rounds := Rounds{Scenario: res.Scenario, Median: r.medianOf(res.Scenario, deliveriesPerSec)}
		for _, other := range r.Scenarios {
			if other.Scenario == res.Scenario && other.maxRate() {
				rounds.DeliveriesPerSec = append(rounds.DeliveriesPerSec, other.DeliveriesPerSec)
			}
		}
		r.Rounds = append(r.Rounds, rounds)
	}
	ours := r.medianOf(ScenarioOurs, deliveriesPerSec)
	if ours <= 0 {
		return
	}
	var ratios Ratios
	if bare := r.medianOf(ScenarioBare, deliveriesPerSec); bare > 0 {
		ratios.OursToBare = ours / bare
	}
	if bare := r.medianOf(ScenarioBareSA, deliveriesPerSec); bare > 0 {
		ratios.OursToBareSA = ours / bare
	}
	if raw := r.medianOf(ScenarioRaw, deliveriesPerSec); raw > 0 {
		ratios.OursToRaw = ours / raw
	}
	if ratios != (Ratios{}) {
		r.Ratios = &ratios
	}
}

// WriteText writes the report as tables for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	m, s := r.Machine, r.Settings
	fmt.Fprintf(&b, "surveyhooks bench  %s  %s, %d CPUs (GOMAXPROCS %d)%s, %s\n",
		m.Date.Format(time.RFC3339), m.OS, m.CPUs, m.GOMAXPROCS, prefixed(", ", m.CPUModel), m.GoVersion)
	load := fmt.Sprintf("%d events", s.Count)
	if s.Duration != "" {
		load = "for " + s.Duration
	}
	rate := "as fast as possible"
	if s.Rate > 0 {
		rate = fmt.Sprintf("at %g events/s", s.Rate)
	}
	db := "throwaway PostgreSQL, fsync off"
	switch {
	case s.ExternalDB:
		db = "external PostgreSQL"
	case s.Durable:
		db = "throwaway PostgreSQL, fsync on"
	}
	if len(r.Scenarios) == 0 && r.Backoff == nil {
		load, rate = "no throughput scenario", "run"
	}
	fmt.Fprintf(&b, "%s %s, concurrency %d, fan-out %d, payload %d B, fail rate %g, receiver latency %s, retry delays %s, %s\n",
		load, rate, s.Concurrency, s.FanOut, s.PayloadBytes, s.FailRate, s.ReceiverLatency, strings.Join(s.RetryDelays, ","), db)
	if s.BareLocal {
		b.WriteString("bare runs its HTTP activity as a local activity\n")
	}

	if len(r.Scenarios) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\trate\tevents\tdelivered\tfailed\tevents/s\tdeliveries/s\treceiver p50\tp90\tp99\tmax\tstatus p50\tp99\tCPU ms/deliv\t+PG\tbusy\tothers\tpeak RSS\t")
		for _, res := range r.Scenarios {
			name := res.Scenario
			if res.Pass != "" {
				name += " (" + res.Pass + ")"
			}
			target := "max"
			if res.TargetRate > 0 {
				target = fmt.Sprintf("%.0f/s", res.TargetRate)
			}
			status50, status99 := "-", "-"
			if res.DeliveredStatus != nil {
				status50, status99 = ms(res.DeliveredStatus.P50), ms(res.DeliveredStatus.P99)
			}
			pg := "-"
			if res.PostgresCPUMsPerDelivery != nil {
				pg = fmt.Sprintf("%.2f", *res.PostgresCPUMsPerDelivery)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\t%.0f%%\t%.2f\t%s\t\n",
				name, target, res.Events, res.Delivered, res.Failed, res.EventsPerSec, res.DeliveriesPerSec,
				ms(res.Receiver.P50), ms(res.Receiver.P90), ms(res.Receiver.P99), ms(res.Receiver.Max),
				status50, status99, res.CPUMsPerDelivery, pg, res.MachineBusy*100, res.OtherCores, mib(res.PeakRSSBytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, res := range r.Scenarios {
			if note := res.notes(); note != "" {
				fmt.Fprintf(&b, "%s%s: %s\n", res.Scenario, prefixed(" ", parens(res.Pass)), note)
			}
		}
	}
	if s.Rounds > 1 && len(r.Rounds) > 0 {
		fmt.Fprintf(&b, "\nmaximum-rate deliveries/s over %d rounds\n", s.Rounds)
		for _, x := range r.Rounds {
			runs := make([]string, len(x.DeliveriesPerSec))
			for i, v := range x.DeliveriesPerSec {
				runs[i] = fmt.Sprintf("%.1f", v)
			}
			fmt.Fprintf(&b, "%-9s median %8.1f  (%s)\n", x.Scenario, x.Median, strings.Join(runs, ", "))
		}
	}
	if r.Ratios != nil {
		b.WriteString("\n")
		if r.Ratios.OursToBare > 0 {
			of := "(deliveries/s)"
			if s.Rounds > 1 {
				of = "(deliveries/s, medians)"
			}
			fmt.Fprintf(&b, "ours/bare     %.2f  %s\n", r.Ratios.OursToBare, of)
		}
		if r.Ratios.OursToBareSA > 0 {
			fmt.Fprintf(&b, "ours/bare-sa  %.2f\n", r.Ratios.OursToBareSA)
		}
		if r.Ratios.OursToRaw > 0 {
			fmt.Fprintf(&b, "ours/raw      %.4f\n", r.Ratios.OursToRaw)
		}
	}
	if r.List != nil {
		r.List.writeText(&b)
	}
	if r.Isolation != nil {
		r.Isolation.writeText(&b)
	}
	if r.Recovery != nil {
		r.Recovery.writeText(&b)
	}
	if r.Backoff != nil {
		r.Backoff.writeText(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// notes lists what went other than planned in a pass.
func (r Result) notes() string {
	var notes []string
	if r.Incomplete != "" {
		notes = append(notes, "INCOMPLETE, "+r.Incomplete)
	}
	if r.PublishErrors > 0 {
		notes = append(notes, fmt.Sprintf("%d publish errors (first: %s)", r.PublishErrors, r.FirstError))
	}
	if r.Queued > 0 {
		notes = append(notes, fmt.Sprintf("%d events queued (202) and started by the dispatcher", r.Queued))
	}
	if r.Refused > 0 {
		notes = append(notes, fmt.Sprintf("%d requests answered 500 on purpose", r.Refused))
	}
	if r.DrainSeconds >= 2 {
		notes = append(notes, fmt.Sprintf("the stack stayed busy %.0f s after the last delivery", r.DrainSeconds))
	}
	if r.Duplicates > 0 {
		notes = append(notes, fmt.Sprintf("%d duplicate deliveries", r.Duplicates))
	}
	if r.BadSignatures > 0 {
		notes = append(notes, fmt.Sprintf("%d BAD SIGNATURES", r.BadSignatures))
	}
	return strings.Join(notes, "; ")
}

func ms(v float64) string {
	switch {
	case v >= 10_000:
		return fmt.Sprintf("%.1fs", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	default:
		return fmt.Sprintf("%.1fms", v)
	}
}

func mib(b int64) string {
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func parens(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// cpuModel reads the CPU's model name from /proc/cpuinfo, "" when unknown.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}
