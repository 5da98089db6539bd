package client

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGenerated runs the generator as go generate does, into a temporary directory, and
// fails when its output differs from the committed client.gen.go: the document changed
// and nobody ran `go generate ./client`, or someone edited the generated file by hand.
func TestGenerated(t *testing.T) {
	t.Parallel()
	config, err := filepath.Abs("oapi-codegen.yaml")
	require.NoError(t, err)
	document, err := filepath.Abs(filepath.Join("..", "api", "openapi.json"))
	require.NoError(t, err)

	// go tool -n builds the tool once (the build cache keeps it) and names the binary,
	// which then runs outside the module: the configuration's output, client.gen.go, is
	// relative to the working directory.
	out, err := exec.Command("go", "tool", "-n", "oapi-codegen").Output()
	require.NoError(t, err, "go tool -n oapi-codegen")
	generator := strings.TrimSpace(string(out))

	dir := t.TempDir()
	cmd := exec.Command(generator, "-config", config, document)
	cmd.Dir = dir
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "oapi-codegen: %s", output)

	want, err := os.ReadFile(filepath.Join(dir, "client.gen.go"))
	require.NoError(t, err)
	got, err := os.ReadFile("client.gen.go")
	require.NoError(t, err)
	if !bytes.Equal(want, got) {
		t.Fatal("client.gen.go is not what api/openapi.json generates: run `go generate ./client` and commit the result")
	}
}
