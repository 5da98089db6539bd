package bench

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Latency summarizes a set of latencies, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P95   float64 `json:"p95Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

// summarize computes nearest-rank percentiles of ms (which it leaves unsorted).
func summarize(ms []float64) Latency {
	if len(ms) == 0 {
		return Latency{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Latency{Count: len(s), P50: rank(0.50), P90: rank(0.90), P95: rank(0.95), P99: rank(0.99), Max: s[len(s)-1]}
}

// sample is the resource counters at one moment.
type sample struct {
	// cpu is this process's user + system CPU seconds.
	cpu float64
	// maxRSS is this process's peak resident set, in bytes.
	maxRSS int64
	// pgCPU is the PostgreSQL cluster's CPU seconds (postmaster, its live backends and
	// the ones it reaped), or -1 when unknown.
	pgCPU float64
	// busy and total are the machine's busy and total CPU ticks (all CPUs).
	busy, total uint64
	at          time.Time
}

func takeSample(pgPIDFile string) sample {
	s := sample{at: time.Now()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.cpu = tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
		s.maxRSS = int64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	s.pgCPU = postgresCPU(pgPIDFile)
	s.busy, s.total = machineTicks()
	return s
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// clockTicks is USER_HZ, the unit of /proc CPU times: 100 on every Linux Go runs on.
const clockTicks = 100

// postgresCPU sums the CPU time of the postmaster whose pid file is given and of its
// children, live (their own time) and reaped (the postmaster's cutime and cstime).
func postgresCPU(pidFile string) float64 {
	if pidFile == "" {
		return -1
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return -1
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return -1
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks uint64
	found := false
	for _, path := range stats {
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		ppid, cpu, ok := procStat(path)
		if !ok || (pid != postmaster && ppid != postmaster) {
			continue
		}
		found = found || pid == postmaster
		ticks += cpu
	}
	if !found {
		return -1
	}
	return float64(ticks) / clockTicks
}

// procStat reads a /proc/<pid>/stat: the parent pid and utime+stime+cutime+cstime.
func procStat(path string) (ppid int, ticks uint64, ok bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 15 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	for _, field := range f[11:15] { // utime stime cutime cstime
		n, _ := strconv.ParseUint(field, 10, 64)
		ticks += n
	}
	return ppid, ticks, true
}

// machineTicks reads the busy and total CPU ticks of all CPUs from /proc/stat.
func machineTicks() (busy, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, field := range fields[1:] {
		n, _ := strconv.ParseUint(field, 10, 64)
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// currentRSS is this process's resident set now, in bytes, or 0 when unknown.
func currentRSS() int64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// measure fills r's rates and resource figures from the samples around its pass.
func (r *Result) measure(before, after sample) {
	if r.Seconds > 0 {
		r.EventsPerSec = float64(r.Events) / r.Seconds
		r.DeliveriesPerSec = float64(r.Delivered) / r.Seconds
	}
	if r.PublishSeconds > 0 {
		r.PublishPerSec = float64(r.Events) / r.PublishSeconds
	}
	r.CPUSeconds = after.cpu - before.cpu
	if r.Delivered > 0 {
		r.CPUMsPerDelivery = r.CPUSeconds / float64(r.Delivered) * 1000
	}
	if before.pgCPU >= 0 && after.pgCPU >= 0 {
		pg := after.pgCPU - before.pgCPU
		r.PostgresCPUSeconds = &pg
		if r.Delivered > 0 {
			perDelivery := pg / float64(r.Delivered) * 1000
			r.PostgresCPUMsPerDelivery = &perDelivery
		}
	}
	if after.total > before.total {
		r.MachineBusy = float64(after.busy-before.busy) / float64(after.total-before.total)
		// What the rest of the machine used meanwhile: the bench's figures are only its
		// own when this is near zero.
		others := float64(after.busy-before.busy)/clockTicks - r.CPUSeconds
		if r.PostgresCPUSeconds != nil {
			others -= *r.PostgresCPUSeconds
		}
		if wall := after.at.Sub(before.at).Seconds(); wall > 0 {
			r.OtherCores = max(0, others/wall)
		}
	}
	r.RSSBytes = currentRSS()
	r.PeakRSSBytes = after.maxRSS
}

// Quiescence: Temporal keeps working after the last delivery (visibility records, closed
// workflows' tasks), as much as a second or more behind under load. That work belongs to
// the pass that caused it, and must not slow down the next one.
const (
	// idleCores is the CPU, in cores, under which the process (with its PostgreSQL) is
	// idle: what pollers and timers use with nothing to do.
	idleCores = 0.1
	// idleWindow is how long it must stay under idleCores.
	idleWindow = time.Second
	// quiesceMax bounds the wait.
	quiesceMax = 3 * time.Minute
)

// quiesce waits until this process and its PostgreSQL are idle, and returns the sample
// taken then.
func quiesce(ctx context.Context, pgPIDFile string) sample {
	prev := takeSample(pgPIDFile)
	deadline := time.Now().Add(quiesceMax)
	tick := time.NewTicker(idleWindow)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return takeSample(pgPIDFile)
		case <-tick.C:
		}
		cur := takeSample(pgPIDFile)
		used := cur.cpu - prev.cpu
		if cur.pgCPU >= 0 && prev.pgCPU >= 0 {
			used += cur.pgCPU - prev.pgCPU
		}
		if used < idleCores*idleWindow.Seconds() {
			return cur
		}
		prev = cur
	}
	return takeSample(pgPIDFile)
}
