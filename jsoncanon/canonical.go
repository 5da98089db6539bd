// Package jsoncanon writes a JSON text as JavaScript writes it back: the bytes of
// Canonical(raw) are the UTF-8 bytes of JSON.stringify(JSON.parse(raw)) in an ECMAScript
// 2019 or later engine (Node.js), for every text whose numbers a double holds. Receivers
// that verify an HMAC over JSON.stringify(JSON.parse(body)) then verify the body as sent.
//
// What JavaScript writes back, and so what Canonical writes:
//
//   - strings as UTF-8, escaping only what JSON.stringify escapes: '"', '\\', \b \f \n \r \t,
//     other control characters as \u00xx and lone surrogates as \udxxx (lowercase hex);
//     U+2028, U+2029, '<', '>', '&' and '/' are written as they are;
//   - numbers as ECMAScript's Number::toString prints them (AppendNumber);
//   - object members in the order JavaScript keeps them: member names that are array
//     indices first, in ascending numeric order, then the others in the order sent; a name
//     sent twice keeps its first position and its last value;
//   - no whitespace.
//
// A number whose value changes on its way through a double (9007199254740993, 1e400,
// 1e-400) is refused with a *NumberError naming its JSON pointer instead of being changed
// silently: a publisher's data is either sent as it means or not at all.
//
// Canonical reads the text once, without building a tree; only an object whose members
// JavaScript reorders is rewritten in place when it closes.
package jsoncanon

import (
	"fmt"
	"sync"
	"unicode/utf8"
)

// Canonical returns the canonical form of the JSON text raw, which may be any JSON value
// with whitespace around it. It returns a *SyntaxError when raw is not one JSON text in
// UTF-8, and otherwise a *NumberError for the first number a double does not hold.
func Canonical(raw []byte) ([]byte, error) {
	return Append(make([]byte, 0, len(raw)+16), raw)
}

// Append appends the canonical form of raw to dst (see Canonical). On an error, dst is
// returned as it was.
func Append(dst, raw []byte) ([]byte, error) {
	if !utf8.Valid(raw) {
		return dst, &SyntaxError{Offset: invalidUTF8(raw), msg: "invalid UTF-8"}
	}
	w := writers.Get().(*writer)
	defer w.release()
	w.in = raw
	out, err := w.text(dst)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// SyntaxError reports that a text is not one JSON text (RFC 8259) in UTF-8.
type SyntaxError struct {
	// Offset is the byte offset in the text where the error was found.
	Offset int
	msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.msg)
}

// NumberError reports a number whose value changes when it is read as a double, as
// JavaScript and most JSON parsers read numbers.
type NumberError struct {
	// Pointer is the number's JSON pointer (RFC 6901), "" for a number that is the whole text.
	Pointer string
	// Number is the number as sent.
	Number string
	// Read is what JavaScript reads: the nearest double as ECMAScript prints it, or
	// "Infinity" or "-Infinity" past the largest double.
	Read string
}

func (e *NumberError) Error() string {
	return fmt.Sprintf("the number %s at %q is read as %s", abbreviate(e.Number, 40), e.Pointer, e.Read)
}

// abbreviate cuts s to n bytes, marking the cut: a number may be a whole request long.
func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// invalidUTF8 returns the offset of the first byte of raw that is not valid UTF-8.
func invalidUTF8(raw []byte) int {
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(raw)
}

// writers keeps the scratch space of finished calls, so that a call allocates nothing
// but its output.
var writers = sync.Pool{New: func() any { return new(writer) }}

// maxKept is the largest scratch buffer a writer keeps for the next call.
const maxKept = 1 << 20

// writer reads in once and appends its canonical form to out. The objects and arrays open
// around the current value are frames; the members of the open objects are a stack of
// their own, kept so that an object can be reordered when it closes.
//
// The output travels as an argument and a result, out, rather than as a field: a store
// of a slice into the writer, which lives on the heap, pays a GC write barrier, and there
// would be one per token.
type writer struct {
	in      []byte
	pos     int
	frames  []frame
	members []member
	// scratch holds an object's members while they are written again in order; order
	// and pairs hold the indices being sorted; digits a number's significant digits.
	scratch []byte
	order   []int32
	pairs   [][2]int32
	digits  []byte
	// refused is the first number JavaScript reads as another value.
	refused *NumberError
}

// frame is an open object or array.
type frame struct {
	object bool
	// start is the offset in out of the frame's '{' or '['.
	start int
	// first is the index in members of an object's first member.
	first int
	// index is an array's current element, for pointers.
	index int
	// reorder says that an object has a member name that is an array index, so that
	// JavaScript moves its members.
	reorder bool
}

// member is an object member already written to out: out[key:colon] is its name as a
// canonical JSON string, out[colon:end] its ':' and value.
type member struct {
	key, colon, end int
	// index is the name's value when it is an array index (isIndex).
	index   uint32
	isIndex bool
}

func (w *writer) release() {
	w.in, w.pos, w.refused = nil, 0, nil
	w.frames, w.members, w.order, w.pairs = w.frames[:0], w.members[:0], w.order[:0], w.pairs[:0]
	if cap(w.scratch) > maxKept {
		w.scratch = nil
	}
	w.scratch = w.scratch[:0]
	writers.Put(w)
}

