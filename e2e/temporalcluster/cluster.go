package temporalcluster

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// DynamicConfig is Temporal's dynamic configuration every node runs with, the file
// docker-compose.yml mounts into its server.
//
//go:embed dynamicconfig.yaml
var DynamicConfig []byte

const (
	// maxServerPort is the highest port a node may use: the membership table stores ports
	// as SMALLINT, and a node on a higher port never joins (startup hangs without a word).
	maxServerPort = 32767
	// minServerPort keeps clear of the well-known ports.
	minServerPort = 10000
	// startTimeout bounds a node's start until its frontend answers health checks.
	startTimeout = 2 * time.Minute
)

// Options describe a cluster.
type Options struct {
	Binaries Binaries
	// Nodes is how many nodes run, each with every service.
	Nodes int
	// Settings are variables of the server's embedded configuration template (DB, DBNAME,
	// VISIBILITY_DBNAME, NUM_HISTORY_SHARDS, ...), as a deployment gives them; the cluster
	// sets the addresses, ports and database credentials itself.
	Settings map[string]string
	// Postgres is the server of both databases, as host:port, with a role that may create
	// databases and extensions (the visibility schema creates btree_gin).
	Postgres                     string
	PostgresUser, PostgresPasswd string
	// Dir holds the nodes' logs and the dynamic configuration file.
	Dir string
	// Logger gets a line per node start and stop; nil discards.
	Logger *slog.Logger
	// Pprof serves each node's net/http/pprof on a port of its own (Node.PprofAddr), for
	// reading its goroutines.
	Pprof bool
}

// Cluster is a running cluster with its load balancer.
type Cluster struct {
	Nodes []*Node
	// Front balances connections over the nodes' frontends: the address clients use.
	Front *Proxy
	opts  Options
}

// Node is one server process running every service.
type Node struct {
	Name string
	// FrontendAddr is the node's own frontend, bypassing the load balancer.
	FrontendAddr string
	// PprofAddr serves net/http/pprof when Options.Pprof is set.
	PprofAddr string
	env       []string
	bin       string
	logPath   string
	logger    *slog.Logger

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start sets up the schema in the two databases, starts every node and waits until each
// frontend answers. Stop ends it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Nodes < 1 {
		return nil, errors.New("temporalcluster: no node")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	began := time.Now()
	if err := setupSchema(ctx, opts); err != nil {
		return nil, err
	}
	opts.Logger.Info("temporal schema ready", "took", time.Since(began).Round(time.Millisecond))

	dynamicConfig := filepath.Join(opts.Dir, "dynamicconfig.yaml")
	if err := os.WriteFile(dynamicConfig, DynamicConfig, 0o644); err != nil {
		return nil, err
	}
	perNode := len(portVariables)
	if opts.Pprof {
		perNode++
	}
	ports, err := FreePorts(opts.Nodes * perNode)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts}
	var frontends []string
	for i := range opts.Nodes {
		n := &Node{
			Name:    fmt.Sprintf("temporal-%d", i+1),
			bin:     opts.Binaries.Server,
			logPath: filepath.Join(opts.Dir, fmt.Sprintf("temporal-%d.log", i+1)),
			logger:  opts.Logger,
		}
		vars := maps.Clone(opts.Settings)
		host, port, err := net.SplitHostPort(opts.Postgres)
		if err != nil {
			return nil, fmt.Errorf("postgres address: %w", err)
		}
		maps.Copy(vars, map[string]string{
			"POSTGRES_SEEDS":             host,
			"DB_PORT":                    port,
			"POSTGRES_USER":              opts.PostgresUser,
			"POSTGRES_PWD":               opts.PostgresPasswd,
			"BIND_ON_IP":                 "127.0.0.1",
			"TEMPORAL_BROADCAST_ADDRESS": "127.0.0.1",
			"DYNAMIC_CONFIG_FILE_PATH":   dynamicConfig,
		})
		for j, name := range portVariables {
			vars[name] = strconv.Itoa(ports[i*perNode+j])
		}
		if opts.Pprof {
			vars["PPROF_PORT"] = strconv.Itoa(ports[i*perNode+len(portVariables)])
			n.PprofAddr = "127.0.0.1:" + vars["PPROF_PORT"]
		}
		if vars["LOG_LEVEL"] == "" {
			vars["LOG_LEVEL"] = "warn"
		}
		n.FrontendAddr = "127.0.0.1:" + vars["FRONTEND_GRPC_PORT"]
		frontends = append(frontends, n.FrontendAddr)
		n.env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, environ(vars)...)
		c.Nodes = append(c.Nodes, n)
	}
	if c.Front, err = NewProxy(frontends...); err != nil {
		return nil, err
	}
	// Every node names the same public address of the cluster: the load balancer.
	for _, n := range c.Nodes {
		n.env = append(n.env, "CLUSTER_RPC_ADDRESS="+c.Front.Addr(), "CLUSTER_HTTP_ADDRESS=127.0.0.1:"+portOf(c.Nodes[0], "FRONTEND_HTTP_PORT"))
	}
	// The first node alone: on a fresh database, nodes starting together race to insert
	// the cluster's metadata and the loser exits. The others join it together.
	startErr := c.Nodes[0].Start(ctx)
	if startErr == nil {
		errs := make(chan error, len(c.Nodes)-1)
		for _, n := range c.Nodes[1:] {
			go func() { errs <- n.Start(ctx) }()
		}
		for range c.Nodes[1:] {
			startErr = errors.Join(startErr, <-errs)
		}
	}
	if startErr != nil {
		c.Stop()
		return nil, startErr
	}
	return c, nil
}

