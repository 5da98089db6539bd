// Package localtemporal runs a single-process Temporal server with the Temporal Web UI for
// `surveyhooks dev`: SQLite files in a data folder (so workflows, timers and retries survive
// a restart), one namespace with surveyhooks' search attributes, and the settings that suit
// one process on one machine.
package localtemporal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/temporal"
)

const (
	// clusterName names the one cluster; it is stored in the data files.
	clusterName = "active"
	// internalHost is where the history, matching and worker services listen: they only
	// talk to each other and to the frontend.
	internalHost = "127.0.0.1"
	// mainFile and visibilityFile are the SQLite files in Options.DataDir. Visibility sits
	// in its own file so that list queries do not queue behind workflow writes on the single
	// SQLite connection.
	mainFile       = "temporal.db"
	visibilityFile = "temporal-visibility.db"
	// readyTimeout bounds the wait for the UI and the search attributes after start.
	readyTimeout = 30 * time.Second
)

// Options configures Start.
type Options struct {
	// DataDir holds the SQLite files; it is created if missing and reused on the next start.
	DataDir string
	// FrontendAddr is the gRPC frontend address clients dial, e.g. 127.0.0.1:7233. Its host
	// must be an IP address or "localhost".
	FrontendAddr string
	// UIAddr is where the Temporal Web UI listens, e.g. 127.0.0.1:8233; "" serves no UI.
	UIAddr string
	// Namespace is created, if missing, with a retention of 7 days.
	Namespace string
	// SearchAttributes are the custom search attributes Namespace is created with.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives the server's warnings and errors; nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running Temporal server. Stop it with Stop.
type Server struct {
	server       temporal.Server
	ui           *uiServer
	frontendAddr string
	uiURL        string
	logLevel     *slog.LevelVar // of the server's logger

	stopOnce sync.Once
	stopErr  error
}

// Start starts a Temporal server as opts describe and returns once its frontend serves
// requests, the namespace has its search attributes and the UI (if any) accepts
// connections. The context bounds that start-up only.
func Start(ctx context.Context, opts Options) (*Server, error) {
	switch {
	case opts.DataDir == "":
		return nil, errors.New("temporal data dir is required")
	case opts.FrontendAddr == "":
		return nil, errors.New("temporal frontend address is required")
	case opts.Namespace == "":
		return nil, errors.New("temporal namespace is required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	serverLog, logLevel := newServerLogger(logger)

	frontendHost, frontendPort, err := splitFrontendAddr(opts.FrontendAddr)
	if err != nil {
		return nil, err
	}
	if err := checkFree("temporal frontend", opts.FrontendAddr); err != nil {
		return nil, err
	}
	if opts.UIAddr != "" {
		if err := checkFree("temporal UI", opts.UIAddr); err != nil {
			return nil, err
		}
	}

	if err := os.MkdirAll(opts.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create temporal data dir: %w", err)
	}
	mainDB := sqliteConfig(filepath.Join(opts.DataDir, mainFile))
	visibilityDB := sqliteConfig(filepath.Join(opts.DataDir, visibilityFile))
	if err := prepareSchema(mainDB, mainSchema, serverLog); err != nil {
		return nil, fmt.Errorf("prepare temporal database: %w", err)
	}
	if err := prepareSchema(visibilityDB, visibilitySchema, serverLog); err != nil {
		return nil, fmt.Errorf("prepare temporal visibility database: %w", err)
	}
	if err := createNamespace(mainDB, clusterName, opts.Namespace, opts.SearchAttributes); err != nil {
		return nil, err
	}

	frontendDial := net.JoinHostPort(connectHost(frontendHost), strconv.Itoa(frontendPort))
	ports, err := pickPorts()
	if err != nil {
		return nil, err
	}
	conf := serverConfig(frontendHost, frontendPort, frontendDial, ports, mainDB, visibilityDB)
	server, err := temporal.NewServer(serverOptions(conf, frontendDial, ports, serverLog)...)
	if err != nil {
		return nil, fmt.Errorf("create temporal server: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	s := &Server{server: server, frontendAddr: frontendDial, logLevel: logLevel}
	if opts.UIAddr != "" {
		// Started before the server so that the port, checked above, is taken at once.
		s.ui, err = startUI(ctx, opts.UIAddr, frontendDial, opts.Namespace)
		if err != nil {
			return nil, err
		}
		uiHost, uiPort, _ := net.SplitHostPort(opts.UIAddr) // parsed by startUI
		s.uiURL = "http://" + net.JoinHostPort(connectHost(uiHost), uiPort)
	}
	if err := server.Start(); err != nil {
		if s.ui != nil {
			s.ui.Stop()
		}
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	if err := s.waitFrontend(ctx, opts.Namespace, logger); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

// FrontendAddr returns the host:port clients dial.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// UIURL returns the Web UI's base URL, e.g. http://127.0.0.1:8233, or "" without a UI.
func (s *Server) UIURL() string { return s.uiURL }

// Stop stops the UI, then the server. Calling it again returns the first result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.logLevel.Set(slog.LevelError)
		if s.ui != nil {
			s.ui.Stop()
		}
		if err := s.server.Stop(); err != nil {
			s.stopErr = fmt.Errorf("stop temporal server: %w", err)
		}
	})
	return s.stopErr
}

// waitFrontend returns once the frontend answers its health check, which dialing waits
// for, so that Start returns a server clients can use.
func (s *Server) waitFrontend(ctx context.Context, namespace string, logger *slog.Logger) error {
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  s.frontendAddr,
		Namespace: namespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(minLevelHandler{min: slog.LevelWarn, next: logger.Handler()})),
	})
	if err != nil {
		return fmt.Errorf("connect to temporal server: %w", err)
	}
	c.Close()
	return nil
}

// splitFrontendAddr returns the IP the frontend binds to: the server wants an IP address,
// and "localhost" is the one name people type.
func splitFrontendAddr(addr string) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("temporal frontend address %s: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("temporal frontend address %s: invalid port", addr)
	}
	switch {
	case host == "localhost":
		host = "127.0.0.1"
	case host == "":
		host = "0.0.0.0"
	case net.ParseIP(host) == nil:
		return "", 0, fmt.Errorf("temporal frontend address %s: host must be an IP address", addr)
	}
	return host, port, nil
}

