package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/stretchr/testify/require"
)

// openAPIDoc is the part of the document the tests look at.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]json.RawMessage `json:"securitySchemes"`
	} `json:"components"`
}

// operation is what every documented operation must say.
type operation struct {
	OperationID string                     `json:"operationId"`
	Security    *[]map[string][]string     `json:"security"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIMatchesRouter walks the router and checks that every route (path template
// and method) is documented, and that every documented operation is routed.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	srv := New(Config{}, nil, nil, nil)

	routed := map[string]bool{}
	err := srv.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a subrouter's prefix, not an endpoint
		}
		path, err := route.GetPathTemplate()
		require.NoError(t, err)
		for _, m := range methods {
			routed[strings.ToLower(m)+" "+path] = true
		}
		return nil
	})
	require.NoError(t, err)
	require.NotEmpty(t, routed)

	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(openAPIDocument, &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.0."))
	require.Contains(t, doc.Components.SecuritySchemes, "bearerAuth")

	documented := map[string]bool{}
	operationIDs := map[string]bool{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !slices.Contains(httpMethods, method) {
				continue // "parameters" and friends
			}
			documented[method+" "+path] = true
			var op operation
			require.NoError(t, json.Unmarshal(raw, &op), method+" "+path)
			require.NotEmpty(t, op.OperationID, method+" "+path)
			require.False(t, operationIDs[op.OperationID], "duplicate operationId %s", op.OperationID)
			operationIDs[op.OperationID] = true
			if strings.HasPrefix(path, "/api/") {
				require.Nil(t, op.Security, "%s %s must use the document's bearer security", method, path)
				require.Contains(t, op.Responses, "401", "%s %s documents 401", method, path)
				require.Contains(t, op.Responses, "500", "%s %s documents 500", method, path)
			} else {
				require.NotNil(t, op.Security, "%s %s needs no key", method, path)
				require.Empty(t, *op.Security)
			}
		}
	}

	for key := range routed {
		require.True(t, documented[key], "route %s is not in openapi.json", key)
	}
	for key := range documented {
		require.True(t, routed[key], "openapi.json documents %s, which is not routed", key)
	}
}

// TestOpenAPIRefsResolve checks that every $ref points at a component that exists.
func TestOpenAPIRefsResolve(t *testing.T) {
	t.Parallel()
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openAPIDocument, &doc))

	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if s, ok := child.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(doc)
	require.NotEmpty(t, refs)
	for _, ref := range refs {
		require.True(t, strings.HasPrefix(ref, "#/"), ref)
		var node any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := node.(map[string]any)
			require.True(t, ok, ref)
			node, ok = m[part]
			require.True(t, ok, "unresolved $ref %s", ref)
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := b.do(t, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, resp.status)
	require.Equal(t, "application/json", resp.header.Get("Content-Type"))
	require.Equal(t, openAPIDocument, resp.body)
}
