// Package api is surveyhooks' REST API: webhook management, the event type registry,
// health checks and the OpenAPI document, over gorilla/mux. Every /api route needs an API
// key; errors are JSON {code, message, fields}.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/store"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxBodyBytes  = 1 << 20
	DefaultSecretOverlap = 24 * time.Hour
)

// DefaultRateLimit is each API key's request rate when Config does not say: far above what
// one integration needs, low enough that one runaway client cannot take the API from the
// others.
const DefaultRateLimit = 500

// DefaultRequestTimeout bounds the work of one API request: its database statements and
// Temporal calls. Past it the request is answered 503 and its statements are cancelled, so
// that a hung database holds neither a request nor a pooled connection for ever. The
// webhook test endpoint, which waits for a delivery attempt, has its own bound (testTimeout).
const DefaultRequestTimeout = 30 * time.Second

// testRouteName names the webhook test route for the request deadline middleware.
const testRouteName = "webhook-test"

// readyTimeout bounds each readiness check, so that a hung dependency makes /readyz
// answer 503 instead of hanging the prober.
const readyTimeout = 2 * time.Second

// Config holds the API's settings; cmd/ fills it from the environment.
type Config struct {
	// APIKeys are the keys accepted as "Authorization: Bearer <key>"
	// (SURVEYHOOKS_API_KEYS). With no key, every /api request is refused.
	APIKeys []string
	// URLPolicy decides which webhook URLs are accepted.
	URLPolicy netguard.Policy
	// MaxBodyBytes limits request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// SecretOverlap is how long a rotated-out secret keeps signing when the rotate request
	// does not say; 0 means DefaultSecretOverlap.
	SecretOverlap time.Duration
	// RequestTimeout bounds every /api request but the webhook test; 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// RateLimit is each API key's sustained request rate, per second
	// (SURVEYHOOKS_API_RATE_LIMIT); 0 means DefaultRateLimit, and a negative rate no limit.
	RateLimit float64
	// RateBurst is how many requests a key may send at once above its rate
	// (SURVEYHOOKS_API_RATE_BURST); 0 means twice the rate.
	RateBurst int
	// TracerProvider makes the span of each request; nil means otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider records the API's metrics; nil means otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Propagator reads the callers' trace context (traceparent); nil means
	// otel.GetTextMapPropagator().
	Propagator propagation.TextMapPropagator
	// ConsoleURL is the scheme and host the web console is reached at, for the links
	// POST .../console-links mints (SURVEYHOOKS_CONSOLE_URL); "" means the host of that
	// request.
	ConsoleURL string
}

// Deliveries is what the API asks of the delivery service (delivery.Service): everything
// that starts, signals or waits on the delivery engine goes through it.
type Deliveries interface {
	Publish(ctx context.Context, ev delivery.NewEvent) (delivery.Published, error)
	Retry(ctx context.Context, webhookID, deliveryID uuid.UUID, force bool) (string, error)
	Test(ctx context.Context, hook store.Webhook) (delivery.Tested, error)
	// TestWait is how long Test may take.
	TestWait() time.Duration
	// CheckEngine reports whether the delivery engine answers.
	CheckEngine(ctx context.Context) error
	// Recover starts (or finds running) the recovery of a webhook's deliveries; Recovery
	// and CancelRecovery show and stop one.
	Recover(ctx context.Context, hook store.Webhook, since, until time.Time, statuses []string) (string, error)
	Recovery(ctx context.Context, webhookID uuid.UUID, id string) (delivery.Recovery, error)
	CancelRecovery(ctx context.Context, webhookID uuid.UUID, id string) error
	// RetryMatching starts (or finds running) the retry of an account's deliveries that a
	// filter picks, as a recovery; CountMatching is its dry run; AccountRecovery and
	// CancelAccountRecovery show and stop one.
	RetryMatching(ctx context.Context, f store.RecoveryFilter) (string, error)
	CountMatching(ctx context.Context, f store.RecoveryFilter) (int, error)
	AccountRecovery(ctx context.Context, accountID, id string) (delivery.Recovery, error)
	CancelAccountRecovery(ctx context.Context, accountID, id string) error
	// EventTypes is the registry Publish checks events against: the API serves and
	// changes the types through it, so that this process sees a change at once.
	EventTypes() *eventtype.Registry
}

// Server serves the REST API.
type Server struct {
	cfg        Config
	store      *store.Store
	deliveries Deliveries
	logger     *slog.Logger
	router     *mux.Router
	// platformKeys are the platform keys (Config.APIKeys), by digest.
	platformKeys []platformKey
	// limits holds each key's request rate limiter.
	limits *limiters
	// types is the event type registry: the delivery service's, or else one of the API's
	// own over the store.
	types *eventtype.Registry
}

