package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/e2e/temporalcluster"
	"github.com/surveyhooks/surveyhooks/localpg"
)

// soakTemporalSettings are the Temporal settings of docker-compose.yml, which
// e2e/topology_test.go checks.
var soakTemporalSettings = map[string]string{"DB": "postgres12_pgx", "NUM_HISTORY_SHARDS": "4"}

const soakNamespace = "default"

// soakRetryDelays give every delivery ten attempts: at a 20% random failure rate one in ten
// million deliveries fails them all.
const soakRetryDelays = "100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s"

// shape is the production shape on loopback, as the topology test runs it.
type shape struct {
	opts     SoakOptions
	dir      string
	pgs      []*localpg.Cluster // Temporal's, surveyhooks'
	cluster  *temporalcluster.Cluster
	procs    []*soakProc
	apis     []string // API base URLs
	apiKey   string
	http     *http.Client
	receiver *receiver
	pass     *pass
	next     atomic.Int64 // event numbers
}

// soakProc is a surveyhooks process of the shape.
type soakProc struct {
	name        string
	cmd         *exec.Cmd
	metricsAddr string
}

func startShape(ctx context.Context, opts SoakOptions) (sh *shape, err error) {
	sh = &shape{opts: opts, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	defer func() {
		if err != nil {
			sh.stop()
		}
	}()
	bins, err := temporalcluster.Build(ctx)
	if err != nil {
		return nil, err
	}
	if sh.dir, err = os.MkdirTemp("", "surveyhooks-soak-"); err != nil {
		return nil, err
	}
	// PostgreSQL runs as the OS user postgres when we are root; it must reach the folder.
	if err := os.Chmod(sh.dir, 0o755); err != nil {
		return nil, err
	}
	for _, name := range []string{"temporal-pg", "surveyhooks-pg"} {
		pg, err := localpg.Start(ctx, localpg.Options{DataDir: filepath.Join(sh.dir, name), Ephemeral: true})
		if err != nil {
			return nil, err
		}
		sh.pgs = append(sh.pgs, pg)
	}
	superuser, err := url.Parse(sh.pgs[0].URL("postgres"))
	if err != nil {
		return nil, err
	}
	password, _ := superuser.User.Password()
	sh.cluster, err = temporalcluster.Start(ctx, temporalcluster.Options{
		Binaries: bins, Nodes: 2, Settings: soakTemporalSettings,
		Postgres: superuser.Host, PostgresUser: superuser.User.Username(), PostgresPasswd: password,
		Dir: filepath.Join(sh.dir, "temporal"), Logger: sh.opts.Logger, Pprof: true,
	})
	if err != nil {
		return nil, err
	}
	if err := sh.registerNamespace(ctx); err != nil {
		return nil, err
	}

	if err := sh.pgs[1].CreateDatabase(ctx, "surveyhooks"); err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	sh.apiKey = "shk_soak_" + hex.EncodeToString(key)
	env := []string{
		"DATABASE_URL=" + sh.pgs[1].URL("surveyhooks"),
		"SURVEYHOOKS_ENCRYPTION_KEYS=" + opts.EncryptionKeys,
		"SURVEYHOOKS_API_KEYS=" + sh.apiKey,
		"SURVEYHOOKS_API_RATE_LIMIT=off",
		"TEMPORAL_ADDRESS=" + sh.cluster.Front.Addr(),
		"TEMPORAL_NAMESPACE=" + soakNamespace,
		"SURVEYHOOKS_RETRY_DELAYS=" + soakRetryDelays,
		"SURVEYHOOKS_ALLOW_HTTP=true",
		"SURVEYHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
		"SURVEYHOOKS_LOG_LEVEL=warn",
	}
	migrate, err := sh.start("migrate", env, "migrate")
	if err != nil {
		return nil, err
	}
	if err := migrate.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("surveyhooks migrate: %w (log %s)", err, sh.logPath("migrate"))
	}
	for i := range 3 {
		if _, err := sh.start(fmt.Sprintf("worker-%d", i+1), env, "worker"); err != nil {
			return nil, err
		}
	}
	for i := range 2 {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		if _, err := sh.start(fmt.Sprintf("api-%d", i+1), append(env, "SURVEYHOOKS_ADDR="+addr), "serve"); err != nil {
			return nil, err
		}
		sh.apis = append(sh.apis, "http://"+addr)
	}
	if err := sh.waitReady(ctx); err != nil {
		return nil, err
	}

	sh.receiver = newReceiver()
	sh.pass = sh.receiver.begin(2, opts.FailRate, 0)
	for i := range 2 {
		secret, err := sh.createWebhook(ctx, sh.receiver.url(sh.pass, i))
		if err != nil {
			return nil, err
		}
		sh.pass.secrets[i] = secret
	}
	return sh, nil
}

func (sh *shape) logPath(name string) string { return filepath.Join(sh.dir, name+".log") }

// start runs the surveyhooks binary with args; its output goes to a log file in the
// shape's folder. It dies with this process.
func (sh *shape) start(name string, env []string, args ...string) (*soakProc, error) {
	metrics, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(sh.logPath(name))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(sh.opts.Binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "SURVEYHOOKS_METRICS_ADDR=" + metrics}, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	logFile.Close() // the child has its own descriptor
	p := &soakProc{name: name, cmd: cmd, metricsAddr: metrics}
	if args[0] != "migrate" {
		sh.procs = append(sh.procs, p)
	}
	return p, nil
}

