package activities

import (
	"context"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/surveyhooks/surveyhooks/store"
)

// TracerName is the instrumentation scope of the delivery spans.
const TracerName = "github.com/surveyhooks/surveyhooks/activities"

// startSendSpan starts the client span of one POST to t.
func (a *Activities) startSendSpan(ctx context.Context, t store.Target) (context.Context, trace.Span) {
	ctx, span := a.tracer.Start(ctx, "POST", trace.WithSpanKind(trace.SpanKindClient))
	if !span.IsRecording() {
		return ctx, span
	}
	attrs := []attribute.KeyValue{
		semconv.HTTPRequestMethodPost,
		attribute.String("surveyhooks.delivery_id", t.DeliveryID.String()),
		attribute.String("surveyhooks.webhook_id", t.Webhook.ID.String()),
		attribute.String("surveyhooks.event_id", t.EventID),
		attribute.String("surveyhooks.event_type", t.EventType),
	}
	if u, err := url.Parse(t.Webhook.URL); err == nil {
		attrs = append(attrs, semconv.URLFull(redactURL(u)), semconv.ServerAddress(u.Hostname()))
		if port := serverPort(u); port > 0 {
			attrs = append(attrs, semconv.ServerPort(port))
		}
	}
	span.SetAttributes(attrs...)
	return ctx, span
}

// endSendSpan records how the POST ended and ends its span.
func endSendSpan(span trace.Span, s *sentAttempt) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	if s.statusCode != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(s.statusCode))
	}
	switch {
	case s.statusCode >= 400:
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(s.statusCode)))
		span.SetStatus(codes.Error, s.attempt.Error)
	case s.statusCode == 0 || s.statusCode >= 300:
		// No response (timeout, refused address, network error), or a redirect we do not
		// follow: the attempt failed.
		span.SetAttributes(semconv.ErrorTypeKey.String(statusClasses[statusClassIndex(s)]))
		span.SetStatus(codes.Error, s.attempt.Error)
	}
}

// redactURL is u as spans show it: scheme, host and port only. Webhook URLs often carry a
// credential in the path or query (chat webhooks, ?token=), and traces leave for a
// backend with other readers; the delivery log keeps the full URL.
func redactURL(u *url.URL) string {
	shown := url.URL{Scheme: u.Scheme, Host: u.Host}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		shown.Path = "/REDACTED"
	}
	return shown.String()
}

// serverPort is u's port, or its scheme's default.
func serverPort(u *url.URL) int {
	if p, err := strconv.Atoi(u.Port()); err == nil {
		return p
	}
	switch u.Scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}
