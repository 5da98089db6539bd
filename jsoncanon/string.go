package jsoncanon

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// plain marks the bytes a JSON string holds as they are and JSON.stringify writes as they
// are: everything but '"', '\\' and the control characters. Bytes of multi-byte UTF-8
// sequences are plain; the text was checked to be valid UTF-8 as a whole.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// string appends the JSON string at w.pos as JSON.stringify writes the string JSON.parse
// reads from it. Runs of plain bytes are copied as they are, found eight bytes at a time.
func (w *writer) string(out []byte) ([]byte, error) {
	in, pos := w.in, w.pos+1
	out = append(out, '"')
	for {
		start := pos
		for pos+8 <= len(in) && !special8(binary.LittleEndian.Uint64(in[pos:])) {
			pos += 8
		}
		for pos < len(in) && plain[in[pos]] {
			pos++
		}
		out = append(out, in[start:pos]...)
		w.pos = pos
		if pos == len(in) {
			return out, w.fail("unterminated string")
		}
		switch in[pos] {
		case '"':
			w.pos++
			return append(out, '"'), nil
		case '\\':
			var err error
			if out, err = w.escape(out); err != nil {
				return out, err
			}
			pos = w.pos
		default:
			return out, w.fail("control character in a string")
		}
	}
}

// special8 reports whether one of the eight bytes of x is not plain: a control
// character, '"' or '\\'. Each test is the classic "has a byte less than n" (or "has a
// zero byte" of x XOR the byte sought), exact about whether there is one.
func special8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	control := (x - ones*0x20) &^ x & highs
	q := x ^ ones*'"'
	quote := (q - ones) &^ q & highs
	b := x ^ ones*'\\'
	backslash := (b - ones) &^ b & highs
	return control|quote|backslash != 0
}

// escape reads the escape at w.pos and appends the character it stands for.
func (w *writer) escape(out []byte) ([]byte, error) {
	if w.pos+1 >= len(w.in) {
		return out, w.fail("unterminated string")
	}
	c := w.in[w.pos+1]
	w.pos += 2
	switch c {
	case '"', '\\':
		return append(out, '\\', c), nil
	case '/':
		return append(out, '/'), nil
	case 'b', 'f', 'n', 'r', 't':
		return append(out, '\\', c), nil
	case 'u':
	default:
		w.pos -= 2
		return out, w.fail("invalid escape")
	}
	u, ok := hex4(w.in, w.pos)
	if !ok {
		w.pos -= 2
		return out, w.fail("invalid \\u escape")
	}
	w.pos += 4
	if utf16.IsSurrogate(u) && u < 0xDC00 {
		// A high surrogate makes a character with the low surrogate escaped right after
		// it; alone, it stays a lone surrogate, as in JavaScript.
		if w.pos+6 <= len(w.in) && w.in[w.pos] == '\\' && w.in[w.pos+1] == 'u' {
			if low, ok := hex4(w.in, w.pos+2); ok && low >= 0xDC00 && low <= 0xDFFF {
				w.pos += 6
				return utf8.AppendRune(out, utf16.DecodeRune(u, low)), nil
			}
		}
	}
	return appendUnit(out, u), nil
}

// appendUnit appends one UTF-16 code unit that is a character or a lone surrogate as
// JSON.stringify writes it.
func appendUnit(out []byte, u rune) []byte {
	switch {
	case u == '"' || u == '\\':
		return append(out, '\\', byte(u))
	case u == '\b':
		return append(out, '\\', 'b')
	case u == '\f':
		return append(out, '\\', 'f')
	case u == '\n':
		return append(out, '\\', 'n')
	case u == '\r':
		return append(out, '\\', 'r')
	case u == '\t':
		return append(out, '\\', 't')
	case u < 0x20 || utf16.IsSurrogate(u):
		return append(out, '\\', 'u', hexDigits[u>>12], hexDigits[u>>8&0xF], hexDigits[u>>4&0xF], hexDigits[u&0xF])
	}
	return utf8.AppendRune(out, u)
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// decodeString reads a string as Canonical writes it, quotes included, for error
// messages; a lone surrogate becomes U+FFFD.
func decodeString(s []byte) []rune {
	var rs []rune
	s = s[1 : len(s)-1]
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			r, size := utf8.DecodeRune(s[i:])
			rs = append(rs, r)
			i += size
			continue
		}
		switch c := s[i+1]; c {
		case 'b':
			rs = append(rs, '\b')
		case 'f':
			rs = append(rs, '\f')
		case 'n':
			rs = append(rs, '\n')
		case 'r':
			rs = append(rs, '\r')
		case 't':
			rs = append(rs, '\t')
		case 'u':
			u, _ := hex4(s, i+2)
			if utf16.IsSurrogate(u) {
				u = utf8.RuneError
			}
			rs = append(rs, u)
			i += 4
		default:
			rs = append(rs, rune(c))
		}
		i += 2
	}
	return rs
}
