package jsoncanon_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/jsoncanon"
	"github.com/surveyhooks/surveyhooks/jsoncanon/jsoncanontest"
)

// TestCanonicalIsWhatJavaScriptWritesBack checks the tricky cases against Node.js: every
// expected value is JSON.stringify(JSON.parse(text)) as node computes it.
func TestCanonicalIsWhatJavaScriptWritesBack(t *testing.T) {
	t.Parallel()
	node := jsoncanontest.Start(t)
	for _, group := range []struct {
		name  string
		texts []string
	}{
		{"strings", []string{
			`"<b>Tom & Jerry</b> > 3"`,
			`"\u003cb\u003e \u0026 \u003e"`,
			`"Café"`, `"Caf\u00e9"`, `"Caf\u00E9"`,
			`"😀"`, `"\ud83d\ude00"`, `"\uD83D\uDE00"`,
			"\"\u2028\u2029\"", `"\u2028\u2029"`,
			`"\ud800"`, `"\udfff"`, `"\uDBFF"`, `"\udc00\ud800"`, `"\ud83d\ud83d\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\n"`,
			`"\\ud800"`, `"\\\ud800"`,
			`"\u0000\u0001\u001f\u007f\u0080\u00ff"`, `"\b\f\n\r\t"`, `"\u0008\u000c\u000a\u000d\u0009"`,
			`"\"\\\/"`, `"\u0022\u005c\u002f"`, `"/"`,
			`"\ufeff\uffff\ufffe"`, "\"\uFEFF\uFFFF\"",
			`""`,
		}},
		{"numbers", []string{
			`0`, `-0`, `-0.0`, `0e5`, `-0E-5`, `0.0000`,
			`1.0`, `1.50`, `1e3`, `1E3`, `1e+3`, `1e-3`, `1E-7`, `1e-7`, `1e-6`, `0.000001`, `0.0000001`, `123e-20`,
			`1e20`, `1e21`, `1e+21`, `100000000000000000000`, `123456789012345680000`, `1.5e300`, `-1.5e-300`,
			`0.1`, `0.2`, `0.3`, `3.14159`, `-2.5`, `1234567.890`,
			`9007199254740992`, `9007199254740991`, `-9007199254740991`, `2251799813685248.5`,
			`5e-324`, `2.2250738585072014e-308`, `2.225073858507201e-308`, `1.7976931348623157e308`, `1.7976931348623157E+308`,
			`1e-307`, `1e308`, `123456789012345`, `1234567890123456`, `0.1234567890123456`,
			`[1,-1,10,-10,1e1,10e-1]`,
		}},
		{"member order", []string{
			`{"b":1,"a":2,"2":3,"1":4,"0":5}`,
			`{"10":1,"9":2,"1":3}`,
			`{"01":1,"1":2,"-1":3,"1.0":4,"+1":5," 1":6,"1e0":7}`,
			`{"4294967295":1,"4294967294":2,"4294967296":3,"0":4}`,
			`{"99999999999":1,"5":2}`,
			`{"a":1,"b":2,"a":3}`,
			`{"a":1,"\u0061":2,"b":3}`,
			`{"2":1,"1":2,"2":3}`,
			`{"x":{"3":1,"1":{"b":1,"0":2}},"0":[{"c":1,"c":2}],"y":{}}`,
			`{"__proto__":1,"constructor":2,"length":3}`,
			`{"":1,"0":2}`,
			`{"é":1,"e":2,"😀":3,"\ud800":4}`,
		}},
		{"whitespace and nesting", []string{
			" \t\r\n{ \"a\" : [ 1 , true , false , null , { } , [ ] ] } \n",
			`[[[[[[[[[[{"a":[[[{}]]]}]]]]]]]]]]`,
			`true`, `null`, `[]`, `{}`,
		}},
	} {
		t.Run(group.name, func(t *testing.T) {
			want := node.MustStringify(t, group.texts...)
			for i, text := range group.texts {
				got, err := jsoncanon.Canonical([]byte(text))
				require.NoError(t, err, text)
				require.Equal(t, want[i], string(got), text)
			}
		})
	}
}

// TestNumbersThatChangeAreRefused: a number whose double is another value than its text
// says is refused with its JSON pointer; numbers a double holds are not.
func TestNumbersThatChangeAreRefused(t *testing.T) {
	t.Parallel()
	node := jsoncanontest.Start(t)
	for _, tc := range []struct {
		text, pointer, number string
	}{
		{`{"data":{"answers":[{},{},{},{"value":9007199254740993}]}}`, "/data/answers/3/value", "9007199254740993"},
		{`{"n":1.00000000000000001}`, "/n", "1.00000000000000001"},
		{`{"n":1e400}`, "/n", "1e400"},
		{`{"n":-1e400}`, "/n", "-1e400"},
		{`{"n":1e-400}`, "/n", "1e-400"},
		{`{"n":-1e-400}`, "/n", "-1e-400"},
		{`{"n":4.9406564584124654e-324}`, "/n", "4.9406564584124654e-324"},
		{`{"n":0.1000000000000000055511151231257827}`, "/n", "0.1000000000000000055511151231257827"},
		{`{"n":123456789012345678901234567890}`, "/n", "123456789012345678901234567890"},
		{`{"n":1e99999999999999999999}`, "/n", "1e99999999999999999999"},
		{`{"a/b":{"~":[0,1,2.00000000000000000001]}}`, "/a~1b/~0/2", "2.00000000000000000001"},
		{`{"b":1,"5":{"x":[1e400]}}`, "/5/x/0", "1e400"},
		{`{"a":{"b":{}},"c":[{"d":{"e":[]}},{"f":1e400}]}`, "/c/1/f", "1e400"},
		{`{"k\n\"":1e400}`, "/k\n\"", "1e400"},
		{`1e400`, "", "1e400"},
	} {
		_, err := jsoncanon.Canonical([]byte(tc.text))
		var numErr *jsoncanon.NumberError
		require.ErrorAs(t, err, &numErr, tc.text)
		require.Equal(t, tc.pointer, numErr.Pointer, tc.text)
		require.Equal(t, tc.number, numErr.Number, tc.text)
		// Read is what JavaScript reads: JSON.stringify writes an infinity as null.
		read := node.MustStringify(t, tc.number)[0]
		if read == "null" {
			read = "Infinity"
			if tc.number[0] == '-' {
				read = "-Infinity"
			}
		}
		require.Equal(t, read, numErr.Read, tc.text)
		require.NotEqual(t, tc.number, numErr.Read)
	}

	// What a double holds is accepted however it is spelled.
	for _, text := range []string{`0.1`, `1.0`, `1e3`, `-0`, `1E-7`, `0e400`, `-0.0e-400`, `1.7976931348623157e308`, `5e-324`, `9007199254740992`, `0.30000000000000004`} {
		_, err := jsoncanon.Canonical([]byte(text))
		require.NoError(t, err, text)
	}
}

