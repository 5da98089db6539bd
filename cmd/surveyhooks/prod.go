package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
	"golang.org/x/sync/errgroup"

	"github.com/surveyhooks/surveyhooks/store"
)

var (
	errNoDatabaseURL    = errors.New("DATABASE_URL is required (for example postgres://user:pass@host:5432/surveyhooks)")
	errNoEncryptionKeys = errors.New("SURVEYHOOKS_ENCRYPTION_KEYS is not set: webhook secrets are encrypted at rest; make a key with: openssl rand -base64 32")
)

// requireStore checks the settings of every command that reads or writes webhooks in
// DATABASE_URL: the database, and the keys that seal their secrets.
func requireStore(cfg config) error {
	if cfg.DatabaseURL == "" {
		return errNoDatabaseURL
	}
	if cfg.EncryptionKeys == nil {
		return errNoEncryptionKeys
	}
	return nil
}

// runMigrate applies pending migrations and exits; safe to run from several processes. It
// needs SURVEYHOOKS_ENCRYPTION_KEYS only when the database holds webhook secrets in clear,
// which it seals (store.Migrate says so).
func runMigrate(ctx context.Context, cfg config) error {
	if cfg.DatabaseURL == "" {
		return errNoDatabaseURL
	}
	logger := newLogger(cfg, "json")
	db, err := openDB(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := store.Migrate(ctx, db.DB, cfg.EncryptionKeys); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	logger.Info("database migrated")
	return nil
}

// runServe serves the REST API and dispatches stored events whose workflow has not
// started. It does not migrate: run `surveyhooks migrate` first.
func runServe(ctx context.Context, cfg config) error {
	if err := requireStore(cfg); err != nil {
		return err
	}
	if len(cfg.APIKeys) == 0 {
		return errors.New("SURVEYHOOKS_API_KEYS is required: a comma-separated list of API keys")
	}
	logger := newLogger(cfg, "json")
	warnUnknownVariables(logger, os.Environ())
	l, err := listen(cfg.Addr, "SURVEYHOOKS_ADDR")
	if err != nil {
		return err
	}
	defer l.Close()
	b, err := connect(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer b.close()
	ml, metrics, st, tc := b.metricsListener, b.metrics, b.store, b.temporal

	d := newDeliveries(cfg, st, tc, logger)
	srv := newAPI(cfg, st, d, logger)
	handler, err := newHTTPHandler(cfg, st, srv, temporalUIURL(cfg.TemporalUIAddr), logger)
	if err != nil {
		return err
	}
	logger.Info("serving the API", "url", hostURL(l.Addr().String()), "metrics", hostURL(ml.Addr().String())+"/metrics")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.Run(gctx) })
	g.Go(func() error { return serveHTTP(gctx, l, handler, srv.LongestRequest(), logger) })
	g.Go(func() error { return serveHTTP(gctx, ml, metrics, metricsWriteTimeout, logger) })
	return g.Wait()
}

// runWorker runs a delivery worker until interrupted. Start as many as the load needs:
// they share the task queue.
func runWorker(ctx context.Context, cfg config) error {
	if err := requireStore(cfg); err != nil {
		return err
	}
	logger := newLogger(cfg, "json")
	warnUnknownVariables(logger, os.Environ())
	b, err := connect(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer b.close()
	ml, metrics, tc := b.metricsListener, b.metrics, b.temporal

	w := newWorker(cfg, tc, b.store, logger)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	prepareNamespace(ctx, cfg, tc, logger)
	logger.Info("worker started", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress,
		"metrics", hostURL(ml.Addr().String())+"/metrics")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(gctx, ml, metrics, metricsWriteTimeout, logger) })
	<-gctx.Done()
	// Stop stops polling and waits for running activities up to WorkerStopTimeout
	// (SURVEYHOOKS_SHUTDOWN_TIMEOUT); the ones cut short are retried by Temporal on another
	// worker.
	logger.Info("stopping: waiting for attempts in flight", "timeout", cfg.ShutdownTimeout.String())
	w.Stop()
	logger.Info("worker stopped")
	return g.Wait()
}

// backends are what serve and worker both need, opened in order: the metrics listener
// (a taken port fails before anything slow starts), telemetry, PostgreSQL and Temporal.
type backends struct {
	metricsListener net.Listener
	metrics         http.Handler
	store           *store.Store
	temporal        client.Client
	closers         []func()
}

// connect opens the backends; on error, what was opened is closed again.
func connect(ctx context.Context, cfg config, logger *slog.Logger) (b *backends, err error) {
	b = &backends{}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.metricsListener, err = listen(cfg.MetricsAddr, "SURVEYHOOKS_METRICS_ADDR"); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { b.metricsListener.Close() })
	metrics, stopTelemetry, err := startTelemetry(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	b.metrics = metrics
	b.closers = append(b.closers, stopTelemetry)
	db, err := openDB(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, err
	}
	b.store = store.New(db, cfg.EncryptionKeys)
	b.closers = append(b.closers, func() { db.Close() })
	if b.temporal, err = dialTemporal(ctx, cfg, logger, false); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, b.temporal.Close)
	return b, nil
}

// close closes the backends in reverse order of opening.
func (b *backends) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// temporalUIURL is the Temporal Web UI's base URL from TEMPORAL_UI_ADDR: a full URL as
// given, or http:// before a host:port.
func temporalUIURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/")
	}
	return hostURL(addr)
}
