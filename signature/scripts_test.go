package signature_test

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/signature"
)

// scriptRequest is one signed request handed to a verifier script.
type scriptRequest struct {
	secret string
	h      http.Header
	body   []byte
}

// runScript runs a verifier in testdata with the request's secret and
// headers as arguments, env added to the environment and the body on stdin,
// and reports whether it exited 0.
// It skips the test when the interpreter is not installed, and fails it under
// CI=true.
func runScript(t *testing.T, interpreter, script string, args []string, body []byte, env ...string) bool {
	t.Helper()
	path, err := exec.LookPath(interpreter)
	if err != nil {
		// CI installs every interpreter (.ci/run): there a missing one is a failure.
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed: cannot run testdata/%s (.ci/run installs it)", interpreter, script)
		}
		t.Skipf("%s is not installed: cannot run testdata/%s; install it to check the %s snippet of docs/receivers.md", interpreter, script, interpreter)
	}
	cmd := exec.CommandContext(t.Context(), path, append([]string{"testdata/" + script}, args...)...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		t.Logf("%s: %s", script, strings.TrimSpace(stderr.String()))
		return false
	}
	require.NoError(t, err, "%s crashed: %s", script, stderr.String())
	return true
}

// TestVerifierScripts runs the Node.js, Python, PHP and Ruby verifiers of
// docs/receivers.md against real output of Headers. Each script checks both
// schemes and exits 0 only when both verify.
func TestVerifierScripts(t *testing.T) {
	t.Parallel()
	generated, err := signature.GenerateSecret()
	require.NoError(t, err)
	const plain = "user-chosen secret with ünïcode"
	body := []byte(testBody)
	now := time.Now()
	signed := func(secrets []string, ts time.Time) http.Header {
		return signature.Headers(secrets, "msg_2b1c", ts, body)
	}
	tamper := func(h http.Header, name string) http.Header {
		c := h.Clone()
		c.Set(name, signature.Headers([]string{"not the secret"}, "msg_2b1c", now, body).Get(name))
		return c
	}
	valid := signed([]string{generated}, now)
	tests := []struct {
		name string
		req  scriptRequest
		want bool
	}{
		{"generated secret", scriptRequest{generated, valid, body}, true},
		{"user-chosen secret", scriptRequest{plain, signed([]string{plain}, now), body}, true},
		{"rotation, newest secret", scriptRequest{generated, signed([]string{generated, plain}, now), body}, true},
		{"rotation, previous secret", scriptRequest{plain, signed([]string{generated, plain}, now), body}, true},
		{"rotation, third secret", scriptRequest{"third", signed([]string{generated, plain}, now), body}, false},
		{"wrong secret", scriptRequest{plain, valid, body}, false},
		{"tampered body", scriptRequest{generated, valid, bytes.Replace(body, []byte(`"value":9`), []byte(`"value":1`), 1)}, false},
		{"tampered X-Webhook-Signature only", scriptRequest{generated, tamper(valid, signature.HeaderSignature), body}, false},
		{"tampered webhook-signature only", scriptRequest{generated, tamper(valid, signature.HeaderWebhookSignature), body}, false},
		{"stale timestamp", scriptRequest{generated, signed([]string{generated}, now.Add(-10*time.Minute)), body}, false},
		{"future timestamp", scriptRequest{generated, signed([]string{generated}, now.Add(10*time.Minute)), body}, false},
	}
	for _, s := range []struct{ interpreter, script string }{
		{"node", "verify.js"},
		{"python3", "verify.py"},
		{"php", "verify.php"},
		{"ruby", "verify.rb"},
	} {
		t.Run(s.script, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					args := []string{
						tt.req.secret,
						tt.req.h.Get(signature.HeaderSignature),
						tt.req.h.Get(signature.HeaderWebhookID),
						tt.req.h.Get(signature.HeaderWebhookTimestamp),
						tt.req.h.Get(signature.HeaderWebhookSignature),
					}
					require.Equal(t, tt.want, runScript(t, s.interpreter, s.script, args, tt.req.body))
				})
			}
		})
	}
}

// TestSeed002Snippets runs seed 002's own Node.js and Python functions,
// unchanged, against Sign's output.
func TestSeed002Snippets(t *testing.T) {
	t.Parallel()
	secret, err := signature.GenerateSecret()
	require.NoError(t, err)
	body := []byte(testBody)
	sig := signature.Sign(secret, body)
	for _, s := range []struct{ interpreter, script string }{
		{"node", "seed002_verify.js"},
		{"python3", "seed002_verify.py"},
	} {
		t.Run(s.script, func(t *testing.T) {
			t.Parallel()
			require.True(t, runScript(t, s.interpreter, s.script, []string{secret, sig}, body))
			require.False(t, runScript(t, s.interpreter, s.script, []string{secret, sig}, append([]byte{' '}, body...)))
			require.False(t, runScript(t, s.interpreter, s.script, []string{"another secret", sig}, body))
		})
	}
}

// TestSeedSnippets runs the seeds' own snippets (testdata/seed*), each
// unchanged but for the header name and where the secret comes from, against
// the profile header each needs: seed 000 and 003 compare bare hex
// (FormatHex), seed 002 "sha256=<hex>" (the default). The api package runs
// them against real deliveries.
func TestSeedSnippets(t *testing.T) {
	t.Parallel()
	generated, err := signature.GenerateSecret()
	require.NoError(t, err)
	const wrong = "not-the-secret-0123456789"
	body := []byte(testBody)
	hexProfile := signature.Profile{Header: "X-Smartsurvey-Signature", Format: signature.FormatHex}
	for kind, secret := range map[string]string{"generated secret": generated, "own secret": "my-own-Secret_0123456789!"} {
		hex := hexProfile.Value([]string{secret}, body)
		prefixed := signature.DefaultProfile.Value([]string{secret}, body)
		for _, s := range []struct {
			interpreter, script string
			run                 func(secret, header string) (args, env []string)
			header              string
		}{
			{"node", "seed000_verify.js", func(secret, header string) ([]string, []string) { return []string{secret, header}, nil }, hex},
			{"node", "seed003_verify.js", func(secret, header string) ([]string, []string) {
				return []string{header}, []string{"ASKUSERS_WEBHOOK_SECRET=" + secret}
			}, hex},
			{"python3", "seed003_verify.py", func(secret, header string) ([]string, []string) {
				return []string{header}, []string{"ASKUSERS_WEBHOOK_SECRET=" + secret}
			}, hex},
			{"php", "seed002_verify.php", func(secret, header string) ([]string, []string) {
				return []string{header}, []string{"WEBHOOK_SECRET=" + secret}
			}, prefixed},
			{"ruby", "seed002_verify.rb", func(secret, header string) ([]string, []string) {
				return []string{header}, []string{"WEBHOOK_SECRET=" + secret}
			}, prefixed},
		} {
			t.Run(s.script+"/"+kind, func(t *testing.T) {
				t.Parallel()
				args, env := s.run(secret, s.header)
				require.True(t, runScript(t, s.interpreter, s.script, args, body, env...))
				args, env = s.run(wrong, s.header)
				require.False(t, runScript(t, s.interpreter, s.script, args, body, env...))
				other := prefixed
				if s.header == prefixed {
					other = hex
				}
				args, env = s.run(secret, other)
				require.False(t, runScript(t, s.interpreter, s.script, args, body, env...), "the other format")
			})
		}
	}
}
