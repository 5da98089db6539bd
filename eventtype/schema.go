package eventtype

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Draft202012 is the one JSON Schema dialect a type's schema may be written in; "$schema",
// when given, must name it.
const Draft202012 = "https://json-schema.org/draft/2020-12/schema"

// Limits of a type's schema and example, in bytes of compact JSON.
const (
	MaxSchemaBytes  = 64 << 10
	MaxExampleBytes = 64 << 10
)

// maxProblems bounds the problems one validation reports: a payload wrong everywhere gets
// the first ones, enough to fix it.
const maxProblems = 20

// schemaURL is where a schema is compiled from. A relative "$ref" resolves against it
// (or against the schema's own "$id") to a document the compiler is not allowed to load,
// so a schema only ever refers to itself.
const (
	schemaBase = "https://event-types.surveyhooks.invalid/"
	schemaURL  = schemaBase + "schema.json"
)

// printer writes the library's messages in English.
var printer = message.NewPrinter(language.English)

// Schema is a compiled JSON Schema. It is safe for concurrent use.
type Schema struct {
	compiled *jsonschema.Schema
}

// Problem is one way in which a document fails: Pointer is the JSON pointer of the failing
// value inside the document ("" for the document itself), Keyword the schema rule that
// failed ("required", "type", "minimum", ...), Message what is wrong, as a sentence part.
type Problem struct {
	Pointer string
	Keyword string
	Message string
}

// SchemaError says why a document is not a usable schema; Problems point into the schema.
type SchemaError struct {
	Problems []Problem
}

func (e *SchemaError) Error() string {
	return "invalid JSON Schema: " + describe(e.Problems)
}

// DataError says why an event's data does not match its type's schema; Problems point into
// the data.
type DataError struct {
	Type     string
	Problems []Problem
}

func (e *DataError) Error() string {
	return fmt.Sprintf("data does not match the schema of %s: %s", e.Type, describe(e.Problems))
}

func describe(problems []Problem) string {
	parts := make([]string, 0, len(problems))
	for _, p := range problems {
		parts = append(parts, fmt.Sprintf("%q %s", p.Pointer, p.Message))
	}
	return strings.Join(parts, "; ")
}

// refuseLoads is the compiler's loader: a schema may not make surveyhooks read a file or
// fetch a URL. The draft 2020-12 meta-schemas are built into the library.
type refuseLoads struct{}

func (refuseLoads) Load(url string) (any, error) {
	return nil, fmt.Errorf("%s is outside the schema", url)
}

// Compile checks that doc is a JSON Schema of draft 2020-12, an object that refers to
// nothing outside itself, and compiles it. "format" is asserted ("date-time", "email",
// "uuid", ...), so that a schema means what most of its authors expect of it. Its errors
// are *SchemaError.
func Compile(doc json.RawMessage) (*Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, &SchemaError{Problems: []Problem{{Message: "is not JSON"}}}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &SchemaError{Problems: []Problem{{Keyword: "type", Message: "must be a JSON object"}}}
	}
	if dialect, ok := obj["$schema"]; ok && dialect != Draft202012 && dialect != Draft202012+"#" {
		return nil, &SchemaError{Problems: []Problem{{Pointer: "/$schema", Keyword: "$schema",
			Message: "must be " + Draft202012 + " when given: schemas are draft 2020-12"}}}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(refuseLoads{})
	if err := c.AddResource(schemaURL, v); err != nil {
		return nil, fmt.Errorf("add schema: %w", err)
	}
	compiled, err := c.Compile(schemaURL)
	if err != nil {
		return nil, compileError(err)
	}
	return &Schema{compiled: compiled}, nil
}

// compileError explains why the library refused a schema.
func compileError(err error) error {
	var invalid *jsonschema.SchemaValidationError
	var verr *jsonschema.ValidationError
	if errors.As(err, &invalid) && errors.As(invalid.Err, &verr) {
		return &SchemaError{Problems: problems(verr)}
	}
	var load *jsonschema.LoadURLError
	if errors.As(err, &load) {
		return &SchemaError{Problems: []Problem{{Keyword: "$ref",
			Message: fmt.Sprintf("refers to %s: a schema may refer only to itself (\"#/$defs/...\")",
				strings.TrimPrefix(load.URL, schemaBase))}}}
	}
	var missing *jsonschema.JSONPointerNotFoundError
	if errors.As(err, &missing) {
		return &SchemaError{Problems: []Problem{{Keyword: "$ref",
			Message: fmt.Sprintf("refers to %s, which the schema does not have", strings.TrimPrefix(missing.URL, schemaURL))}}}
	}
	// Anything else the library refuses (a bad $id or $anchor, a regex it cannot read) is
	// also about the schema; its text names the part.
	return &SchemaError{Problems: []Problem{{Message: strings.ReplaceAll(err.Error(), schemaURL, "")}}}
}

