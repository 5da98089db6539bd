package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/console"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/retention"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/telemetry"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// newLogger builds the process logger: text for people (dev), JSON for machines.
func newLogger(cfg config, defaultFormat string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "" {
		format = defaultFormat
	}
	// Lines logged inside a request or an activity carry its trace_id and span_id.
	if format == "json" {
		return slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(os.Stderr, opts)))
	}
	return slog.New(telemetry.NewLogHandler(slog.NewTextHandler(os.Stderr, opts)))
}

// defaultDBMaxConns is SURVEYHOOKS_DB_MAX_CONNS's default. PostgreSQL does more per CPU
// second with a few busy connections than with many that contend for the same rows and
// index pages. Statements queue in the pool instead, which costs nothing while PostgreSQL is
// the one working.
const defaultDBMaxConns = 8

// openDB connects to PostgreSQL, with at most maxConns connections, and checks that it
// answers.
func openDB(ctx context.Context, databaseURL string, maxConns int) (*sqlx.DB, error) {
	u, err := url.Parse(databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("DATABASE_URL is not a postgres:// URL (%s)", redactURL(databaseURL))
	}
	databaseURL = requireTLSByDefault(u)
	db, err := sqlx.Open(store.DriverName, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL %s: %w", redactURL(databaseURL), err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot connect to PostgreSQL at %s (DATABASE_URL): %w", redactURL(databaseURL), err)
	}
	return db, nil
}

// requireTLSByDefault returns u with sslmode=require unless it or PGSSLMODE chooses a mode:
// a connection to PostgreSQL is encrypted unless the URL says otherwise (lib/pq's default,
// which surveyhooks used before pgx; pgx's own default, prefer, would fall back to plain
// text when the server offers no TLS).
func requireTLSByDefault(u *url.URL) string {
	if u.Query().Has("sslmode") || os.Getenv("PGSSLMODE") != "" {
		return u.String()
	}
	q := u.Query()
	q.Set("sslmode", "require")
	withTLS := *u
	withTLS.RawQuery = q.Encode()
	return withTLS.String()
}

// redactURL hides the password of a database URL, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// dialTemporal connects to the Temporal frontend and checks that it answers. inProcess says
// the frontend is dev's embedded server: requests then go uncompressed, since gzip on
// loopback only costs CPU on both ends; a remote frontend gets the SDK's default, gzip.
func dialTemporal(ctx context.Context, cfg config, logger *slog.Logger, inProcess bool) (client.Client, error) {
	conn, creds, err := temporalConnection(cfg)
	if err != nil {
		return nil, err
	}
	if inProcess {
		conn.GrpcCompression = &client.GrpcCompressionNone{}
	}
	interceptors, metrics, err := temporalTelemetry(logger)
	if err != nil {
		return nil, err
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dialCtx, client.Options{
		HostPort:          cfg.TemporalAddress,
		Namespace:         cfg.TemporalNamespace,
		Logger:            sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
		ConnectionOptions: conn,
		Credentials:       creds,
		// Workers made from this client inherit both.
		Interceptors:   interceptors,
		MetricsHandler: metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot reach Temporal at %s (TEMPORAL_ADDRESS): %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// listen opens a TCP listener, saying which setting to change when the port is taken.
func listen(addr, setting string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("address %s is in use (%s)", addr, setting)
		}
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, setting, err)
	}
	return l, nil
}

// newActivities wires the delivery activities.
func newActivities(cfg config, st *store.Store, logger *slog.Logger) *activities.Activities {
	metrics, err := activities.NewMetrics(otel.GetMeterProvider())
	if err != nil {
		logger.Warn("delivery metrics are incomplete", "err", err)
	}
	return activities.New(st, cfg.urlPolicy().Client(), activities.Config{Schedule: cfg.schedule(), Signature: cfg.Signature,
		Disable: cfg.Disable, NoticeAccount: cfg.NoticeAccount, EndpointConcurrency: cfg.EndpointConcurrency}, logger,
		activities.WithMetrics(metrics),
		activities.WithTracing(otel.GetTracerProvider(), receiverPropagator(cfg)))
}