func (sh *shape) stop() {
	for _, p := range sh.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range sh.procs {
		_ = p.cmd.Wait()
	}
	if sh.receiver != nil {
		sh.receiver.close()
	}
	if sh.cluster != nil {
		sh.cluster.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, pg := range sh.pgs {
		_ = pg.Stop(ctx)
	}
	if sh.dir != "" {
		os.RemoveAll(sh.dir)
	}
}

// registerNamespace creates the namespace and waits until every node serves it and knows
// surveyhooks' search attributes (which the test registers as docker-compose.yml's
// temporal-setup does, so that the workers find them).
func (sh *shape) registerNamespace(ctx context.Context) error {
	logger := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	nc, err := client.NewNamespaceClient(client.Options{HostPort: sh.cluster.Front.Addr(), Logger: logger})
	if err != nil {
		return err
	}
	defer nc.Close()
	err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: soakNamespace, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register namespace: %w", err)
	}
	var terms []string
	for name := range delivery.SearchAttributes() {
		terms = append(terms, name+" IS NULL")
	}
	for i, n := range sh.cluster.Nodes {
		tc, err := client.Dial(client.Options{HostPort: n.FrontendAddr, Namespace: soakNamespace, Logger: logger})
		if err != nil {
			return err
		}
		err = waitFor(ctx, time.Minute, func() error {
			_, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: soakNamespace})
			return err
		})
		if err == nil && i == 0 {
			err = delivery.RegisterSearchAttributes(ctx, tc, soakNamespace)
		}
		if err == nil {
			err = waitFor(ctx, 2*time.Minute, func() error {
				_, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
					Namespace: soakNamespace, Query: strings.Join(terms, " AND ")})
				return err
			})
		}
		tc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
	}
	return nil
}

// waitReady waits until both API replicas answer /readyz with 200.
func (sh *shape) waitReady(ctx context.Context) error {
	for _, api := range sh.apis {
		err := waitFor(ctx, 2*time.Minute, func() error {
			status, _, err := sh.call(ctx, api, http.MethodGet, "/readyz", nil)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("readyz: %d", status)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", api, err)
		}
	}
	return nil
}

func (sh *shape) call(ctx context.Context, base, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+sh.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := sh.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

const soakSurvey = "survey-soak"

func (sh *shape) createWebhook(ctx context.Context, target string) (string, error) {
	body, _ := json.Marshal(map[string]any{"name": "soak", "url": target, "events": []string{"*"}})
	status, raw, err := sh.call(ctx, sh.apis[0], http.MethodPost, "/api/surveys/"+soakSurvey+"/webhooks", body)
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		return "", fmt.Errorf("create webhook: %d %s", status, raw)
	}
	var out struct {
		Secret string `json:"secret"`
	}
	return out.Secret, json.Unmarshal(raw, &out)
}

// publish drives l over both replicas, each event to the next replica, a refused one
// again to the other until it is accepted; it returns how many events were published.
func (sh *shape) publish(ctx context.Context, l load) int {
	return drive(ctx, l, func(ctx context.Context, _ int, at time.Time) {
		i := sh.next.Add(1)
		id := fmt.Sprintf("soak-%08d", i)
		body, _ := json.Marshal(map[string]any{
			"event_id": id, "event_type": "survey.response.completed", "survey_id": soakSurvey,
			"data": map[string]any{
				"survey":   map[string]any{"id": soakSurvey, "title": "Soak"},
				"response": map[string]any{"id": "r-" + id, "answers": []any{map[string]any{"questionId": "q1", "value": 7}}},
			},
		})
		sh.pass.publishing(id, at)
		for try := int64(0); try < 100; try++ {
			// Not ctx: an event under way when the load stops is finished.
			status, _, err := sh.call(context.WithoutCancel(ctx), sh.apis[(i+try)%2], http.MethodPost, "/api/events", body)
			if err == nil && (status == http.StatusCreated || status == http.StatusAccepted || status == http.StatusOK) {
				sh.pass.accepted(2)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// probe publishes as fast as the publishers go and returns the events/s delivered over
// the second half of the probe; then it waits for the backlog to drain.
func (sh *shape) probe(ctx context.Context, opts SoakOptions) (float64, error) {
	probeCtx, cancel := context.WithTimeout(ctx, opts.Probe)
	defer cancel()
	go sh.publish(probeCtx, load{duration: opts.Probe, concurrency: opts.Concurrency})
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(opts.Probe / 2):
	}
	from, _, _ := sh.pass.counts()
	began := time.Now()
	<-probeCtx.Done()
	to, _, _ := sh.pass.counts()
	rate := float64(to-from) / 2 / time.Since(began).Seconds()
	if err := sh.drain(ctx, 10*time.Minute); err != nil {
		return 0, err
	}
	return rate, nil
}

// drain waits until every accepted event's deliveries arrived.
func (sh *shape) drain(ctx context.Context, timeout time.Duration) error {
	return waitFor(ctx, timeout, func() error {
		delivered, expected, _ := sh.pass.counts()
		if delivered < expected {
			return fmt.Errorf("%d of %d deliveries arrived", delivered, expected)
		}
		return nil
	})
}

// waitFor calls check every 200 ms until it returns nil, or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// freeLoopbackAddr is an address for a process the shape starts; see
// temporalcluster.FreePorts for why the port is not simply bind(":0")'s.
func freeLoopbackAddr() (string, error) {
	ports, err := temporalcluster.FreePorts(1)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), nil
}

// pgPort is a PostgreSQL cluster's port as text, for matching sockets.
func pgPort(pg *localpg.Cluster) string { return strconv.Itoa(pg.Port) }
