package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gorilla/mux/otelmux"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
)

// MeterName is the instrumentation scope of the API's own metrics.
const MeterName = "github.com/surveyhooks/surveyhooks/api"

// gaugeTimeout bounds the webhooks-active query of a scrape.
const gaugeTimeout = 2 * time.Second

// instrument makes the API's own metric, surveyhooks_webhooks_active (active webhooks,
// counted at each scrape); the delivery service counts the events it publishes, and
// otelmux adds the HTTP server metrics (http_server_request_duration_seconds{http_route}).
// A failure is logged, not returned: metrics must never keep the API from serving.
func (s *Server) instrument() {
	_, err := s.meterProvider().Meter(MeterName).Int64ObservableGauge("surveyhooks_webhooks_active",
		metric.WithDescription("Active webhooks (isActive), counted in PostgreSQL at each scrape."),
		metric.WithUnit("{webhook}"),
		metric.WithInt64Callback(s.observeActiveWebhooks))
	if err != nil {
		s.logger.Warn("API metrics are incomplete", "err", err)
	}
}

// observeActiveWebhooks reports the active webhooks. A failed count reports nothing for
// this scrape rather than a wrong zero.
func (s *Server) observeActiveWebhooks(ctx context.Context, o metric.Int64Observer) error {
	ctx, cancel := context.WithTimeout(ctx, gaugeTimeout)
	defer cancel()
	n, err := s.store.CountActiveWebhooks(ctx)
	if err != nil {
		s.logger.WarnContext(ctx, "count active webhooks for metrics", "err", err)
		return nil
	}
	o.Observe(n)
	return nil
}

func (s *Server) meterProvider() metric.MeterProvider {
	if s.cfg.MeterProvider != nil {
		return s.cfg.MeterProvider
	}
	return otel.GetMeterProvider()
}

// traceRequests makes a server span per request, named after the route template
// ("POST /api/events") and joined to the caller's trace when it sends a traceparent; the
// span's context reaches the event workflow through the Temporal interceptor. Health
// probes are left out: they would be most spans and say nothing.
func (s *Server) traceRequests() mux.MiddlewareFunc {
	opts := []otelmux.Option{
		otelmux.WithMeterProvider(s.meterProvider()),
		otelmux.WithFilter(func(r *http.Request) bool {
			return r.URL.Path != "/healthz" && r.URL.Path != "/readyz"
		}),
	}
	if s.cfg.TracerProvider != nil {
		opts = append(opts, otelmux.WithTracerProvider(s.cfg.TracerProvider))
	}
	if s.cfg.Propagator != nil {
		opts = append(opts, otelmux.WithPropagators(s.cfg.Propagator))
	}
	return otelmux.Middleware("surveyhooks", opts...)
}

// logRequests writes one line per request: method, route, status and duration, with the
// request's trace_id and span_id (the logger's handler adds them from the context). Never
// the query, headers or body: they may hold API keys and webhook secrets. Health probes
// log at debug level.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		note := &requestNote{}
		r = r.WithContext(context.WithValue(r.Context(), requestNoteKey{}, note))
		next.ServeHTTP(sw, r)
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			level = slog.LevelDebug
		}
		path := loggedPath(r)
		route := path
		if cur := mux.CurrentRoute(r); cur != nil {
			if tpl, err := cur.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		s.logger.Log(r.Context(), level, "request",
			"method", r.Method, "route", route, "path", path, "status", sw.statusOr200(),
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "key", note.key)
	})
}

// requestNote is what the handlers below logRequests learn of a request for its log line:
// the prefix of the key that sent it, once authenticated.
type requestNote struct {
	key string
}

type requestNoteKey struct{}

// noteKey names the request's key in its log line.
func noteKey(r *http.Request, prefix string) {
	if n, ok := r.Context().Value(requestNoteKey{}).(*requestNote); ok {
		n.key = prefix
	}
}

// maxLoggedPath bounds the path a log line carries, in bytes. Anyone can send a path of
// nearly MaxHeaderBytes, with or without an API key; logged whole, every such request would
// add as much to the logs. Real paths are far shorter: the longest route with a 128-character
// survey id and a UUID is under 250 bytes.
const maxLoggedPath = 256

// loggedPath is r's path as log lines show it: cut to maxLoggedPath bytes, on a character
// boundary, and followed by the full length when cut.
func loggedPath(r *http.Request) string {
	p := r.URL.Path
	if len(p) <= maxLoggedPath {
		return p
	}
	n := maxLoggedPath
	for n > 0 && !utf8.RuneStart(p[n]) {
		n--
	}
	return p[:n] + "…(" + strconv.Itoa(len(p)) + " bytes)"
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records status and writes it.
func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write writes b, as a 200 when no status was written.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// statusOr200 is the status written, 200 when the handler wrote nothing.
func (w *statusWriter) statusOr200() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}
