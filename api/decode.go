package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// readBody reads the request body within Config.MaxBodyBytes. It returns nil for an empty
// body; a body that is sent must be labelled application/json.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, Errorf(CodeInvalidRequest, "The request body could not be read.")
	}
	if len(body) == 0 {
		return nil, nil
	}
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	return body, nil
}

// checkContentType accepts application/json, with an optional UTF-8 charset.
func checkContentType(value string) error {
	mediaType, params, err := mime.ParseMediaType(value)
	if err != nil || mediaType != "application/json" {
		return Errorf(CodeUnsupportedMediaType, "The request body must be sent as Content-Type: application/json.")
	}
	if charset, ok := params["charset"]; ok && !strings.EqualFold(charset, "utf-8") {
		return Errorf(CodeUnsupportedMediaType, "The request body must be encoded as UTF-8.")
	}
	return nil
}

// decodeObject parses body as exactly one JSON object and returns its members, still
// encoded, so that callers can tell absent members from explicit nulls and report every
// unknown or mistyped member at once.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	// encoding/json silently replaces invalid UTF-8 with U+FFFD; refuse it instead of
	// storing something the client did not send.
	if !utf8.Valid(body) {
		return nil, Errorf(CodeInvalidRequest, "The request body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil {
		return nil, jsonError(body, err)
	}
	if obj == nil {
		return nil, Errorf(CodeInvalidRequest, "The request body must be a JSON object.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := position(body, dec.InputOffset())
		return nil, Errorf(CodeInvalidRequest,
			"The request body has more data after the JSON object (line %d, column %d).", line, col)
	}
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	return obj, nil
}

// jsonError turns a decoding error into a 400 that says where the JSON went wrong.
func jsonError(body []byte, err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		line, col := position(body, syntaxErr.Offset)
		return Errorf(CodeInvalidRequest, "The request body is not valid JSON: %s (line %d, column %d).",
			strings.TrimPrefix(syntaxErr.Error(), "json: "), line, col)
	case errors.Is(err, io.ErrUnexpectedEOF):
		line, col := position(body, int64(len(body)))
		return Errorf(CodeInvalidRequest, "The request body is not valid JSON: unexpected end of input (line %d, column %d).", line, col)
	case errors.Is(err, io.EOF), errors.As(err, &typeErr):
		return Errorf(CodeInvalidRequest, "The request body must be a JSON object.")
	default:
		return Errorf(CodeInvalidRequest, "The request body is not valid JSON.")
	}
}

// position converts a byte offset into a 1-based line and column (in bytes).
func position(body []byte, offset int64) (line, col int) {
	offset = max(0, min(offset, int64(len(body))))
	before := body[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// optional is a JSON member that may be absent, null or a value.
type optional[T any] struct {
	Set   bool // the member was sent
	Null  bool // it was sent as null
	Bad   bool // it had the wrong JSON type (already reported)
	Value T
}

// usable reports whether the member was sent with a value of the right type.
func (o optional[T]) usable() bool {
	return o.Set && !o.Null && !o.Bad
}

// members reads the members of a decoded object one by one, collecting per-field errors.
type members struct {
	obj  map[string]json.RawMessage
	errs []FieldError
}

func (m *members) fail(field, message string) {
	m.errs = append(m.errs, FieldError{Field: field, Message: message})
}

// rejectUnknown reports every member nobody read, in name order.
func (m *members) rejectUnknown() {
	names := make([]string, 0, len(m.obj))
	for name := range m.obj {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		m.fail(truncate(name, 64), "is not a known field")
	}
}

// member takes the member name out of m and decodes it as a T; kind names T for the
// message when the JSON type is wrong ("a string", "an array of strings").
func member[T any](m *members, name, kind string) optional[T] {
	raw, ok := m.obj[name]
	if !ok {
		return optional[T]{}
	}
	delete(m.obj, name)
	if string(raw) == "null" {
		return optional[T]{Set: true, Null: true}
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		m.fail(name, "must be "+kind)
		return optional[T]{Set: true, Bad: true}
	}
	return optional[T]{Set: true, Value: v}
}

// truncate shortens s to at most n runes, so that error messages never echo a huge input.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return fmt.Sprintf("%s…", string(runes[:n]))
}
