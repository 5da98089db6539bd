package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/surveyhooks/surveyhooks/jsoncanon"
)

// maxDepth is how deeply a member of a request body may nest objects and arrays: an event's
// data may be 64 levels deep, itself the first. encoding/json alone stops at 10,000, which
// lets a publisher hand every receiver a document many parsers refuse or overflow on.
const maxDepth = 64

// checkJSON refuses what encoding/json accepts but reads as something else than was sent, or
// what receivers cannot read back: an escaped lone surrogate (decoded as U+FFFD), a member
// name twice in one object (the last would win), a number beyond float64 (JavaScript reads
// Infinity) and nesting deeper than maxDepth inside the top-level object. body is one valid
// JSON value; decodeObject has checked that.
func checkJSON(body []byte) error {
	c := jsonChecker{body: body}
	return c.value(0)
}

// jsonChecker walks a valid JSON text once; depth is bounded by maxDepth, so the recursion
// is too.
type jsonChecker struct {
	body []byte
	pos  int
	// path leads to the value being checked, for the JSON pointer of a refused number.
	path []pathStep
}

// pathStep is a member name, or an element's index in an array.
type pathStep struct {
	name    string
	index   int
	inArray bool
}

func (c *jsonChecker) fail(offset int, format string, args ...any) *Error {
	line, col := position(c.body, int64(offset))
	args = append(args, line, col)
	return Errorf(CodeInvalidRequest, "The request body "+format+" (line %d, column %d).", args...)
}

func (c *jsonChecker) skipSpace() {
	for c.pos < len(c.body) {
		switch c.body[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// value checks the value at c.pos; depth counts the objects and arrays around it.
func (c *jsonChecker) value(depth int) error {
	c.skipSpace()
	switch c.body[c.pos] {
	case '{', '[':
		// The top-level object is depth 1; its members may nest maxDepth more.
		if depth > maxDepth {
			return c.fail(c.pos, "nests objects and arrays more than %d levels deep inside its top-level object", maxDepth)
		}
		if c.body[c.pos] == '{' {
			return c.object(depth + 1)
		}
		return c.array(depth + 1)
	case '"':
		_, err := c.string(false)
		return err
	case 't', 'n':
		c.pos += 4
	case 'f':
		c.pos += 5
	default:
		return c.number()
	}
	return nil
}

func (c *jsonChecker) object(depth int) error {
	c.pos++ // {
	c.skipSpace()
	if c.body[c.pos] == '}' {
		c.pos++
		return nil
	}
	var names map[string]struct{}
	for {
		c.skipSpace()
		start := c.pos
		name, err := c.string(true)
		if err != nil {
			return err
		}
		if names == nil {
			names = make(map[string]struct{})
		}
		if _, dup := names[name]; dup {
			return c.fail(start, "repeats the member %q", truncate(name, 64))
		}
		names[name] = struct{}{}
		c.skipSpace()
		c.pos++ // :
		c.path = append(c.path, pathStep{name: name})
		if err := c.value(depth); err != nil {
			return err
		}
		c.path = c.path[:len(c.path)-1]
		c.skipSpace()
		c.pos++ // , or }
		if c.body[c.pos-1] == '}' {
			return nil
		}
	}
}

func (c *jsonChecker) array(depth int) error {
	c.pos++ // [
	c.skipSpace()
	if c.body[c.pos] == ']' {
		c.pos++
		return nil
	}
	for i := 0; ; i++ {
		c.path = append(c.path, pathStep{index: i, inArray: true})
		if err := c.value(depth); err != nil {
			return err
		}
		c.path = c.path[:len(c.path)-1]
		c.skipSpace()
		c.pos++ // , or ]
		if c.body[c.pos-1] == ']' {
			return nil
		}
	}
}

// string checks the string at c.pos for lone surrogates and returns it decoded when decode
// is set (member names, to find repeats however they are escaped).
func (c *jsonChecker) string(decode bool) (string, error) {
	start := c.pos
	c.pos++ // "
	escaped := false
	for {
		switch c.body[c.pos] {
		case '"':
			c.pos++
			if !decode {
				return "", nil
			}
			raw := c.body[start:c.pos]
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", c.fail(start, "has a string that cannot be read")
			}
			return s, nil
		case '\\':
			escaped = true
			if c.body[c.pos+1] != 'u' {
				c.pos += 2
				continue
			}
			if err := c.unicodeEscape(); err != nil {
				return "", err
			}
		default:
			c.pos++
		}
	}
}

// unicodeEscape checks the \uXXXX escape at c.pos, with the low surrogate that must follow
// a high one, and moves past them.
func (c *jsonChecker) unicodeEscape() error {
	start := c.pos
	r := c.hex4(c.pos + 2)
	c.pos += 6
	if !utf16.IsSurrogate(r) {
		return nil
	}
	if r < 0xDC00 && c.pos+6 <= len(c.body) && c.body[c.pos] == '\\' && c.body[c.pos+1] == 'u' {
		if low := c.hex4(c.pos + 2); low >= 0xDC00 && low <= 0xDFFF {
			c.pos += 6
			return nil
		}
	}
	return c.fail(start, "has an escaped lone surrogate (%s) in a string", c.body[start:start+6])
}

// hex4 reads the four hex digits at i; a valid text has them.
func (c *jsonChecker) hex4(i int) rune {
	n, err := strconv.ParseUint(string(c.body[i:i+4]), 16, 32)
	if err != nil {
		return -1
	}
	return rune(n)
}

// number refuses a number that float64 cannot hold, for which strconv reports ErrRange
// with an infinity, naming its JSON pointer. A number that underflows to zero is left
// alone here; an event's data refuses it, and any number a double changes, when the
// delivery service writes the envelope in canonical form (jsoncanon).
func (c *jsonChecker) number() error {
	start := c.pos
	for c.pos < len(c.body) && isNumberByte(c.body[c.pos]) {
		c.pos++
	}
	text := string(c.body[start:c.pos])
	if f, err := strconv.ParseFloat(text, 64); err != nil && f != 0 {
		e := c.fail(start, "has a number that does not fit a 64-bit float")
		e.Fields = []FieldError{numberField(c.pointer(), text, string(jsoncanon.AppendNumber(nil, f)))}
		return e
	}
	return nil
}

// pointer is the JSON pointer (RFC 6901) of the value being checked.
func (c *jsonChecker) pointer() string {
	var b strings.Builder
	for _, step := range c.path {
		b.WriteByte('/')
		if step.inArray {
			b.WriteString(strconv.Itoa(step.index))
			continue
		}
		b.WriteString(pointerEscaper.Replace(step.name))
	}
	return b.String()
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// numberField names a number that a 64-bit float does not hold, by its JSON pointer,
// with what JavaScript and most JSON parsers read instead.
func numberField(pointer, number, read string) FieldError {
	pointer = truncate(pointer, 256)
	return FieldError{Field: strings.TrimPrefix(pointer, "/"),
		Message: fmt.Sprintf("is %s, which a 64-bit float does not hold: JavaScript reads %s (JSON pointer %s)", truncate(number, 64), read, pointer)}
}

func isNumberByte(b byte) bool {
	return b >= '0' && b <= '9' || b == '-' || b == '+' || b == '.' || b == 'e' || b == 'E'
}
