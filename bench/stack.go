package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	apiclient "github.com/surveyhooks/surveyhooks/client"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/localpg"
	"github.com/surveyhooks/surveyhooks/localtemporal"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/store"
)

// namespace is the Temporal namespace of the bench's own server.
const namespace = "default"

// Loopback is where the bench's receiver listens; the worker must be allowed to deliver
// there (netguard allow-list) over plain http.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// stack is everything a run measures, started once and shared by every scenario.
type stack struct {
	opts   Options
	wiring Wiring
	logger *slog.Logger
	// runID keeps this run's surveys, events and workflows apart from any other run's in
	// a shared database.
	runID string

	db     *sqlx.DB
	store  *store.Store
	tc     client.Client
	worker worker.Worker
	// apiURL is the REST API over loopback HTTP; apiClient pools connections to it; api is
	// the generated client (package client) over apiClient, with the platform key.
	apiURL    string
	apiClient *http.Client
	api       *apiclient.ClientWithResponses
	// delivery is the client bare and raw POST through: the same pooled, address-checked
	// transport the worker's activities use.
	delivery      *http.Client
	recv          *receiver
	bare          *bareActivities
	workerStopped bool
	// pgPIDFile is the postmaster.pid of the cluster the bench started, "" for an external
	// database (whose CPU time cannot be measured from here).
	pgPIDFile string

	cleanups []func()
}

func startStack(ctx context.Context, opts Options, w Wiring) (_ *stack, err error) {
	id := make([]byte, 4)
	_, _ = rand.Read(id) // never fails (crypto/rand)
	s := &stack{opts: opts, wiring: w, logger: opts.Logger, runID: hex.EncodeToString(id)}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()

	databaseURL := opts.DatabaseURL
	if databaseURL == "" {
		if databaseURL, err = s.startPostgres(ctx); err != nil {
			return nil, err
		}
	}
	openDB := w.OpenDB
	if openDB == nil {
		openDB = defaultOpenDB
	}
	if s.db, err = openDB(ctx, databaseURL); err != nil {
		return nil, err
	}
	s.cleanups = append(s.cleanups, func() { s.db.Close() })
	if err := store.Migrate(ctx, s.db.DB, w.Keys); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	s.store = store.New(s.db, w.Keys)

	if err := s.startTemporal(ctx); err != nil {
		return nil, err
	}

	s.delivery = netguard.Policy{AllowHTTP: true, Allowed: Loopback}.Client()
	s.bare = &bareActivities{client: s.delivery, timeout: opts.AttemptTimeout}
	s.worker = w.Worker(s.tc, s.store)
	s.worker.RegisterWorkflowWithOptions(bareWorkflow, workflow.RegisterOptions{Name: bareWorkflowName})
	s.worker.RegisterActivityWithOptions(s.bare.Post, activity.RegisterOptions{Name: bareActivityName})
	if err := s.worker.Start(); err != nil {
		return nil, fmt.Errorf("start worker: %w", err)
	}
	s.cleanups = append(s.cleanups, s.stopWorker)

	handler, dispatcher := w.API(s.tc, s.store)
	apiServer := httptest.NewServer(handler)
	s.cleanups = append(s.cleanups, apiServer.Close)
	s.apiURL = apiServer.URL
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := dispatcher.Run(runCtx); err != nil {
			s.logger.Error("dispatcher", "err", err)
		}
	}()
	s.cleanups = append(s.cleanups, func() { cancel(); <-done })
	s.apiClient = &http.Client{Transport: &http.Transport{
		MaxIdleConns:        2 * opts.Concurrency,
		MaxIdleConnsPerHost: 2 * opts.Concurrency,
		IdleConnTimeout:     time.Minute,
	}}
	if s.api, err = apiclient.NewClientWithResponses(s.apiURL, apiclient.WithHTTPClient(s.apiClient), apiclient.WithKey(w.APIKey)); err != nil {
		return nil, fmt.Errorf("API client: %w", err)
	}

	s.recv = newReceiver()
	s.cleanups = append(s.cleanups, s.recv.close)
	return s, nil
}

// startPostgres starts a throwaway cluster in a temporary folder and returns the URL of
// its surveyhooks database.
func (s *stack) startPostgres(ctx context.Context) (string, error) {
	// Not under a 0700 folder: the server runs as the postgres OS user when we are root.
	dir, err := os.MkdirTemp("", "surveyhooks-bench-pg-")
	if err != nil {
		return "", fmt.Errorf("create PostgreSQL folder: %w", err)
	}
	cluster, err := localpg.Start(ctx, localpg.Options{DataDir: dir, Ephemeral: !s.opts.Durable, Logger: s.logger})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("start PostgreSQL (or give a database URL): %w", err)
	}
	s.cleanups = append(s.cleanups, func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cluster.Stop(stopCtx); err != nil {
			s.logger.Error("stop PostgreSQL", "err", err)
		}
		os.RemoveAll(dir) // an ephemeral cluster is gone already; a durable one is not
	})
	s.pgPIDFile = filepath.Join(cluster.DataDir, "postmaster.pid")
	if err := cluster.CreateDatabase(ctx, "surveyhooks"); err != nil {
		return "", err
	}
	return cluster.LocalURL("surveyhooks"), nil
}

// startTemporal starts an in-process Temporal server, as `dev` does but in a temporary
// folder, on a free port and without the Web UI, and connects to it.
func (s *stack) startTemporal(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "surveyhooks-bench-temporal-")
	if err != nil {
		return fmt.Errorf("create Temporal folder: %w", err)
	}
	s.cleanups = append(s.cleanups, func() { os.RemoveAll(dir) })
	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	server, err := localtemporal.Start(ctx, localtemporal.Options{
		DataDir:          dir,
		FrontendAddr:     addr,
		Namespace:        namespace,
		SearchAttributes: delivery.SearchAttributes(),
		Logger:           s.logger.With("component", "temporal-server"),
	})
	if err != nil {
		return err
	}
	s.cleanups = append(s.cleanups, func() {
		if err := server.Stop(); err != nil {
			s.logger.Error("stop Temporal", "err", err)
		}
	})
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s.tc, err = client.DialContext(dialCtx, client.Options{
		HostPort:  server.FrontendAddr(),
		Namespace: namespace,
		Logger:    sdklog.NewStructuredLogger(s.logger.With("component", "temporal-sdk")),
		// As dev dials its embedded server: no gzip on loopback.
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: &client.GrpcCompressionNone{}},
	})
	if err != nil {
		return fmt.Errorf("connect to Temporal: %w", err)
	}
	s.cleanups = append(s.cleanups, s.tc.Close)
	return nil
}

// stopWorker stops the worker unless it was stopped already.
func (s *stack) stopWorker() {
	if !s.workerStopped {
		s.workerStopped = true
		s.worker.Stop()
	}
}

// stop undoes startStack in reverse order.
func (s *stack) stop() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
	s.cleanups = nil
}

func defaultOpenDB(ctx context.Context, databaseURL string) (*sqlx.DB, error) {
	db, err := sqlx.Open(store.DriverName, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// As the command's default (SURVEYHOOKS_DB_MAX_CONNS).
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}
