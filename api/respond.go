package api

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// writeJSON answers v as JSON with status. It encodes before writing so that an encoding
// failure can still become a clean 500 instead of a truncated body.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep URLs with query strings readable: & stays &. The Content-Type and nosniff
	// header keep browsers from reading the body as HTML.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.logger.ErrorContext(r.Context(), "encode response",
			"method", r.Method, "path", r.URL.Path, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"code":"internal","message":"Internal server error.","fields":[]}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// noStore keeps responses that carry a secret out of caches.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}
