package api_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/signature"
)

// The tests below run the seeds' own verifiers (signature/testdata, each unchanged but for
// the header name and where the secret comes from) against requests that surveyhooks really
// delivered with the matching profile: published through the API, sent by the worker,
// caught by a receiver.

// seedData is the data of the events the seed tests publish, as the publisher writes it:
// HTML characters, "é" raw and escaped, an emoji, U+2028 raw and escaped, numbers that
// JavaScript prints otherwise (1.0, 1e3, -0) and integer-like keys out of order. A body a
// verifier would re-encode differently from the bytes sent fails it.
var seedData = `{"survey":{"id":"survey-1","title":"Tom & Jerry <b>bold</b> – Café"},` +
	`"response":{"id":"r-1","answers":[` +
	`{"question_id":"q1","question":"Caf\u00e9 or café?","answer":"Café <3"},` +
	`{"question_id":"q2","answer":"😀 line` + "\u2028" + `separator \u2028 escaped"},` +
	`{"question_id":"q3","answer":1.0},{"question_id":"q4","answer":1e3},{"question_id":"q5","answer":-0}],` +
	`"custom":{"b":1,"10":"ten","2":"two","a":2,"1":"one"}}}`

// seedLargeData is a plain response of 64 KiB.
var seedLargeData = `{"survey":{"id":"survey-1"},"response":{"id":"r-2","answers":[{"question_id":"essay","answer":"` +
	strings.Repeat("plain text ", 64<<10/11) + `"}]}}`

// seedDeliveries publishes seedData and seedLargeData to survey-1's webhooks (deliveries of
// each event in all) and returns what rc received: two requests per webhook of rc's.
func seedDeliveries(t *testing.T, e *engine, rc *receiver, webhooks, deliveries int) []recorded {
	t.Helper()
	for i, data := range []string{seedData, seedLargeData} {
		id := fmt.Sprintf("evt-seed-%d", i)
		body := fmt.Sprintf(`{"event_id":%q,"event_type":"survey.response.completed","survey_id":"survey-1","data":%s}`, id, data)
		status, out := e.rawRequest(t, http.MethodPost, "/api/events", body)
		require.Equal(t, http.StatusCreated, status, string(out))
		for _, d := range e.deliveriesOf(t, id, deliveries) {
			require.Equal(t, delivery.StatusDelivered, d["status"], d)
		}
	}
	got := rc.got()
	require.Len(t, got, 2*webhooks)
	large := 0
	for _, req := range got {
		if len(req.body) > 64<<10 {
			large++
		}
	}
	require.Equal(t, webhooks, large, "the 64 KiB response arrived whole")
	return got
}

// rawRequest sends body as it is written, so that the publisher's escapes and numbers reach
// the API unchanged.
func (e *engine) rawRequest(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+engineKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// verifier is one seed's verifier: an interpreter running a script of signature/testdata.
type verifier struct {
	interpreter, script string
}

// need makes sure the interpreter is installed: it skips the test where it is not, and
// fails it under CI=true, where .ci/run installs every interpreter.
func (v verifier) need(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath(v.interpreter)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed: cannot run signature/testdata/%s (.ci/run installs it)", v.interpreter, v.script)
		}
		t.Skipf("%s is not installed: cannot run signature/testdata/%s; install it to check that snippet", v.interpreter, v.script)
	}
	return path
}

// verifies runs the verifier with args, env added to the environment and body on stdin, and
// reports whether it exited 0. Exit status 1 means "does not verify"; anything else is a
// crash and fails the test.
func (v verifier) verifies(t *testing.T, env []string, body []byte, args ...string) bool {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), v.need(t), append([]string{filepath.Join("..", "signature", "testdata", v.script)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		t.Logf("%s: %s", v.script, strings.TrimSpace(stderr.String()))
		return false
	}
	require.NoError(t, err, "%s crashed: %s", v.script, stderr.String())
	return true
}

// hookSecrets creates two webhooks of survey-1 for rc, one with a generated secret and one
// with a secret of the user's own, and returns the secrets.
func hookSecrets(t *testing.T, e *engine, rc *receiver) []string {
	t.Helper()
	_, generated := e.createWebhook(t, rc.URL, []string{"*"}, "")
	_, own := e.createWebhook(t, rc.URL, []string{"*"}, "my-own-Secret_0123456789!")
	require.True(t, strings.HasPrefix(generated, "whsec_"))
	return []string{generated, own}
}

