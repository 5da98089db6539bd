package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/e2e/temporalcluster"
	"github.com/surveyhooks/surveyhooks/localpg"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// topology is the production shape on loopback: a Temporal cluster of two nodes behind a
// load balancer, on a PostgreSQL of its own; surveyhooks' PostgreSQL; two API replicas and
// three workers, the third reaching Temporal through a proxy the test can cut.
type topology struct {
	cluster   *temporalcluster.Cluster
	temporal  client.Client // through the load balancer
	namespace string
	pg        *localpg.Cluster
	db        *sqlx.DB
	store     *store.Store
	// cutoff is worker-3's way to Temporal.
	cutoff *temporalcluster.Proxy
	// env is what every surveyhooks process gets; each adds its addresses.
	env []string

	mu      sync.Mutex
	apis    []*replica // serve processes, by index; a restarted one replaces its entry
	workers []*replica // every worker process started, in order
}

// replica is one surveyhooks process.
type replica struct {
	name        string
	proc        *proc
	addr        string // serve's API address
	metricsAddr string
	temporal    string // its TEMPORAL_ADDRESS
	started     time.Time
}

// topologyRetryDelays keep retries of the 500s short, so that the test ends soon.
const topologyRetryDelays = "1s,2s,2s,2s,2s"

// startTopology builds and starts everything; it all stops when the test ends.
func startTopology(t *testing.T, compose composeTemporal) *topology {
	t.Helper()
	ctx := t.Context()
	began := time.Now()
	buildCtx, cancel := context.WithTimeout(ctx, 40*time.Minute)
	defer cancel()
	bins, err := temporalcluster.Build(buildCtx)
	require.NoError(t, err)
	t.Logf("temporal-server %s (built now: %v) in %v", bins.Version, bins.Built, time.Since(began).Round(time.Millisecond))
	binary(t)
	t.Logf("binaries ready after %v", time.Since(began).Round(time.Millisecond))

	// Temporal's PostgreSQL, apart from surveyhooks' so that restarting that one leaves
	// Temporal up. Throwaway: no fsync.
	dir, err := os.MkdirTemp("", "surveyhooks-e2e-temporal-pg-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	tpg, err := localpg.Start(ctx, localpg.Options{DataDir: filepath.Join(dir, "pg"), Ephemeral: true})
	if err != nil {
		os.RemoveAll(dir)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, tpg.Stop(ctx))
		require.NoError(t, os.RemoveAll(dir))
	})
	superuser, err := url.Parse(tpg.URL("postgres"))
	require.NoError(t, err)
	password, _ := superuser.User.Password()

	clusterDir := t.TempDir()
	cluster, err := temporalcluster.Start(ctx, temporalcluster.Options{
		Binaries:       bins,
		Nodes:          2,
		Settings:       compose.Settings,
		Postgres:       superuser.Host,
		PostgresUser:   superuser.User.Username(),
		PostgresPasswd: password,
		Dir:            clusterDir,
		Logger:         testLogger(t, slog.LevelInfo),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range cluster.Nodes {
				t.Logf("--- %s log (last 40 lines) ---\n%s", n.Name, n.Tail(40))
			}
		}
		cluster.Stop()
	})
	t.Logf("temporal cluster of %d nodes up after %v: %s behind %s", len(cluster.Nodes), time.Since(began).Round(time.Millisecond),
		strings.Join(nodeAddrs(cluster), ", "), cluster.Front.Addr())

	top := &topology{cluster: cluster, namespace: compose.Namespace}
	registerNamespace(t, cluster, compose.Namespace)
	top.temporal = dialTemporalNamespace(t, cluster.Front.Addr(), compose.Namespace)

	var pgURL string
	top.pg, pgURL = ownPostgres(t)
	top.db, err = sqlx.Open(store.DriverName, pgURL)
	require.NoError(t, err)
	t.Cleanup(func() { top.db.Close() })
	top.store = store.New(top.db, testenv.Keyring())
	top.env = []string{
		"DATABASE_URL=" + pgURL,
		"SURVEYHOOKS_ENCRYPTION_KEYS=" + testenv.EncryptionKeys(),
		"SURVEYHOOKS_API_KEYS=" + apiKey,
		"TEMPORAL_NAMESPACE=" + compose.Namespace,
		"SURVEYHOOKS_RETRY_DELAYS=" + topologyRetryDelays,
		"SURVEYHOOKS_ATTEMPT_TIMEOUT=5s",
		"SURVEYHOOKS_ALLOW_HTTP=true",
		"SURVEYHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
		// The worker logs every attempt at info: a cost that is not the point here.
		"SURVEYHOOKS_LOG_LEVEL=warn",
	}
	migrate := startProc(t, "migrate", top.env, "migrate")
	<-migrate.done
	require.NoError(t, migrate.err, migrate.tail(20))

	top.cutoff, err = temporalcluster.NewProxy(nodeAddrs(cluster)...)
	require.NoError(t, err)
	t.Cleanup(top.cutoff.Close)
	top.startWorker(t, "worker-1", cluster.Front.Addr())
	top.startWorker(t, "worker-2", cluster.Front.Addr())
	top.startWorker(t, "worker-3", top.cutoff.Addr())
	top.apis = make([]*replica, 2)
	for i := range top.apis {
		top.startAPI(t, i, freeAddr(t))
	}
	// The first worker registers the search attributes; event workflows start once every
	// frontend knows them.
	waitSearchAttributes(t, cluster, compose.Namespace)
	for i := range top.apis {
		top.waitReady(t, i)
	}
	t.Logf("topology up after %v", time.Since(began).Round(time.Millisecond))
	return top
}

