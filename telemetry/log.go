package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// logHandler adds the trace_id and span_id of the context's span to every record.
type logHandler struct {
	inner slog.Handler
}

// NewLogHandler wraps h so that records logged with a context inside a span (an API
// request, an activity) carry trace_id and span_id: a log line leads to its trace, and the
// lines of one event, from the API request to the last delivery attempt, share a trace_id
// even when no trace is exported.
func NewLogHandler(h slog.Handler) slog.Handler {
	return logHandler{inner: h}
}

// Enabled reports whether the wrapped handler takes records of level.
func (h logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds the span's ids, when ctx has a span, and passes r on.
func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs returns the handler with attrs added to every record.
func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{inner: h.inner.WithAttrs(attrs)}
}

// WithGroup returns the handler with later attributes in group name.
func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{inner: h.inner.WithGroup(name)}
}
