package jsoncanon_test

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/jsoncanon"
	"github.com/surveyhooks/surveyhooks/jsoncanon/jsoncanontest"
)

// FuzzCanonical checks Canonical against Node.js: for the fuzz input itself and for the
// JSON values generated from it, Canonical returns JSON.stringify(JSON.parse(text)), or
// refuses what JSON.parse refuses, or refuses a number whose double JavaScript reads as
// another value. Each input costs one round trip to one node process.
func FuzzCanonical(f *testing.F) {
	for _, seed := range []string{
		`{"b":1,"a":[1.0,1e3,-0,1E-7,0.1],"2":"<b>&é</b>","1":"\u00e9\u2028😀\ud83d\ude00"}`,
		`{"a":1,"b":2,"a":3,"4294967295":0,"4294967294":1,"01":2}`,
		`["\ud800","\udc00\ud800","\u0000\u001f\u007f","\"\\\/\b\f\n\r\t"]`,
		`[1e21,1e-7,1e-6,123e-20,5e-324,1.7976931348623157e308,100000000000000000000]`,
		`[9007199254740993,1.00000000000000001,1e400,-1e-400]`,
		" \t\n{ \"a\" : [ true , false , null ] } \r\n",
		`{"a":`, `[1,]`, `01`, `"\u12"`, "\"\xff\"", "\ufeff{}",
		"\x05\x13\x27\x3a\x41\x59\x6b\x7e\x82\x90\xa4\xb3\xc5\xd7\xe9\xf1",
		"\x06\x05\x04\x03\x02\x01\x16\x26\x36\x46\x56\x66\x76\x86\x96\xa6\xb6\xc6\xd6\xe6\xf6",
		"\x0e\x2e\x4e\x6e\x8e\xae\xce\xee\x1e\x3e\x5e\x7e\x9e\xbe\xde\xfe",
	} {
		f.Add([]byte(seed))
	}
	node := jsoncanontest.Start(f)

	f.Fuzz(func(t *testing.T, input []byte) {
		texts := append([][]byte{input}, generate(input, 8)...)
		results, err := node.Stringify(texts...)
		require.NoError(t, err)
		for i, text := range texts {
			checkAgainstNode(t, node, text, results[i])
		}
	})
}

// checkAgainstNode compares Canonical(text) with what node made of text.
func checkAgainstNode(t *testing.T, node *jsoncanontest.Node, text []byte, js jsoncanontest.Result) {
	t.Helper()
	got, err := jsoncanon.Canonical(text)
	var syntaxErr *jsoncanon.SyntaxError
	var numErr *jsoncanon.NumberError
	switch {
	case !utf8.Valid(text):
		// node reads bad bytes as U+FFFD; Canonical refuses them.
		require.ErrorAs(t, err, &syntaxErr, "%q", text)
	case js.Err == "RangeError":
		// Nested too deeply for JavaScript's stack: nothing to compare with.
	case js.Err != "":
		require.Equal(t, "SyntaxError", js.Err, "%q", text)
		require.ErrorAs(t, err, &syntaxErr, "JSON.parse refuses %q", text)
	case errors.As(err, &numErr):
		checkRefusedNumber(t, node, numErr)
	default:
		require.NoError(t, err, "JSON.parse reads %q", text)
		require.Equal(t, string(js.Out), string(got), "%q", text)
		again, err := jsoncanon.Canonical(got)
		require.NoError(t, err)
		require.Equal(t, string(got), string(again), "the canonical form is its own canonical form")
	}
}

