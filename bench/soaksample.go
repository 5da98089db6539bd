package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/surveyhooks/surveyhooks/localpg"
	"github.com/surveyhooks/surveyhooks/store"
)

// soakSamples collects the series of a soak, in the order first seen.
type soakSamples struct {
	mu     sync.Mutex
	order  []string
	byName map[string]*SoakSeries
	latest []string
}

func newSoakSamples() *soakSamples { return &soakSamples{byName: map[string]*SoakSeries{}} }

func (s *soakSamples) add(name, unit string, at time.Duration, v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ser, ok := s.byName[name]
	if !ok {
		ser = &SoakSeries{Name: name, Unit: unit}
		s.byName[name] = ser
		s.order = append(s.order, name)
	}
	ser.Points = append(ser.Points, SoakPoint{At: at, Value: v})
	s.latest = append(s.latest, fmt.Sprintf("%s=%.4g", name, v))
}

// last is the latest sample's values, for the progress line.
func (s *soakSamples) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := strings.Join(s.latest, " ")
	s.latest = nil
	return out
}

// series returns every series with its trend.
func (s *soakSamples) series() []SoakSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SoakSeries
	for _, name := range s.order {
		ser := *s.byName[name]
		ser.SlopePerHour, ser.Mean, ser.Noise = trend(ser.Points)
		out = append(out, ser)
	}
	return out
}

// trend fits value = a + b·hours by least squares and returns b, the mean and the
// standard deviation of the residuals.
func trend(points []SoakPoint) (slope, mean, noise float64) {
	n := float64(len(points))
	if n == 0 {
		return 0, 0, 0
	}
	var sx, sy float64
	for _, p := range points {
		sx += p.At.Hours()
		sy += p.Value
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for _, p := range points {
		dx := p.At.Hours() - mx
		sxx += dx * dx
		sxy += dx * (p.Value - my)
	}
	if sxx > 0 {
		slope = sxy / sxx
	}
	var ss float64
	for _, p := range points {
		r := p.Value - (my + slope*(p.At.Hours()-mx))
		ss += r * r
	}
	return slope, my, math.Sqrt(ss / n)
}

// csv renders every sample as name,unit,seconds,value lines.
func (s *soakSamples) csv() []byte {
	var b strings.Builder
	b.WriteString("series,unit,seconds,value\n")
	for _, ser := range s.series() {
		for _, p := range ser.Points {
			fmt.Fprintf(&b, "%s,%s,%.0f,%g\n", ser.Name, ser.Unit, p.At.Seconds(), p.Value)
		}
	}
	return []byte(b.String())
}

// sample records, for every process of the shape, its RSS, goroutines and open database
// connections, and the size of the databases' biggest tables.
func (sh *shape) sample(ctx context.Context, s *soakSamples, at time.Duration) {
	type proc struct {
		name       string
		pid        int
		goroutines func() (float64, error)
		pgPort     string
	}
	var procs []proc
	for _, n := range sh.cluster.Nodes {
		addr := n.PprofAddr
		procs = append(procs, proc{n.Name, n.PID(), func() (float64, error) { return pprofGoroutines(ctx, addr) }, pgPort(sh.pgs[0])})
	}
	for _, p := range sh.procs {
		addr := p.metricsAddr
		procs = append(procs, proc{p.name, p.cmd.Process.Pid, func() (float64, error) { return metricValue(ctx, addr, "go_goroutines") }, pgPort(sh.pgs[1])})
	}
	for _, p := range procs {
		if rss, err := rssBytes(p.pid); err == nil {
			s.add("rss "+p.name, "MB", at, rss/(1<<20))
		}
		if g, err := p.goroutines(); err == nil {
			s.add("goroutines "+p.name, "", at, g)
		}
		if c, err := socketsTo(p.pid, p.pgPort); err == nil {
			s.add("db conns "+p.name, "", at, float64(c))
		}
	}
	sh.sampleTables(ctx, s, at)
}

// sampleTables records surveyhooks' tables and Temporal's two databases, in MB.
func (sh *shape) sampleTables(ctx context.Context, s *soakSamples, at time.Duration) {
	read := func(pg *localpg.Cluster, database, query string) {
		db, err := sqlx.Open(store.DriverName, pg.URL(database))
		if err != nil {
			return
		}
		defer db.Close()
		var rows []struct {
			Name  string `db:"name"`
			Bytes int64  `db:"bytes"`
		}
		if err := db.SelectContext(ctx, &rows, query); err != nil {
			return
		}
		for _, r := range rows {
			s.add("size "+r.Name, "MB", at, float64(r.Bytes)/(1<<20))
		}
	}
	read(sh.pgs[1], "surveyhooks", `
		SELECT relname AS name, pg_total_relation_size(oid) AS bytes FROM pg_class
		WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace
		  AND relname IN ('events', 'deliveries', 'delivery_attempts')
		ORDER BY relname`)
	read(sh.pgs[0], "postgres", `
		SELECT datname AS name, pg_database_size(datname) AS bytes FROM pg_database
		WHERE datname IN ('temporal', 'temporal_visibility') ORDER BY datname`)
}

// rssBytes reads a process's resident set size.
func rssBytes(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// socketsTo counts the process's established TCP connections to port on loopback:
// its open database connections when port is PostgreSQL's.
func socketsTo(pid int, port string) (int, error) {
	want, err := strconv.Atoi(port)
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		raw, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(raw)) {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "01" { // 01: ESTABLISHED
				continue
			}
			_, remotePort, ok := strings.Cut(f[2], ":")
			if !ok {
				continue
			}
			if p, err := strconv.ParseInt(remotePort, 16, 32); err == nil && int(p) == want {
				inodes[f[9]] = true
			}
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			n++
		}
	}
	return n, nil
}

// metricValue sums the samples of a Prometheus metric at addr.
func metricValue(ctx context.Context, addr, metric string) (float64, error) {
	body, err := get(ctx, "http://"+addr+"/metrics")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	total, found := 0.0, false
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, metric)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, err
		}
		total, found = total+v, true
	}
	if !found {
		return 0, fmt.Errorf("no %s at %s", metric, addr)
	}
	return total, sc.Err()
}

// pprofGoroutines reads the goroutine count of a net/http/pprof endpoint.
func pprofGoroutines(ctx context.Context, addr string) (float64, error) {
	body, err := get(ctx, "http://"+addr+"/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer body.Close()
	line, err := bufio.NewReader(body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line) // goroutine profile: total N
	if len(f) < 4 {
		return 0, fmt.Errorf("pprof: %q", line)
	}
	return strconv.ParseFloat(f[3], 64)
}

func get(ctx context.Context, url string) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return cancelOnClose{resp.Body, cancel}, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