func nodeAddrs(c *temporalcluster.Cluster) []string {
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.FrontendAddr)
	}
	return addrs
}

// registerNamespace creates the namespace, as docker-compose.yml's temporal-setup does,
// and waits until every node serves it.
func registerNamespace(t *testing.T, c *temporalcluster.Cluster, namespace string) {
	t.Helper()
	nc, err := client.NewNamespaceClient(client.Options{
		HostPort: c.Front.Addr(),
		Logger:   sdklog.NewStructuredLogger(testLogger(t, slog.LevelError)),
	})
	require.NoError(t, err)
	defer nc.Close()
	err = nc.Register(t.Context(), &workflowservice.RegisterNamespaceRequest{
		Namespace:                        namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(7 * 24 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if !errors.As(err, &exists) {
		require.NoError(t, err)
	}
	for _, n := range c.Nodes {
		tc := dialTemporalNamespace(t, n.FrontendAddr, namespace)
		require.Eventually(t, func() bool {
			_, err := tc.CountWorkflow(t.Context(), &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace})
			return err == nil
		}, time.Minute, 200*time.Millisecond, "%s serves namespace %s", n.Name, namespace)
	}
}

// waitSearchAttributes waits until every node's frontend accepts a query naming
// surveyhooks' search attributes.
func waitSearchAttributes(t *testing.T, c *temporalcluster.Cluster, namespace string) {
	t.Helper()
	var terms []string
	for name := range delivery.SearchAttributes() {
		terms = append(terms, name+" IS NULL")
	}
	query := strings.Join(terms, " AND ")
	for _, n := range c.Nodes {
		tc := dialTemporalNamespace(t, n.FrontendAddr, namespace)
		require.Eventually(t, func() bool {
			_, err := tc.CountWorkflow(t.Context(), &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: query})
			return err == nil
		}, 2*time.Minute, 200*time.Millisecond, "%s knows surveyhooks' search attributes", n.Name)
	}
}

// dialTemporalNamespace is dialTemporal for a namespace and address of the test's choice.
func dialTemporalNamespace(t *testing.T, addr, namespace string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  addr,
		Namespace: namespace,
		Logger:    sdklog.NewStructuredLogger(testLogger(t, slog.LevelError)),
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// startWorker starts a worker reaching Temporal at temporalAddr.
func (top *topology) startWorker(t *testing.T, name, temporalAddr string) *replica {
	t.Helper()
	r := &replica{name: name, metricsAddr: freeAddr(t), temporal: temporalAddr, started: time.Now()}
	r.proc = startProc(t, name, append(top.env[:len(top.env):len(top.env)],
		"TEMPORAL_ADDRESS="+temporalAddr, "SURVEYHOOKS_METRICS_ADDR="+r.metricsAddr), "worker")
	top.mu.Lock()
	top.workers = append(top.workers, r)
	top.mu.Unlock()
	return r
}

// startAPI starts (or restarts) API replica i on addr.
func (top *topology) startAPI(t *testing.T, i int, addr string) *replica {
	t.Helper()
	r := &replica{name: fmt.Sprintf("api-%d", i+1), addr: addr, metricsAddr: freeAddr(t), temporal: top.cluster.Front.Addr(), started: time.Now()}
	top.mu.Lock()
	if old := top.apis[i]; old != nil {
		r.name = old.name + "'"
	}
	top.mu.Unlock()
	r.proc = startProc(t, r.name, append(top.env[:len(top.env):len(top.env)],
		"TEMPORAL_ADDRESS="+r.temporal, "SURVEYHOOKS_ADDR="+addr, "SURVEYHOOKS_METRICS_ADDR="+r.metricsAddr), "serve")
	top.mu.Lock()
	top.apis[i] = r
	top.mu.Unlock()
	return r
}

// waitReady waits until API replica i answers /readyz with 200.
func (top *topology) waitReady(t *testing.T, i int) {
	t.Helper()
	top.mu.Lock()
	r := top.apis[i]
	top.mu.Unlock()
	require.Eventually(t, func() bool {
		if r.proc.exited() {
			return true
		}
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 2*time.Minute, 100*time.Millisecond, "%s ready", r.name)
	require.False(t, r.proc.exited(), "%s exited:\n%s", r.name, r.proc.tail(30))
}

// apiClient returns a client of API replica i.
func (top *topology) apiClient(i int, hc *http.Client) *apiClient {
	top.mu.Lock()
	defer top.mu.Unlock()
	return &apiClient{url: "http://" + top.apis[i].addr, key: apiKey, http: hc}
}

// allWorkers returns every worker process started, running or not.
func (top *topology) allWorkers() []*replica {
	top.mu.Lock()
	defer top.mu.Unlock()
	return append([]*replica(nil), top.workers...)
}

// attemptsMetric is the counter of delivery attempts a worker made.
const attemptsMetric = "surveyhooks_delivery_attempts_total"

// scrapeAttempts reads a worker's attempt count from its metrics endpoint.
func scrapeAttempts(ctx context.Context, addr string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, attemptsMetric)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		total += v
	}
	return int(total), sc.Err()
}
