// Package jsoncanontest runs Node.js as the oracle of the canonical form: what
// JSON.stringify(JSON.parse(text)) returns for a text, computed by one long-running node
// process fed a batch of texts at a time.
package jsoncanontest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// script answers each line of base64 input with a line: "=" and the base64 UTF-8 bytes of
// JSON.stringify(JSON.parse(text)), or "!" and the name of the error JSON.parse or
// JSON.stringify threw (SyntaxError; RangeError when nesting exhausts the stack). The text
// is decoded from UTF-8 as an HTTP body would be (bad bytes become U+FFFD). Answers to the
// lines of one chunk of input are written at once.
const script = `
let rest = '';
process.stdin.on('data', (chunk) => {
  const lines = (rest + chunk.toString('latin1')).split('\n');
  rest = lines.pop();
  const out = [];
  for (const line of lines) {
    try {
      const text = Buffer.from(line, 'base64').toString('utf8');
      out.push('=' + Buffer.from(JSON.stringify(JSON.parse(text)), 'utf8').toString('base64'));
    } catch (e) {
      out.push('!' + (e && e.name || 'Error'));
    }
  }
  if (out.length > 0) process.stdout.write(out.join('\n') + '\n');
});
`

// Result is what JavaScript made of one text.
type Result struct {
	// Out is JSON.stringify(JSON.parse(text)) as UTF-8, when Err is "".
	Out []byte
	// Err names the error thrown: "SyntaxError", "RangeError".
	Err string
}

// Node is a running node process answering batches of texts.
type Node struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// Start starts node for the test, or skips the test when node is not installed; on CI
// (CI=true) a missing node fails it instead. The process ends with the test.
func Start(t testing.TB) *Node {
	t.Helper()
	path, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node is not installed: the canonical form is checked against Node.js on CI (.ci/run installs nodejs)")
		}
		t.Skip("node is not installed: cannot check the canonical form against JSON.stringify(JSON.parse(...)); install Node.js to run this test")
	}
	cmd := exec.Command(path, "-e", script)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	n := &Node{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<16)}
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Wait()
	})
	return n
}

// Stringify returns JSON.stringify(JSON.parse(text)) for each text, in one round trip.
func (n *Node) Stringify(texts ...[]byte) ([]Result, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// Written while the answers are read: node answers as it reads, and a pipe full of
	// unread answers would stop it reading.
	written := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(n.in, 1<<16)
		for _, text := range texts {
			if _, err := w.WriteString(base64.StdEncoding.EncodeToString(text) + "\n"); err != nil {
				written <- err
				return
			}
		}
		written <- w.Flush()
	}()
	results := make([]Result, len(texts))
	for i := range results {
		line, err := n.out.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("read node's answer %d of %d: %w", i+1, len(texts), err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "="):
			out, err := base64.StdEncoding.DecodeString(line[1:])
			if err != nil {
				return nil, fmt.Errorf("decode node's answer %q: %w", line, err)
			}
			results[i] = Result{Out: out}
		case strings.HasPrefix(line, "!"):
			results[i] = Result{Err: line[1:]}
		default:
			return nil, fmt.Errorf("node answered %q", line)
		}
	}
	if err := <-written; err != nil {
		return nil, fmt.Errorf("write to node: %w", err)
	}
	return results, nil
}

// MustStringify is Stringify that fails the test on an error of the node process, and
// on a text JavaScript cannot read.
func (n *Node) MustStringify(t testing.TB, texts ...string) []string {
	t.Helper()
	raw := make([][]byte, len(texts))
	for i, s := range texts {
		raw[i] = []byte(s)
	}
	results, err := n.Stringify(raw...)
	if err != nil {
		t.Fatal(err)
	}
	outs := make([]string, len(results))
	for i, r := range results {
		if r.Err != "" {
			t.Fatalf("JSON.parse/JSON.stringify threw %s for %q", r.Err, texts[i])
		}
		outs[i] = string(r.Out)
	}
	return outs
}
