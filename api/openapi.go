package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument describes every route of the API (OpenAPI 3.0). A test checks that its
// paths and the router's routes agree both ways.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI document served at GET /openapi.json.
func OpenAPI() []byte {
	return append([]byte(nil), openAPIDocument...)
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPIDocument)
}