// workflowCacheSize bounds the workflows a worker keeps in memory between their workflow
// tasks (the SDK's default is 10,000). A delivery waiting hours for its next attempt needs
// no place there: evicted, it is replayed from its short history when its timer fires. It
// is what keeps the worker's memory flat however many deliveries wait. The cache is
// process-wide and sized when the first worker starts, which in dev is the embedded
// Temporal server's own: main sets it before anything else.
const workflowCacheSize = 1000

// newWorker builds a worker that runs surveyhooks' workflows and activities.
func newWorker(cfg config, tc client.Client, st *store.Store, logger *slog.Logger) worker.Worker {
	w := worker.New(tc, cfg.TaskQueue, worker.Options{
		// Deliveries spend their time waiting on receivers: many may run at once.
		MaxConcurrentActivityExecutionSize:      1000,
		MaxConcurrentLocalActivityExecutionSize: 1000,
		MaxConcurrentWorkflowTaskPollers:        4,
		MaxConcurrentActivityTaskPollers:        4,
		// On SIGTERM, Stop stops polling and waits this long for the attempts in flight;
		// the ones still running then are cancelled and Temporal retries them elsewhere.
		WorkerStopTimeout: cfg.ShutdownTimeout,
	})
	workflows.Register(w, newActivities(cfg, st, logger))
	// Recoveries ask for retries as the API does, through a delivery service of their own.
	workflows.RegisterRecovery(w, delivery.NewRecoverer(newDeliveries(cfg, st, tc, logger)))
	retention.Register(w, retention.NewActivities(st, logger))
	return w
}

// newDeliveries builds the delivery service: publish, retry, test and the outbox.
func newDeliveries(cfg config, st *store.Store, tc client.Client, logger *slog.Logger) *delivery.Service {
	return delivery.New(st, tc, delivery.Config{TaskQueue: cfg.TaskQueue, Schedule: cfg.schedule(), RecoveryRate: cfg.RecoveryRate}, logger)
}

// newAPI builds the REST API.
func newAPI(cfg config, st *store.Store, d *delivery.Service, logger *slog.Logger) *api.Server {
	return api.New(api.Config{
		APIKeys:        cfg.APIKeys,
		URLPolicy:      cfg.urlPolicy(),
		MaxBodyBytes:   cfg.MaxBodyBytes,
		SecretOverlap:  cfg.SecretOverlap,
		RequestTimeout: cfg.RequestTimeout,
		RateLimit:      cfg.RateLimit,
		RateBurst:      cfg.RateBurst,
		ConsoleURL:     cfg.ConsoleURL,
	}, st, d, logger)
}

// newHTTPHandler serves the console at /console/ and the REST API everywhere else. The
// console calls the API's handler in-process; temporalUI is the Web UI's base URL for
// operators' workflow links.
func newHTTPHandler(cfg config, st *store.Store, srv *api.Server, temporalUI string, logger *slog.Logger) (http.Handler, error) {
	brand := console.Brand{Name: cfg.ConsoleProductName, Accent: cfg.ConsoleAccent}
	if cfg.ConsoleLogoFile != "" {
		logo, err := os.ReadFile(cfg.ConsoleLogoFile)
		if err != nil {
			return nil, fmt.Errorf("SURVEYHOOKS_CONSOLE_LOGO_FILE: %w", err)
		}
		brand.Logo = logo
	}
	c, err := console.New(console.Config{API: srv.Handler(), Store: st, FrameAncestors: cfg.ConsoleFrameAncestors,
		Brand: brand, TemporalUIURL: temporalUI, TemporalNamespace: cfg.TemporalNamespace, Logger: logger})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, c.Handler())
	mux.Handle("/", srv.Handler())
	return mux, nil
}

// metricsWriteTimeout bounds the answer to a metrics scrape.
const metricsWriteTimeout = 30 * time.Second

// serveHTTP serves h on l until ctx ends, then drains in-flight requests for up to 10 s.
// longest is the longest a request may take (the API's deadline): the answer gets 10 s more
// to be written.
func serveHTTP(ctx context.Context, l net.Listener, h http.Handler, longest time.Duration, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      longest + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		// 16 KiB of request line and headers is ample for an API key, a traceparent and a
		// proxy's X-Forwarded-*; net/http's default lets every request hold 1 MiB of them.
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("drain %s: %w", l.Addr(), err)
	}
	return nil
}

// hostURL is http://addr with a wildcard host shown as 127.0.0.1, for printing.
func hostURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// firstLine keeps an error to one line for the terminal.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