// secretOf returns the secret of the webhook that req reached, out of secrets, as a
// receiver knows its own: the one whose Standard Webhooks signature verifies.
func secretOf(t *testing.T, req recorded, secrets []string) string {
	t.Helper()
	for _, s := range secrets {
		if signature.VerifyStandard(s, req.header, req.body, time.Now(), 0) == nil {
			return s
		}
	}
	t.Fatalf("no secret signed the request")
	return ""
}

// TestSeed000VerifierOnRealDeliveries: SmartSurvey's receivers check
// X-SmartSurvey-Signature, the bare hex HMAC of JSON.stringify of the parsed payload
// (SURVEYHOOKS_SIGNATURE_HEADER=X-SmartSurvey-Signature, SURVEYHOOKS_SIGNATURE_FORMAT=hex).
func TestSeed000VerifierOnRealDeliveries(t *testing.T) {
	t.Parallel()
	profile, err := signature.ParseProfile("X-SmartSurvey-Signature", "hex")
	require.NoError(t, err)
	e := setupEngineSigning(t, netguard.Policy{AllowHTTP: true, Allowed: loopback}, profile)
	rc := newReceiver(t)
	secrets := hookSecrets(t, e, rc)
	got := seedDeliveries(t, e, rc, len(secrets), len(secrets))

	node := verifier{"node", "seed000_verify.js"}
	for _, req := range got {
		secret := secretOf(t, req, secrets)
		header := req.header.Get("X-SmartSurvey-Signature")
		require.Empty(t, req.header.Get(signature.HeaderSignature), "one HMAC header, the profile's")
		require.True(t, node.verifies(t, nil, req.body, secret, header), "seed 000, %d bytes", len(req.body))
		require.False(t, node.verifies(t, nil, req.body, "not-the-secret-0123456789", header))
	}
}

// TestSeed003VerifiersOnRealDeliveries: Ask Users' receivers compare the whole
// X-Webhook-Signature header with the bare hex HMAC of JSON.stringify(req.body)
// (SURVEYHOOKS_SIGNATURE_FORMAT=hex). During a rotation's overlap the header carries the
// newest secret's HMAC only: a receiver verifies with the new secret from the rotation on.
func TestSeed003VerifiersOnRealDeliveries(t *testing.T) {
	t.Parallel()
	profile, err := signature.ParseProfile("", "hex")
	require.NoError(t, err)
	e := setupEngineSigning(t, netguard.Policy{AllowHTTP: true, Allowed: loopback}, profile)
	rc := newReceiver(t)
	secrets := hookSecrets(t, e, rc)
	got := seedDeliveries(t, e, rc, len(secrets), len(secrets))

	verifiers := []verifier{{"node", "seed003_verify.js"}, {"python3", "seed003_verify.py"}}
	check := func(t *testing.T, req recorded, secret string) bool {
		t.Helper()
		ok := true
		for _, v := range verifiers {
			ok = v.verifies(t, []string{"ASKUSERS_WEBHOOK_SECRET=" + secret}, req.body, req.header.Get(signature.HeaderSignature)) && ok
		}
		return ok
	}
	for _, req := range got {
		require.True(t, check(t, req, secretOf(t, req, secrets)), "seed 003, %d bytes", len(req.body))
		require.False(t, check(t, req, "not-the-secret-0123456789"))
	}

	// Rotation: the profile header carries the newest secret's HMAC only, the Standard
	// Webhooks header both.
	rotating := newReceiver(t)
	hookID, old := e.createWebhook(t, rotating.URL, []string{"survey.response.updated"}, "")
	status, rotated := e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks/"+hookID+"/secret/rotate", nil)
	require.Equal(t, http.StatusOK, status, rotated)
	newest := rotated["secret"].(string)
	body := `{"event_id":"evt-seed-rot","event_type":"survey.response.updated","survey_id":"survey-1","data":` + seedData + `}`
	status, out := e.rawRequest(t, http.MethodPost, "/api/events", body)
	require.Equal(t, http.StatusCreated, status, string(out))
	e.deliveriesOf(t, "evt-seed-rot", 3)
	require.Len(t, rotating.got(), 1)
	req := rotating.got()[0]
	require.True(t, check(t, req, newest))
	require.False(t, check(t, req, old), "the overlap's old secret is not in the hex header")
	require.NoError(t, signature.VerifyStandard(old, req.header, req.body, time.Now(), 0), "it still signs webhook-signature")
}