// portVariables are the template's port settings, one port each per node.
var portVariables = []string{
	"FRONTEND_GRPC_PORT", "FRONTEND_MEMBERSHIP_PORT", "FRONTEND_HTTP_PORT",
	"HISTORY_GRPC_PORT", "HISTORY_MEMBERSHIP_PORT",
	"MATCHING_GRPC_PORT", "MATCHING_MEMBERSHIP_PORT",
	"WORKER_GRPC_PORT", "WORKER_MEMBERSHIP_PORT",
}

func portOf(n *Node, name string) string {
	for _, kv := range n.env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// Stop kills every node and closes the load balancer.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Kill()
	}
	if c.Front != nil {
		c.Front.Close()
	}
}

// Start starts the node's process and waits until its frontend answers health checks.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return fmt.Errorf("%s is running", n.Name)
	}
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	fmt.Fprintf(logFile, "=== %s start %s\n", n.Name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(n.bin, "start")
	cmd.Env = n.env
	cmd.Dir = filepath.Dir(n.logPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()

	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		if err := checkHealth(ctx, n.FrontendAddr); err == nil {
			n.logger.Info("temporal node up", "node", n.Name, "frontend", n.FrontendAddr, "took", time.Since(began).Round(time.Millisecond))
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited while starting: %s", n.Name, n.Tail(30))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %v: %s", n.Name, startTimeout, n.Tail(30))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// PID is the process id of the running node, 0 when it is not running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Kill sends SIGKILL and waits for the process to be gone; a stopped node stays so.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
	n.logger.Info("temporal node killed", "node", n.Name)
}

// Tail returns the last lines of the node's log.
func (n *Node) Tail(lines int) string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// checkHealth dials addr as an SDK client does, which checks the frontend's health.
func checkHealth(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort: addr,
		Logger:   sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// FreePorts returns n loopback ports from minServerPort below maxServerPort that nothing
// listens on and that no earlier call in this process returned.
//
// The range lies below Linux's ephemeral ports (32768 and up), so an outgoing connection
// cannot take a port between the moment it is picked and the moment a child process binds
// it; a port from bind(":0") can be taken that way by any process dialing out meanwhile.
func FreePorts(n int) ([]int, error) { return freePortsIn(minServerPort, maxServerPort, n) }

// freePortsIn picks n free ports from lo up to but not including hi.
func freePortsIn(lo, hi, n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("no free ports from %d to %d", lo, hi-1)
		}
		p := lo + rand.IntN(hi-lo)
		if handedOut.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		handedOut.ports[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// handedOut keeps two callers in one process from being given the same port before either
// binds it.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

func environ(vars map[string]string) []string {
	var env []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}