// checkRefusedNumber checks a refusal: JavaScript reads the number as Read, and that is
// another decimal value than the number's text.
func checkRefusedNumber(t *testing.T, node *jsoncanontest.Node, e *jsoncanon.NumberError) {
	t.Helper()
	read := node.MustStringify(t, e.Number)[0]
	if read == "null" { // JSON.stringify writes an infinity as null
		require.Contains(t, []string{"Infinity", "-Infinity"}, e.Read, e.Number)
		return
	}
	require.Equal(t, read, e.Read, e.Number)
	if exp := decimalExponent(e.Number); exp > 1000 || exp < -1000 {
		require.Equal(t, "0", read, "a number this far from 1 reads as 0 or Infinity: %s", e.Number)
		return
	}
	sent, ok := new(big.Rat).SetString(e.Number)
	require.True(t, ok, e.Number)
	got, ok := new(big.Rat).SetString(read)
	require.True(t, ok, read)
	require.NotZero(t, sent.Cmp(got), "%s is refused, yet JavaScript reads it as %s", e.Number, read)
}

// decimalExponent is the exponent part of a number's text, or 0.
func decimalExponent(number string) int {
	i := strings.IndexAny(number, "eE")
	if i < 0 {
		return 0
	}
	e, err := strconv.Atoi(number[i+1:])
	if err != nil {
		return math.MaxInt32 // too many digits: far beyond any double
	}
	return e
}

// generate makes up to n JSON texts out of the bytes of input, each byte choosing the next
// step, so that the fuzzer's mutations change the values' shapes, strings and numbers.
func generate(input []byte, n int) [][]byte {
	g := &gen{data: input}
	var texts [][]byte
	for len(texts) < n && g.i < len(g.data) {
		g.out = nil
		g.value(0)
		texts = append(texts, g.out)
	}
	return texts
}

type gen struct {
	data []byte
	i    int
	out  []byte
}

// next returns the next byte of the input, 0 once it is used up: every value then ends.
func (g *gen) next() byte {
	if g.i >= len(g.data) {
		return 0
	}
	b := g.data[g.i]
	g.i++
	return b
}

func (g *gen) space() {
	if b := g.next(); b >= 0xF0 {
		g.out = append(g.out, " \t\n\r"[b&3])
	}
}

const maxGenDepth = 8

func (g *gen) value(depth int) {
	g.space()
	b := g.next()
	kind := b & 7
	if depth >= maxGenDepth && kind >= 5 {
		kind = 0
	}
	switch kind {
	case 0:
		g.out = append(g.out, [...]string{"null", "true", "false", "null"}[b>>3&3]...)
	case 1, 2:
		g.number()
	case 3, 4:
		g.string(false)
	case 5, 6:
		g.out = append(g.out, '{')
		for i := range int(b>>3) % 6 {
			if i > 0 {
				g.out = append(g.out, ',')
			}
			g.space()
			g.string(true)
			g.space()
			g.out = append(g.out, ':')
			g.value(depth + 1)
		}
		g.space()
		g.out = append(g.out, '}')
	case 7:
		g.out = append(g.out, '[')
		for i := range int(b>>3) % 6 {
			if i > 0 {
				g.out = append(g.out, ',')
			}
			g.value(depth + 1)
		}
		g.space()
		g.out = append(g.out, ']')
	}
	g.space()
}

// specialNumbers are at JavaScript's notation thresholds, the edges of double, or past
// what a double holds.
var specialNumbers = []string{
	"1e21", "1e+21", "999999999999999999999", "1e20", "1e-7", "1e-6", "0.000001", "0.0000001", "-0", "-0.0", "0e-5",
	"9007199254740993", "9007199254740992", "1.00000000000000001", "1e400", "-1e400", "1e-400", "-1e-400",
	"5e-324", "2.4703282292062328e-324", "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
	"2.2250738585072014e-308", "2.2250738585072011e-308", "0.1", "1E3", "1e+0", "100000000000000000000", "123456789012345680000",
}

func (g *gen) number() {
	b := g.next()
	switch b & 7 {
	case 0:
		g.out = strconv.AppendInt(g.out, int64(int8(g.next())), 10)
	case 1:
		g.out = append(g.out, specialNumbers[int(g.next())%len(specialNumbers)]...)
	case 2, 3:
		var bits uint64
		for range 8 {
			bits = bits<<8 | uint64(g.next())
		}
		f := math.Float64frombits(bits)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			f = float64(bits >> 12)
		}
		g.spell(f, b>>3)
	case 4, 5, 6:
		mantissa := int64(int16(uint16(g.next())<<8 | uint16(g.next())))
		f := float64(mantissa) * math.Pow10(int(g.next()%60)-30)
		g.spell(f, b>>3)
	case 7:
		g.out = strconv.AppendUint(g.out, uint64(g.next())<<24|uint64(g.next())<<16|uint64(g.next())<<8|uint64(g.next()), 10)
	}
}

