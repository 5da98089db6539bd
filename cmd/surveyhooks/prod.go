package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/surveyhooks/surveyhooks/schema"
	"github.com/surveyhooks/surveyhooks/store"
)

var errNoDatabaseURL = errors.New("DATABASE_URL is required (for example postgres://user:pass@host:5432/surveyhooks)")

// runMigrate applies pending migrations and exits; safe to run from several processes.
func runMigrate(ctx context.Context, cfg config) error {
	if cfg.DatabaseURL == "" {
		return errNoDatabaseURL
	}
	logger := newLogger(cfg, "json")
	db, err := openDB(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := schema.Migrate(ctx, db.DB); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	logger.Info("database migrated")
	return nil
}

// runServe serves the REST API and dispatches stored events whose workflow has not
// started. It does not migrate: run `surveyhooks migrate` first.
func runServe(ctx context.Context, cfg config) error {
	if cfg.DatabaseURL == "" {
		return errNoDatabaseURL
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
	ml, err := listen(cfg.MetricsAddr, "SURVEYHOOKS_METRICS_ADDR")
	if err != nil {
		return err
	}
	defer ml.Close()
	metrics, stopTelemetry, err := startTelemetry(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer stopTelemetry()
	db, err := openDB(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	tc, err := dialTemporal(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer tc.Close()

	st := store.New(db)
	d := newDispatcher(cfg, st, tc, logger)
	srv := newAPI(cfg, st, tc, d, logger)
	logger.Info("serving the API", "url", hostURL(l.Addr().String()), "metrics", hostURL(ml.Addr().String())+"/metrics")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.Run(gctx) })
	g.Go(func() error { return serveHTTP(gctx, l, srv.Handler(), logger) })
	g.Go(func() error { return serveHTTP(gctx, ml, metrics, logger) })
	return g.Wait()
}

// runWorker runs a delivery worker until interrupted. Start as many as the load needs:
// they share the task queue.
func runWorker(ctx context.Context, cfg config) error {
	if cfg.DatabaseURL == "" {
		return errNoDatabaseURL
	}
	logger := newLogger(cfg, "json")
	warnUnknownVariables(logger, os.Environ())
	ml, err := listen(cfg.MetricsAddr, "SURVEYHOOKS_METRICS_ADDR")
	if err != nil {
		return err
	}
	defer ml.Close()
	metrics, stopTelemetry, err := startTelemetry(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer stopTelemetry()
	db, err := openDB(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	tc, err := dialTemporal(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer tc.Close()

	w := newWorker(cfg, tc, store.New(db), logger)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	prepareNamespace(ctx, cfg, tc, logger)
	logger.Info("worker started", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress,
		"metrics", hostURL(ml.Addr().String())+"/metrics")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(gctx, ml, metrics, logger) })
	<-gctx.Done()
	// Stop stops polling and waits for running activities up to WorkerStopTimeout
	// (SURVEYHOOKS_SHUTDOWN_TIMEOUT); the ones cut short are retried by Temporal on another
	// worker.
	logger.Info("stopping: waiting for attempts in flight", "timeout", cfg.ShutdownTimeout.String())
	w.Stop()
	logger.Info("worker stopped")
	return g.Wait()
}
