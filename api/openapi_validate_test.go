package api

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

// TestOpenAPIValidates loads the document with kin-openapi and runs its strict
// validation: schema keywords, examples against their schemas, path parameters declared
// for every template variable, unique operationIds, and resolvable references. The
// generated client (package client) is only as right as this document.
func TestOpenAPIValidates(t *testing.T) {
	t.Parallel()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	require.NoError(t, err)
	err = doc.Validate(t.Context(),
		openapi3.EnableMultiError(),             // every finding, not the first
		openapi3.EnableSchemaFormatValidation(), // formats the specification does not define
		openapi3.ProhibitExtensionsWithRef(),    // x- members beside a $ref, which tools drop
	)
	require.NoError(t, err)
}