// TestSyntaxErrors: what JSON.parse refuses, Canonical refuses.
func TestSyntaxErrors(t *testing.T) {
	t.Parallel()
	node := jsoncanontest.Start(t)
	texts := []string{
		``, ` `, `{`, `[`, `]`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `{"a":1 "b":2}`, `[1 2]`,
		`"abc`, `"\x"`, `"\u12"`, `"\u12g4"`, `"\`, "\"a\tb\"", "\"a\nb\"", "\"\x00\"",
		`01`, `-`, `-01`, `1.`, `.1`, `1e`, `1e+`, `+1`, `0x10`, `1_000`, `NaN`, `Infinity`, `-Infinity`,
		`tru`, `nul`, `True`, `nulls`, `truex`,
		`{} {}`, `1 2`, `[] x`, `{'a':1}`, `{a:1}`, "\ufeff{}", `/* */ {}`, "{}\x00",
	}
	raw := make([][]byte, len(texts))
	for i, s := range texts {
		raw[i] = []byte(s)
	}
	results, err := node.Stringify(raw...)
	require.NoError(t, err)
	for i, text := range texts {
		require.Equal(t, "SyntaxError", results[i].Err, "JSON.parse accepts %q", text)
		_, err := jsoncanon.Canonical([]byte(text))
		var syntaxErr *jsoncanon.SyntaxError
		require.ErrorAs(t, err, &syntaxErr, "%q", text)
	}

	// Bytes that are not UTF-8 are refused, though node would read them as U+FFFD.
	for _, text := range []string{"\"\xff\"", "\"\xc3\x28\"", "\"\xed\xa0\x80\"", "{\"\xe2\x82\":1}"} {
		_, err := jsoncanon.Canonical([]byte(text))
		var syntaxErr *jsoncanon.SyntaxError
		require.ErrorAs(t, err, &syntaxErr, "%q", text)
	}
}

// TestAppendNumber prints doubles of every magnitude as JavaScript's String(x) does: node
// reads each double's shortest Go form and writes it back.
func TestAppendNumber(t *testing.T) {
	t.Parallel()
	node := jsoncanontest.Start(t)
	rng := rand.New(rand.NewPCG(1, 2))
	var fs []float64
	for _, f := range []float64{1, 10, 1e20, 1e21, 1e-6, 1e-7, 123e-9, 0.5, math.MaxFloat64, math.SmallestNonzeroFloat64,
		2.2250738585072014e-308, 1 << 53, 1<<53 + 2, 0.1 + 0.2, 1.0 / 3} {
		fs = append(fs, f, -f)
	}
	for range 5000 {
		f := math.Float64frombits(rng.Uint64())
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			fs = append(fs, f)
		}
		// Magnitudes near the notation thresholds, where most numbers are.
		fs = append(fs, (rng.Float64()+0.5)*math.Pow10(rng.IntN(50)-25))
	}
	texts := make([][]byte, len(fs))
	for i, f := range fs {
		texts[i] = strconv.AppendFloat(nil, f, 'g', -1, 64)
	}
	results, err := node.Stringify(texts...)
	require.NoError(t, err)
	for i, f := range fs {
		require.Empty(t, results[i].Err)
		require.Equal(t, string(results[i].Out), string(jsoncanon.AppendNumber(nil, f)), "%s", texts[i])
		// And Canonical writes the shortest form of a double as JavaScript does.
		got, err := jsoncanon.Canonical(texts[i])
		require.NoError(t, err, "%s", texts[i])
		require.Equal(t, string(results[i].Out), string(got), "%s", texts[i])
	}
	require.Equal(t, "0", string(jsoncanon.AppendNumber(nil, math.Copysign(0, -1))))
	require.Equal(t, "Infinity", string(jsoncanon.AppendNumber(nil, math.Inf(1))))
}

// TestAppend appends to what is there and leaves it as it was on an error.
func TestAppend(t *testing.T) {
	t.Parallel()
	dst := []byte("prefix:")
	text := []byte(` {"b":1, "0":[1.0]} `)
	canonical, err := jsoncanon.Canonical(text)
	require.NoError(t, err)
	out, err := jsoncanon.Append(dst, text)
	require.NoError(t, err)
	require.Equal(t, "prefix:"+string(canonical), string(out))

	out, err = jsoncanon.Append(dst, []byte(`{"b":1e400}`))
	require.Equal(t, "prefix:", string(out))
	var numErr *jsoncanon.NumberError
	require.True(t, errors.As(err, &numErr))
	require.Contains(t, err.Error(), "/b")
}