// sqliteConfig describes one SQLite file: write-ahead log with normal sync (an OS crash
// may lose the last transactions, never corrupt the file), and the plugin's single
// connection: SQLite serialises writers, and a pool only adds lock contention.
func sqliteConfig(file string) *config.SQL {
	return &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: file,
		// Attributes that are not SQLite URI parameters become pragmas.
		ConnectAttributes: map[string]string{
			"mode":         "rwc",
			"journal_mode": "wal",
			"synchronous":  "normal",
		},
	}
}

// ports are the server's ports other than the frontend's gRPC port, picked free at each
// start so that two dev servers with different frontend and UI addresses run side by side.
// Membership needs none: the services find each other through static hosts, not ringpop.
type ports struct {
	frontendHTTP, history, matching, worker int
}

func pickPorts() (ports, error) {
	var p ports
	for _, port := range []*int{&p.frontendHTTP, &p.history, &p.matching, &p.worker} {
		n, err := freePort(internalHost)
		if err != nil {
			return ports{}, err
		}
		*port = n
	}
	return p, nil
}

func serverConfig(frontendHost string, frontendPort int, frontendDial string, p ports, mainDB, visibilityDB *config.SQL) *config.Config {
	internal := func(port int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: internalHost}}
	}
	httpAddr := net.JoinHostPort(connectHost(frontendHost), strconv.Itoa(p.frontendHTTP))

	var conf config.Config
	conf.Global.Membership = config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: internalHost}
	// Global.Metrics stays nil: dev has no use for the server's own metrics, and reporting
	// them costs CPU on every task.
	conf.Persistence = config.Persistence{
		DefaultStore:     "sqlite",
		VisibilityStore:  "sqlite-visibility",
		NumHistoryShards: 1,
		DataStores: map[string]config.DataStore{
			"sqlite":            {SQL: mainDB},
			"sqlite-visibility": {SQL: visibilityDB},
		},
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontendDial,
				HTTPAddress:            httpAddr,
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{
		string(primitives.FrontendService): {RPC: config.RPC{
			GRPCPort: frontendPort,
			HTTPPort: p.frontendHTTP,
			BindOnIP: frontendHost,
		}},
		string(primitives.HistoryService):  internal(p.history),
		string(primitives.MatchingService): internal(p.matching),
		string(primitives.WorkerService):   internal(p.worker),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontendDial
	return &conf
}

func serverOptions(conf *config.Config, frontendDial string, p ports, logger serverLogger) []temporal.ServerOption {
	host := func(port int) static.Hosts {
		return static.SingleLocalHost(net.JoinHostPort(internalHost, strconv.Itoa(port)))
	}
	return []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(map[primitives.ServiceName]static.Hosts{
			primitives.FrontendService: static.SingleLocalHost(frontendDial),
			primitives.HistoryService:  host(p.history),
			primitives.MatchingService: host(p.matching),
			primitives.WorkerService:   host(p.worker),
		}),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return authorization.NewNoopClaimMapper() }),
		temporal.WithDynamicConfigClient(dynamicConfig()),
	}
}

// dynamicConfig holds the knobs for one process on one machine.
func dynamicConfig() dynamicconfig.StaticClient {
	return dynamicconfig.StaticClient{
		// Hand the first workflow task back in the start response instead of a trip through
		// matching: without it about a fifth of the workflows waited ~5 s to begin.
		dynamicconfig.EnableEagerWorkflowStart.Key(): true,
		// Read search attributes from the cache. temporaltest and the CLI turn the refresh on
		// so that new attributes show at once; it cost ~30% throughput, and Start waits for
		// new attributes itself.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): false,
		// Workflows' state kept in memory (the CLI's dev server keeps 8096): with thousands
		// of deliveries waiting for their next attempt it held ~500 MiB; the workflows in
		// flight on one machine fit in far fewer.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 1024,
		// From the Temporal CLI's dev server: enough visibility requests for the Web UI's
		// polling.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Visibility writes go through one SQLite connection: 512 workers (the default)
		// only queued on it until their 3 s deadline, and retried (thousands of "context
		// deadline exceeded" per bench run).
		dynamicconfig.VisibilityProcessorSchedulerWorkerCount.Key(): 4,
		// Also the CLI's: the single SQLite connection is the real limit, the default
		// persistence rate limits would only add throttling on top of it.
		dynamicconfig.FrontendPersistenceMaxQPS.Key(): 10000,
		dynamicconfig.HistoryPersistenceMaxQPS.Key():  45000,
	}
}
