package api

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// writeJSON answers v as JSON with status. It encodes before writing so that an encoding
// failure can still become a clean 500 instead of a truncated body. Every answer is marked
// Cache-Control: no-store: webhooks carry secrets, events and attempts carry survey answers,
// and no shared or browser cache should keep any of them. Only GET answers are cached, and
// every one of them is written here.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep URLs with query strings readable: & stays &. The Content-Type and nosniff
	// header keep browsers from reading the body as HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.logger.ErrorContext(r.Context(), "encode response",
			"method", r.Method, "path", loggedPath(r), "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"code":"internal","message":"Internal server error.","fields":[]}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