// Validate checks doc against the schema; its error is *DataError, with the type's name
// left for the caller to fill in.
func (s *Schema) Validate(doc json.RawMessage) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return &DataError{Problems: []Problem{{Message: "is not JSON"}}}
	}
	err = s.compiled.Validate(v)
	var verr *jsonschema.ValidationError
	if errors.As(err, &verr) {
		return &DataError{Problems: problems(verr)}
	}
	if err != nil {
		return fmt.Errorf("validate: %w", err)
	}
	return nil
}

// problems flattens the library's tree of causes into the failures a person fixes: the
// leaves. A missing member is a problem of the member ("/response/id is required"), not of
// the object that lacks it.
func problems(verr *jsonschema.ValidationError) []Problem {
	var out []Problem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) >= maxProblems {
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		pointer := pointerOf(e.InstanceLocation)
		if req, ok := e.ErrorKind.(*kind.Required); ok {
			for _, name := range req.Missing {
				out = append(out, Problem{Pointer: pointer + "/" + escapeToken(name), Keyword: "required", Message: "is required"})
			}
			return
		}
		keyword := ""
		if path := e.ErrorKind.KeywordPath(); len(path) > 0 {
			keyword = path[len(path)-1]
		}
		msg := e.ErrorKind.LocalizedString(printer)
		if keyword != "" && !strings.HasPrefix(msg, keyword+":") {
			msg = keyword + ": " + msg
		}
		out = append(out, Problem{Pointer: pointer, Keyword: keyword, Message: msg})
	}
	walk(verr)
	if len(out) > maxProblems {
		out = out[:maxProblems]
	}
	return slices.Clip(out)
}

func pointerOf(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(escapeToken(t))
	}
	return sb.String()
}

// escapeToken escapes a member name for a JSON pointer (RFC 6901).
func escapeToken(t string) string {
	return strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
}

// CheckDefinition checks what a registered type must be, apart from its name and
// description: a schema that compiles (Compile), an example that matches it, each within
// its size limit. It returns the compiled schema, or a *DefinitionError.
func CheckDefinition(schema, example json.RawMessage) (*Schema, error) {
	var fields []FieldProblem
	if len(schema) > MaxSchemaBytes {
		return nil, &DefinitionError{Fields: []FieldProblem{{Field: "schema", Message: fmt.Sprintf("must be at most %d bytes", MaxSchemaBytes)}}}
	}
	if len(example) > MaxExampleBytes {
		fields = append(fields, FieldProblem{Field: "example", Message: fmt.Sprintf("must be at most %d bytes", MaxExampleBytes)})
	}
	compiled, err := Compile(schema)
	var serr *SchemaError
	if errors.As(err, &serr) {
		for _, p := range serr.Problems {
			fields = append(fields, FieldProblem{Field: "schema" + p.Pointer, Message: p.Message})
		}
		return nil, &DefinitionError{Fields: fields}
	}
	if err != nil {
		return nil, err
	}
	if len(fields) > 0 {
		return nil, &DefinitionError{Fields: fields}
	}
	err = compiled.Validate(example)
	var derr *DataError
	if errors.As(err, &derr) {
		for _, p := range derr.Problems {
			fields = append(fields, FieldProblem{Field: "example" + p.Pointer,
				Message: "does not match the schema: " + p.Message})
		}
		return nil, &DefinitionError{Fields: fields}
	}
	if err != nil {
		return nil, err
	}
	return compiled, nil
}

// FieldProblem is what is wrong with one field of a type's definition: Field is "schema"
// or "example", followed by the JSON pointer of the failing value inside it.
type FieldProblem struct {
	Field   string
	Message string
}

// DefinitionError says why a schema or an example cannot be registered.
type DefinitionError struct {
	Fields []FieldProblem
}

func (e *DefinitionError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, f.Field+" "+f.Message)
	}
	return "invalid event type definition: " + strings.Join(parts, "; ")
}