// New returns a Server over st and the delivery service d (nil serves everything but
// publishing, tests and retries). A nil logger discards logs.
func New(cfg Config, st *store.Store, d Deliveries, logger *slog.Logger) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.SecretOverlap <= 0 {
		cfg.SecretOverlap = DefaultSecretOverlap
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:        cfg,
		store:      st,
		deliveries: d,
		logger:     logger,
		router:     mux.NewRouter(),
	}
	for _, key := range cfg.APIKeys {
		if key != "" {
			s.platformKeys = append(s.platformKeys, newPlatformKey(key))
		}
	}
	s.limits = newLimiters(cfg.RateLimit, cfg.RateBurst)
	if d != nil {
		s.types = d.EventTypes()
	} else {
		s.types = eventtype.NewRegistry(st, 0)
	}
	s.instrument()
	s.routes()
	return s
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler {
	return s.router
}

// routes registers every route: health and the OpenAPI document without authentication,
// everything else under /api behind the API key check.
func (s *Server) routes() {
	r := s.router
	r.NotFoundHandler = http.HandlerFunc(s.handleNotFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(s.handleMethodNotAllowed)
	r.Use(s.traceRequests(), s.logRequests, s.recoverPanic)

	s.registerHealthRoutes(r)
	r.HandleFunc("/openapi.json", s.handleOpenAPI).Methods(http.MethodGet)

	api := r.PathPrefix("/api").Subrouter()
	api.Use(s.authenticate, s.limitRate, s.limitDuration)
	s.registerAccountRoutes(api)
	s.registerWebhookRoutes(api)
	s.registerEventTypeRoutes(api)
	s.registerEventRoutes(api)
	s.registerConsoleRoutes(api)
}

// limitDuration gives the request a deadline: every statement and Temporal call it makes
// ends by then (toAPIError answers 503).
func (s *Server) limitDuration(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		timeout := s.cfg.RequestTimeout
		if route := mux.CurrentRoute(r); route != nil && route.GetName() == testRouteName {
			timeout = s.testTimeout()
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// testTimeout bounds a webhook test request: it waits for the attempt, then reads it back.
func (s *Server) testTimeout() time.Duration {
	return s.deliveries.TestWait() + readyTimeout
}

// LongestRequest is the longest any request may take: the HTTP server's write timeout
// must exceed it, or the answer of a slow request is cut off.
func (s *Server) LongestRequest() time.Duration {
	return max(s.cfg.RequestTimeout, s.testTimeout(), readyTimeout)
}

// recoverPanic turns a panicking handler into a logged 500 instead of a dropped
// connection.
func (s *Server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.ErrorContext(r.Context(), "handler panicked",
				"method", r.Method, "path", loggedPath(r), "panic", v, "stack", string(debug.Stack()))
			s.writeJSON(w, r, http.StatusInternalServerError,
				Error{Code: CodeInternal, Message: "Internal server error.", Fields: []FieldError{}})
		}()
		next.ServeHTTP(w, r)
	})
}

// allowedMethods lists the methods the router serves for r's path, for the Allow header
// of a 405.
func (s *Server) allowedMethods(r *http.Request) string {
	var allowed []string
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = method
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, method)
		}
	}
	return strings.Join(allowed, ", ")
}

// registerHealthRoutes adds the liveness and readiness probes; they need no API key.
func (s *Server) registerHealthRoutes(r *mux.Router) {
	r.HandleFunc("/healthz", s.handleHealth).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.handleReady).Methods(http.MethodGet)
}

// handleHealth answers as long as the process serves HTTP.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// readyResponse is the body of /readyz; checks says "ok" or "unavailable" per dependency
// (the cause is logged, not shown: the endpoint needs no key).
type readyResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleReady answers 200 when PostgreSQL and Temporal (when the server has a delivery
// service) answer within readyTimeout each, 503 otherwise.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	checks := map[string]func(context.Context) error{
		"postgres": s.store.Ping,
	}
	if s.deliveries != nil {
		checks["temporal"] = s.deliveries.CheckEngine
	}

	resp := readyResponse{Status: "ready", Checks: make(map[string]string, len(checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
			defer cancel()
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.logger.WarnContext(r.Context(), "readiness check failed", "check", name, "err", err)
				resp.Checks[name] = "unavailable"
				resp.Status = "unready"
				return
			}
			resp.Checks[name] = "ok"
		})
	}
	wg.Wait()

	status := http.StatusOK
	if resp.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	s.writeJSON(w, r, status, resp)
}
