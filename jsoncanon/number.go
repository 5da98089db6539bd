package jsoncanon

import (
	"bytes"
	"math"
	"strconv"
)

// number appends the JSON number at w.pos as JavaScript prints the double it reads, or
// refuses it when that double is another value than the text says.
func (w *writer) number(out []byte) ([]byte, error) {
	start := w.pos
	if err := w.scanNumber(); err != nil {
		return out, err
	}
	text := w.in[start:w.pos]
	neg, digits, point := w.decimal(text)
	if len(digits) == 0 {
		return append(out, '0'), nil // -0 too, as JavaScript prints it
	}
	if len(digits) <= 15 && point >= -306 && point <= 308 {
		// Between the smallest and largest normal doubles, a decimal of at most 15
		// significant digits reads as a double whose shortest form is that decimal
		// (DBL_DIG), so it needs no conversion.
		return appendECMAScript(out, neg, digits, point), nil
	}
	f, _ := strconv.ParseFloat(string(text), 64) // an underflow reads as ±0 with ErrRange
	if math.IsInf(f, 0) {
		read := "Infinity"
		if neg {
			read = "-Infinity"
		}
		return w.refuse(out, text, read), nil
	}
	var buf [32]byte
	read, readPoint := shortest(strconv.AppendFloat(buf[:0], math.Abs(f), 'e', -1, 64))
	if f == 0 || readPoint != point || !bytes.Equal(read, digits) {
		return w.refuse(out, text, string(AppendNumber(nil, f))), nil
	}
	return appendECMAScript(out, neg, digits, point), nil
}

// refuse notes the first number that JavaScript reads as another value, read. The text is
// read on to its end, so that a text that is no JSON is a SyntaxError wherever it breaks.
func (w *writer) refuse(out, text []byte, read string) []byte {
	if w.refused == nil {
		w.refused = &NumberError{Pointer: w.pointer(out), Number: string(text), Read: read}
	}
	return append(out, '0')
}

// scanNumber moves past the JSON number at w.pos:
// -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (w *writer) scanNumber() error {
	in := w.in
	if in[w.pos] == '-' {
		w.pos++
	}
	switch {
	case w.pos < len(in) && in[w.pos] == '0':
		w.pos++
	case w.pos < len(in) && in[w.pos] >= '1' && in[w.pos] <= '9':
		w.skipDigits()
	default:
		return w.fail("invalid number")
	}
	if w.pos < len(in) && in[w.pos] == '.' {
		w.pos++
		if !w.skipDigits() {
			return w.fail("invalid number")
		}
	}
	if w.pos < len(in) && (in[w.pos] == 'e' || in[w.pos] == 'E') {
		w.pos++
		if w.pos < len(in) && (in[w.pos] == '+' || in[w.pos] == '-') {
			w.pos++
		}
		if !w.skipDigits() {
			return w.fail("invalid number")
		}
	}
	return nil
}

// skipDigits moves past digits and reports whether there was one.
func (w *writer) skipDigits() bool {
	start := w.pos
	for w.pos < len(w.in) && w.in[w.pos] >= '0' && w.in[w.pos] <= '9' {
		w.pos++
	}
	return w.pos > start
}

// decimal reads a scanned JSON number as the decimal value 0.digits × 10^point: digits
// are its significant digits (none for zero), without leading or trailing zeros. digits
// is scratch space of w.
func (w *writer) decimal(text []byte) (neg bool, digits []byte, point int) {
	if text[0] == '-' {
		neg = true
		text = text[1:]
	}
	exp := 0
	d := w.digits[:0]
	intLen := -1
	for i, c := range text {
		switch c {
		case '.':
			intLen = i
			continue
		case 'e', 'E':
			exp = exponent(text[i+1:])
			text = text[:i]
		default:
			d = append(d, c)
			continue
		}
		break
	}
	if intLen < 0 {
		intLen = len(text)
	}
	w.digits = d
	lead := 0
	for lead < len(d) && d[lead] == '0' {
		lead++
	}
	if lead == len(d) {
		return neg, nil, 0
	}
	end := len(d)
	for d[end-1] == '0' {
		end--
	}
	return neg, d[lead:end], intLen - lead + exp
}

// exponent reads an exponent's digits with their sign. Past a billion it stops growing:
// that is far beyond any double's, and keeps point from overflowing.
func exponent(b []byte) int {
	neg := false
	switch b[0] {
	case '-':
		neg = true
		b = b[1:]
	case '+':
		b = b[1:]
	}
	e := 0
	for _, c := range b {
		if e < 1e9 {
			e = e*10 + int(c-'0')
		}
	}
	if neg {
		return -e
	}
	return e
}

// shortest splits strconv's shortest 'e' form of a non-negative double ("d.ddde±x", in
// a buffer it may change) into its significant digits and the position of the decimal
// point: the value is 0.digits × 10^point.
func shortest(e []byte) (digits []byte, point int) {
	i := bytes.IndexByte(e, 'e')
	exp, _ := strconv.Atoi(string(e[i+1:]))
	mantissa := e[:i]
	if len(mantissa) > 1 {
		// Drop the '.' by moving the first digit next to the others.
		mantissa[1] = mantissa[0]
		mantissa = mantissa[1:]
	}
	return mantissa, exp + 1
}

// AppendNumber appends f as ECMAScript's Number::toString (radix 10) prints it: the
// shortest digits that read back as f, in plain notation from 1e-6 up to 1e21 and in
// exponent notation (1e+21, 1.5e-7) outside; -0 prints as 0. NaN and the infinities
// print as JavaScript prints them, though JSON.stringify writes them as null.
func AppendNumber(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	case f == 0:
		return append(dst, '0')
	}
	var buf [32]byte
	digits, point := shortest(strconv.AppendFloat(buf[:0], math.Abs(f), 'e', -1, 64))
	return appendECMAScript(dst, f < 0, digits, point)
}

// appendECMAScript writes the non-zero number 0.digits × 10^n, negated when neg, as
// Number::toString does (ECMA-262, Number::toString, with k digits): k ≤ n ≤ 21 gives
// the digits and n-k zeros, 0 < n ≤ 21 a point inside the digits, -6 < n ≤ 0 "0." and
// -n zeros before them, and anything else exponent notation.
func appendECMAScript(dst []byte, neg bool, digits []byte, n int) []byte {
	if neg {
		dst = append(dst, '-')
	}
	k := len(digits)
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