// TestSeed002AndStandardWebhooksVerifiersOnRealDeliveries: Popsee's receivers check
// "sha256=<hex>" of the raw body, the default profile, with the header renamed; the
// official Standard Webhooks libraries check v1; an independent Node crypto.verify checks
// an ed25519 webhook's v1a.
func TestSeed002AndStandardWebhooksVerifiersOnRealDeliveries(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t)
	secrets := hookSecrets(t, e, rc)
	keyed := newReceiver(t)
	status, created := e.do(t, http.MethodPost, "/api/surveys/survey-1/webhooks",
		map[string]any{"name": "ed25519", "url": keyed.URL, "events": []string{"*"}, "signing": "ed25519"})
	require.Equal(t, http.StatusCreated, status, created)
	publicKey := created["publicKey"].(string)
	got := seedDeliveries(t, e, rc, len(secrets), len(secrets)+1)

	seed002 := []verifier{
		{"node", "seed002_verify.js"}, {"python3", "seed002_verify.py"}, // secret as an argument
		{"php", "seed002_verify.php"}, {"ruby", "seed002_verify.rb"}, // secret in WEBHOOK_SECRET
	}
	npm := verifier{"node", "standardwebhooks/verify.js"}
	for _, req := range got {
		secret := secretOf(t, req, secrets)
		header := req.header.Get(signature.HeaderSignature)
		for _, v := range seed002 {
			t.Run(v.script, func(t *testing.T) {
				env := []string{"WEBHOOK_SECRET=" + secret}
				args := []string{header}
				if v.interpreter == "node" || v.interpreter == "python3" {
					args = []string{secret, header}
				}
				require.True(t, v.verifies(t, env, req.body, args...), "seed 002, %d bytes", len(req.body))
				env = []string{"WEBHOOK_SECRET=not-the-secret-0123456789"}
				if len(args) == 2 {
					args[0] = "not-the-secret-0123456789"
				}
				require.False(t, v.verifies(t, env, req.body, args...))
			})
		}
		require.True(t, verifySeed002(req.body, header, secret), "seed 002's Go snippet")

		var wh *standardwebhooks.Webhook
		var err error
		if strings.HasPrefix(secret, "whsec_") {
			wh, err = standardwebhooks.NewWebhook(secret)
		} else {
			wh, err = standardwebhooks.NewWebhookRaw([]byte(secret))
		}
		require.NoError(t, err)
		require.NoError(t, wh.Verify(req.body, req.header), "Standard Webhooks, Go library")

		t.Run("standardwebhooks npm", func(t *testing.T) {
			requireNodeModules(t)
			args := []string{secret, req.header.Get("webhook-id"), req.header.Get("webhook-timestamp"), req.header.Get("webhook-signature")}
			require.True(t, npm.verifies(t, nil, req.body, args...), "Standard Webhooks, npm library, %d bytes", len(req.body))
			require.False(t, npm.verifies(t, nil, append(bytes.Clone(req.body), ' '), args...))
		})
	}

	ed := verifier{"node", "verify_ed25519.js"}
	keyedGot := keyed.got()
	require.Len(t, keyedGot, 2)
	other, err := signature.GenerateSigningKey()
	require.NoError(t, err)
	otherPublic, err := signature.PublicKey(other)
	require.NoError(t, err)
	for _, req := range keyedGot {
		require.Empty(t, req.header.Get(signature.HeaderSignature), "no shared secret, no HMAC")
		require.True(t, strings.HasPrefix(req.header.Get("webhook-signature"), "v1a,"))
		require.NoError(t, signature.VerifyAsymmetric([]string{publicKey}, req.header, req.body, time.Now(), 0))
		args := []string{req.header.Get("webhook-id"), req.header.Get("webhook-timestamp"), req.header.Get("webhook-signature")}
		require.True(t, ed.verifies(t, nil, req.body, append(args, publicKey)...), "ed25519, Node crypto.verify, %d bytes", len(req.body))
		require.False(t, ed.verifies(t, nil, req.body, append(args, otherPublic)...))
	}
}

// requireNodeModules makes sure the npm library is installed (.ci/run runs npm ci): it
// skips the test where it is not, and fails it under CI=true.
func requireNodeModules(t *testing.T) {
	t.Helper()
	const dir = "../signature/testdata/standardwebhooks"
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the standardwebhooks npm package is not installed in %s (.ci/run runs npm ci there)", dir)
		}
		t.Skipf("the standardwebhooks npm package is not installed: run npm ci in %s", dir)
	}
}
