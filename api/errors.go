package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/surveyhooks/surveyhooks/store"
)

// Error codes of the JSON error body. Each maps to one HTTP status in statusOf.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeUnauthorized         = "unauthorized"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeConflict             = "conflict"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeForbidden            = "forbidden"
	CodeTooManyRequests      = "too_many_requests"
	CodeUnavailable          = "unavailable"
	CodeInternal             = "internal"
)

// Error is an error the client may see: a code, a sentence and, for invalid input, one
// message per offending field. Anything that is not an *Error is answered as a generic
// 500 and logged.
type Error struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Fields  []FieldError `json:"fields"`
}

// FieldError says what is wrong with one field of the request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalidFields is the 400 answer for per-field validation failures.
func invalidFields(fields []FieldError) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "The request has invalid fields.", Fields: fields}
}

// statusOf is the one place that turns an error code into an HTTP status.
func statusOf(code string) int {
	switch code {
	case CodeInvalidRequest:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict:
		return http.StatusConflict
	case CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case CodeForbidden:
		return http.StatusForbidden
	case CodeTooManyRequests:
		return http.StatusTooManyRequests
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// toAPIError maps domain errors to what the client sees. It returns nil for errors the
// client must not see the text of.
func toAPIError(err error) *Error {
	var apiErr *Error
	var tooLarge *http.MaxBytesError
	var overlap *store.RotationOverlapError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.Is(err, store.ErrNotFound):
		return Errorf(CodeNotFound, "Resource not found.")
	case errors.Is(err, store.ErrDuplicate):
		return Errorf(CodeConflict, "The resource already exists.")
	case errors.As(err, &overlap):
		return Errorf(CodeConflict, "The previous rotation's overlap runs until %s: the secret before it "+
			"still signs, and another rotation would drop it. Rotate again after that, or with "+
			`{"overlapSeconds":0} to drop every older secret now.`, overlap.Until.UTC().Format(time.RFC3339))
	case errors.As(err, &tooLarge):
		return Errorf(CodePayloadTooLarge, "The request body is larger than %d bytes.", tooLarge.Limit)
	case errors.Is(err, context.DeadlineExceeded):
		// The request's deadline (limitDuration) passed: a slow or hung database, most
		// likely. Worth retrying; writeError logs the cause.
		return Errorf(CodeUnavailable, "The request did not finish in time; try again shortly.")
	case store.IsUnavailable(err):
		// Worth retrying: the client gets 503; writeError logs the cause.
		return Errorf(CodeUnavailable, "The database is unavailable; try again shortly.")
	default:
		return nil
	}
}

// writeError answers err as JSON. Unknown errors become a generic 500 whose real cause is
// logged with the request's method and path, never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	apiErr := toAPIError(err)
	switch {
	case apiErr == nil || apiErr.Code != CodeUnavailable:
	case errors.Is(err, context.DeadlineExceeded):
		s.logger.WarnContext(r.Context(), "request timed out",
			"method", r.Method, "path", loggedPath(r), "err", err)
	case store.IsUnavailable(err):
		s.logger.WarnContext(r.Context(), "database unavailable",
			"method", r.Method, "path", loggedPath(r), "err", err)
	}
	if apiErr == nil {
		level := slog.LevelError
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			// The client went away; nobody reads the answer.
			level = slog.LevelInfo
		}
		s.logger.Log(r.Context(), level, "request failed",
			"method", r.Method, "path", loggedPath(r), "err", err)
		apiErr = Errorf(CodeInternal, "Internal server error.")
	}
	if apiErr.Code == CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="surveyhooks"`)
	}
	body := *apiErr
	if body.Fields == nil {
		body.Fields = []FieldError{}
	}
	s.writeJSON(w, r, statusOf(apiErr.Code), body)
}

// handleNotFound answers requests no route matches. gorilla/mux v1.8.1 loses the method
// mismatch of a subrouter route when a later route of the same subrouter shares its prefix,
// and reports a 404; asking the router which methods the path has restores the 405.
func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	if s.allowedMethods(r) != "" {
		s.handleMethodNotAllowed(w, r)
		return
	}
	s.writeError(w, r, Errorf(CodeNotFound, "No route matches this path."))
}

// handleMethodNotAllowed answers a known path with a method it does not serve, listing
// the methods it does in the Allow header.
func (s *Server) handleMethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	if allow := s.allowedMethods(r); allow != "" {
		w.Header().Set("Allow", allow)
	}
	s.writeError(w, r, Errorf(CodeMethodNotAllowed, "This method is not allowed on this path."))
}