// spell writes the double f in one of the spellings of its shortest decimal that all mean
// the same value: plain or exponent notation, E or e, a '+' or leading zeros in the
// exponent, trailing zeros, the point moved with the exponent.
func (g *gen) spell(f float64, how byte) {
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±xx
	neg := strings.HasPrefix(e, "-")
	e = strings.TrimPrefix(e, "-")
	mantissa, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mantissa, ".", "", 1)
	if neg {
		g.out = append(g.out, '-')
	}
	switch how & 3 {
	case 0:
		g.out = append(g.out, strconv.FormatFloat(math.Abs(f), 'g', -1, 64)...)
		return
	case 1:
		if math.Abs(float64(exp)) < 40 {
			g.out = append(g.out, strconv.FormatFloat(math.Abs(f), 'f', -1, 64)...)
			return
		}
	case 2:
		// 0.digits000 e(exp+1), with the exponent's sign and zeros varied.
		g.out = append(g.out, "0."+digits+strings.Repeat("0", int(how>>2&3))...)
		exp++
	}
	if how&3 == 3 {
		// digits as an integer: digits e(exp - len(digits) + 1).
		g.out = append(g.out, digits...)
		exp -= len(digits) - 1
	} else if how&3 != 2 {
		g.out = append(g.out, mantissa...)
	}
	g.out = append(g.out, "eE"[how>>4&1])
	switch {
	case exp >= 0 && how&0x20 != 0:
		g.out = append(g.out, '+')
	case exp < 0:
		g.out = append(g.out, '-')
		exp = -exp
	}
	g.out = fmt.Appendf(g.out, "%0*d", 1+int(how>>6&1), exp)
}

// keys are member names JavaScript orders first (array indices) and names it does not.
var keys = []string{"0", "1", "2", "9", "10", "42", "4294967294", "4294967295", "4294967296", "01", "-1", "1.0", "+1",
	"a", "b", "é", "__proto__", "", "\\u0031", "\\u0061", "a\\u0000"}

// pieces are the characters of generated strings, each as it is sent: raw or escaped in
// one of the ways JSON allows.
var pieces = []string{
	"a", "Z", "0", " ", "<", ">", "&", "'", "~", "\x7f",
	`\"`, `\u0022`, `\\`, `\u005C`, "/", `\/`, `\u002f`,
	`\b`, `\f`, `\n`, `\r`, `\t`, `\u0000`, `\u0001`, `\u001F`, `\u001f`, `\u0008`, `\u000B`,
	"é", `\u00e9`, `\u00E9`, "\u2028", "\u2029", `\u2028`, `\u2029`, "😀", `\ud83d\ude00`, `\uD83D\uDE00`,
	`\ud800`, `\udbff`, `\udc00`, `\uDFFF`, `\ud83d\ud83d`, `\ude00\ud83d`, "\ufeff", `\uFEFF`, "\uffff", `\uffff`, "中", `\u4e2d`,
}

func (g *gen) string(key bool) {
	g.out = append(g.out, '"')
	b := g.next()
	if key && b&3 != 0 {
		g.out = append(g.out, keys[int(b>>2)%len(keys)]...)
		g.out = append(g.out, '"')
		return
	}
	for range int(b>>2) % 12 {
		c := g.next()
		if c >= 0xF0 {
			// Any UTF-16 code unit, escaped.
			g.out = fmt.Appendf(g.out, `\u%04x`, uint16(c&0xF)<<12|uint16(g.next())<<4|uint16(g.next()&0xF))
			continue
		}
		g.out = append(g.out, pieces[int(c)%len(pieces)]...)
	}
	g.out = append(g.out, '"')
}
