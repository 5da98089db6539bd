package signature_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReceiversDocInSync checks that docs/receivers.md shows exactly the code
// that the other tests run, so the documentation cannot drift from it.
func TestReceiversDocInSync(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/receivers.md")
	require.NoError(t, err)

	for file, lang := range map[string]string{
		"testdata/verify.js":  "js",
		"testdata/verify.py":  "python",
		"testdata/verify.php": "php",
		"testdata/verify.rb":  "ruby",
		// The ed25519 verifier of the "Ed25519" section.
		"testdata/verify_ed25519.js": "js",
	} {
		code, err := os.ReadFile(file)
		require.NoError(t, err)
		require.Contains(t, string(doc), "```"+lang+"\n"+string(code)+"```", "docs/receivers.md must show %s verbatim", file)
	}

	src, err := os.ReadFile("stdlib_test.go")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(src), "// receivers.md:begin\n")
	require.True(t, ok)
	snippet, _, ok := strings.Cut(rest, "// receivers.md:end")
	require.True(t, ok)
	require.Contains(t, string(doc), "```go\n"+strings.TrimSpace(snippet)+"\n```", "docs/receivers.md must show the stdlib verifier of stdlib_test.go verbatim")

	src, err = os.ReadFile("ed25519_stdlib_test.go")
	require.NoError(t, err)
	_, rest, ok = strings.Cut(string(src), "// receivers.md:ed25519:begin\n")
	require.True(t, ok)
	snippet, _, ok = strings.Cut(rest, "// receivers.md:ed25519:end")
	require.True(t, ok)
	require.Contains(t, string(doc), "```go\n"+strings.TrimSpace(snippet)+"\n```", "docs/receivers.md must show the ed25519 verifier of ed25519_stdlib_test.go verbatim")
}