func (w *writer) fail(msg string) error {
	return &SyntaxError{Offset: w.pos, msg: msg}
}

func (w *writer) skipSpace() {
	for w.pos < len(w.in) {
		switch w.in[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// text appends the canonical form of the one JSON value of w.in to out. It loops instead
// of recursing, so that nesting costs a frame, not a stack.
func (w *writer) text(out []byte) ([]byte, error) {
	var err error
	for {
		// A value, opening a frame or not.
		w.skipSpace()
		if w.pos == len(w.in) {
			return out, w.fail("unexpected end of input")
		}
		switch c := w.in[w.pos]; {
		case c == '{':
			w.pos++
			w.frames = append(w.frames, frame{object: true, start: len(out), first: len(w.members)})
			out = append(out, '{')
			w.skipSpace()
			if w.pos < len(w.in) && w.in[w.pos] == '}' {
				w.pos++
				out = append(out, '}')
				w.frames = w.frames[:len(w.frames)-1]
				break
			}
			if out, err = w.key(out); err != nil {
				return out, err
			}
			continue
		case c == '[':
			w.pos++
			w.frames = append(w.frames, frame{start: len(out)})
			out = append(out, '[')
			w.skipSpace()
			if w.pos < len(w.in) && w.in[w.pos] == ']' {
				w.pos++
				out = append(out, ']')
				w.frames = w.frames[:len(w.frames)-1]
				break
			}
			continue
		case c == '"':
			out, err = w.string(out)
		case c == '-' || c >= '0' && c <= '9':
			out, err = w.number(out)
		case c == 't':
			out, err = w.literal(out, "true")
		case c == 'f':
			out, err = w.literal(out, "false")
		case c == 'n':
			out, err = w.literal(out, "null")
		default:
			err = w.fail(fmt.Sprintf("unexpected %q", c))
		}
		if err != nil {
			return out, err
		}

		// After a value: close the frames it ends, then go on to the next value.
		for {
			if len(w.frames) == 0 {
				w.skipSpace()
				if w.pos != len(w.in) {
					return out, w.fail("data after the JSON value")
				}
				if w.refused != nil {
					return out, w.refused
				}
				return out, nil
			}
			f := &w.frames[len(w.frames)-1]
			if f.object {
				w.members[len(w.members)-1].end = len(out)
			}
			w.skipSpace()
			if w.pos == len(w.in) {
				return out, w.fail("unexpected end of input")
			}
			c := w.in[w.pos]
			w.pos++
			switch {
			case c == ',':
				out = append(out, ',')
				if f.object {
					if out, err = w.key(out); err != nil {
						return out, err
					}
				} else {
					f.index++
				}
			case c == '}' && f.object:
				out = w.closeObject(out, f)
				w.frames = w.frames[:len(w.frames)-1]
				continue
			case c == ']' && !f.object:
				out = append(out, ']')
				w.frames = w.frames[:len(w.frames)-1]
				continue
			default:
				w.pos--
				return out, w.fail(fmt.Sprintf("unexpected %q after a value", c))
			}
			break
		}
	}
}

// key appends an object member's name and its ':'.
func (w *writer) key(out []byte) ([]byte, error) {
	w.skipSpace()
	if w.pos == len(w.in) || w.in[w.pos] != '"' {
		return out, w.fail("expected a member name")
	}
	m := member{key: len(out)}
	out, err := w.string(out)
	if err != nil {
		return out, err
	}
	m.colon = len(out)
	m.index, m.isIndex = arrayIndex(out[m.key+1 : m.colon-1])
	if m.isIndex {
		w.frames[len(w.frames)-1].reorder = true
	}
	w.skipSpace()
	if w.pos == len(w.in) || w.in[w.pos] != ':' {
		return out, w.fail("expected ':' after a member name")
	}
	w.pos++
	w.members = append(w.members, m)
	return append(out, ':'), nil
}

func (w *writer) literal(out []byte, word string) ([]byte, error) {
	if len(w.in)-w.pos < len(word) || string(w.in[w.pos:w.pos+len(word)]) != word {
		return out, w.fail("invalid literal")
	}
	w.pos += len(word)
	return append(out, word...), nil
}

// pointer is the JSON pointer of the value being read; out is the output so far.
func (w *writer) pointer(out []byte) string {
	var p []byte
	for _, f := range w.frames {
		p = append(p, '/')
		if !f.object {
			p = fmt.Appendf(p, "%d", f.index)
			continue
		}
		// The current member of an object is the last one of its members written.
		m := w.members[w.lastMember(f)]
		for _, r := range decodeString(out[m.key:m.colon]) {
			switch r {
			case '~':
				p = append(p, "~0"...)
			case '/':
				p = append(p, "~1"...)
			default:
				p = utf8.AppendRune(p, r)
			}
		}
	}
	return string(p)
}

// lastMember is the index in w.members of the member of object f being read: the last
// one before the members of the next object open inside it.
func (w *writer) lastMember(f frame) int {
	for _, g := range w.frames {
		if g.object && g.start > f.start {
			return g.first - 1
		}
	}
	return len(w.members) - 1
}
