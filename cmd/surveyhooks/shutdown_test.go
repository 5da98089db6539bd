package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/retention"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// TestWorkerGracefulShutdown runs the real `surveyhooks worker` binary against a test
// PostgreSQL and Temporal, holds a delivery's POST at the receiver and sends the worker
// SIGTERM meanwhile.
func TestWorkerGracefulShutdown(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)

	t.Run("finishes the attempt in flight and exits 0", func(t *testing.T) {
		t.Parallel()
		const shutdownTimeout = 15 * time.Second
		s := newShutdownStack(t)
		w := startProcess(t, bin, "worker", s.workerEnv(shutdownTimeout, 20*time.Second))
		w.waitFor(t, "worker started", time.Minute)

		run := s.publish(t, 20*time.Second)
		s.rc.waitArrived(t)
		sent := time.Now()
		w.signal(t, syscall.SIGTERM)
		// The worker says it is waiting for the attempt while the receiver still holds it.
		w.waitFor(t, "stopping: waiting for attempts in flight", shutdownTimeout)
		require.False(t, w.exited(), "the worker left with an attempt in flight")
		s.rc.release()

		code := w.wait(t, shutdownTimeout+10*time.Second)
		require.Equal(t, 0, code, "exit code; output:\n%s", w.output())
		require.Less(t, time.Since(sent), shutdownTimeout, "exited within the bound")

		// The attempt was recorded as it ended: delivered by the first and only POST.
		d := s.onlyDelivery(t)
		require.Equal(t, delivery.StatusDelivered, d.Status)
		require.Equal(t, 1, d.AttemptCount)
		attempts, err := s.st.ListAttempts(t.Context(), d.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 1)
		require.Equal(t, http.StatusOK, *attempts[0].ResponseStatus)

		// And its completion reached Temporal before the worker left: another worker finishes
		// the workflow well before the activity's start-to-close timeout (50 s) could have
		// made Temporal retry it.
		s.startInProcessWorker(t, 20*time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		var res delivery.EventResult
		require.NoError(t, run.Get(ctx, &res))
		require.Len(t, res.Deliveries, 1)
		require.Equal(t, delivery.StatusDelivered, res.Deliveries[0].Status)
		require.Equal(t, 1, s.rc.count())

		// The worker also created the retention schedule when it started.
		_, err = s.te.Client.ScheduleClient().GetHandle(t.Context(), retention.ScheduleID).Describe(t.Context())
		require.NoError(t, err)
	})

	t.Run("hands back an attempt that outlasts the bound", func(t *testing.T) {
		t.Parallel()
		const shutdownTimeout = time.Second
		const attemptTimeout = 3 * time.Second
		s := newShutdownStack(t)
		// The receiver holds the first request until the worker gives up on it.
		w := startProcess(t, bin, "worker", s.workerEnv(shutdownTimeout, attemptTimeout))
		w.waitFor(t, "worker started", time.Minute)

		s.publish(t, attemptTimeout)
		s.rc.waitArrived(t)
		sent := time.Now()
		w.signal(t, syscall.SIGTERM)
		code := w.wait(t, shutdownTimeout+10*time.Second)
		require.Equal(t, 0, code, "exit code; output:\n%s", w.output())
		require.Less(t, time.Since(sent), shutdownTimeout+5*time.Second, "exited soon after the bound")

		// Temporal gives the attempt to the next worker, which delivers the same delivery.
		s.startInProcessWorker(t, attemptTimeout)
		require.Eventually(t, func() bool {
			ds, err := s.st.ListEventDeliveries(t.Context(), s.eventID)
			return err == nil && len(ds) == 1 && ds[0].Status == delivery.StatusDelivered
		}, 90*time.Second, 100*time.Millisecond)
		ids := s.rc.webhookIDs()
		require.Len(t, ids, 2, "the cut-short POST and the one that delivered")
		require.Equal(t, ids[0], ids[1], "both POSTs are the same delivery (receivers dedupe on webhook-id)")
	})
}

// TestServeDrainsRequestsInFlight sends the real `surveyhooks serve` SIGTERM while a
// webhook test request (which waits for its delivery attempt) is in flight: the server stops
// accepting connections, answers that request, and exits 0.
func TestServeDrainsRequestsInFlight(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	s := newShutdownStack(t)
	s.startInProcessWorker(t, 5*time.Second)
	const apiKey = "drain-test-key"
	api := startProcess(t, bin, "serve", []string{
		"DATABASE_URL=" + s.dbURL,
		"SURVEYHOOKS_ENCRYPTION_KEYS=" + testenv.EncryptionKeys(),
		"TEMPORAL_ADDRESS=" + s.te.HostPort,
		"TEMPORAL_NAMESPACE=" + s.te.Namespace,
		"SURVEYHOOKS_TASK_QUEUE=" + s.te.TaskQueue,
		"SURVEYHOOKS_API_KEYS=" + apiKey,
		"SURVEYHOOKS_ADDR=127.0.0.1:0",
		"SURVEYHOOKS_ALLOW_HTTP=true",
		"SURVEYHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
		"SURVEYHOOKS_ATTEMPT_TIMEOUT=5s",
		"SURVEYHOOKS_METRICS_ADDR=127.0.0.1:0",
		"SURVEYHOOKS_LOG_FORMAT=json",
	})
	line := api.waitFor(t, "serving the API", time.Minute)
	var logged struct{ URL string }
	require.NoError(t, json.Unmarshal([]byte(line), &logged), line)
	require.NotEmpty(t, logged.URL, line)

	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, logged.URL+"/api/surveys/survey-1/webhooks/"+s.webhookID.String()+"/test", nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, string(body), err}
	}()
	s.rc.waitArrived(t)
	sent := time.Now()
	api.signal(t, syscall.SIGTERM)
	// Draining: new connections are refused while the request is still held.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := fresh.Get(logged.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	}, 10*time.Second, 20*time.Millisecond)
	require.False(t, api.exited())
	s.rc.release()

	var got answer
	select {
	case got = <-answered:
	case <-time.After(20 * time.Second):
		t.Fatal("the request in flight was not answered")
	}
	require.NoError(t, got.err)
	require.Equal(t, http.StatusOK, got.status, got.body)
	require.Contains(t, got.body, `"delivered":true`)
	require.Equal(t, 0, api.wait(t, 15*time.Second), "exit code")
	require.Less(t, time.Since(sent), 10*time.Second, "within serve's drain bound")
}

var (
	buildOnce sync.Once
	buildDir  string
	builtBin  string
	buildErr  error
)

// TestMain removes the binary buildBinary made, once every test that runs it is done.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildBinary builds surveyhooks once per test binary (linking it takes a while).
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "surveyhooks-bin-"); buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "surveyhooks")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goTool(), "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return builtBin
}

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	if path, err := exec.LookPath("go"); err == nil {
		return path
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// shutdownStack is PostgreSQL, Temporal, a webhook on a slow receiver and a stored event.
type shutdownStack struct {
	dbURL     string
	st        *store.Store
	te        *testenv.TemporalEnv
	rc        *holdingReceiver
	webhookID uuid.UUID
	eventID   string
}

func newShutdownStack(t *testing.T) *shutdownStack {
	t.Helper()
	dbURL := testenv.PostgresURL(t)
	db, err := sqlx.Open(store.DriverName, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	s := &shutdownStack{dbURL: dbURL, st: store.New(db, testenv.Keyring()), te: testenv.Temporal(t), rc: newHoldingReceiver(t)}
	hook, err := s.st.CreateWebhook(t.Context(), store.Webhook{
		AccountID: store.DefaultAccount, SurveyID: "survey-1", Name: "slow receiver", URL: s.rc.URL,
		Events: pq.StringArray{"*"}, IsActive: true, Secret: "a-test-secret-of-32-characters!!",
	})
	require.NoError(t, err)
	s.webhookID = hook.ID
	return s
}

// workerEnv is the worker's whole environment: nothing leaks in from the test's.
func (s *shutdownStack) workerEnv(shutdownTimeout, attemptTimeout time.Duration) []string {
	return []string{
		"DATABASE_URL=" + s.dbURL,
		"SURVEYHOOKS_ENCRYPTION_KEYS=" + testenv.EncryptionKeys(),
		"TEMPORAL_ADDRESS=" + s.te.HostPort,
		"TEMPORAL_NAMESPACE=" + s.te.Namespace,
		"SURVEYHOOKS_TASK_QUEUE=" + s.te.TaskQueue,
		"SURVEYHOOKS_ALLOW_HTTP=true",
		"SURVEYHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
		"SURVEYHOOKS_RETRY_DELAYS=1s,1s",
		"SURVEYHOOKS_ATTEMPT_TIMEOUT=" + attemptTimeout.String(),
		"SURVEYHOOKS_SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
		"SURVEYHOOKS_METRICS_ADDR=127.0.0.1:0",
		"SURVEYHOOKS_LOG_FORMAT=json",
	}
}

// publish stores an event for survey-1 and starts its workflow.
func (s *shutdownStack) publish(t *testing.T, attemptTimeout time.Duration) client.WorkflowRun {
	t.Helper()
	s.eventID = "shutdown-" + uuid.NewString()
	published, err := s.st.PublishEvent(t.Context(), store.Event{
		ID: s.eventID, AccountID: store.DefaultAccount, EventType: "survey.response.completed", SurveyID: "survey-1",
		Body: []byte(`{"event_id":"` + s.eventID + `","event_type":"survey.response.completed","data":{}}`),
	})
	require.NoError(t, err)
	require.True(t, published.Created)
	in := delivery.EventInput{EventID: s.eventID, EventType: "survey.response.completed", SurveyID: "survey-1",
		Trigger: delivery.TriggerAuto, Schedule: delivery.Schedule{Delays: []time.Duration{time.Second, time.Second}, AttemptTimeout: attemptTimeout}}
	for _, d := range published.Deliveries {
		in.Deliveries = append(in.Deliveries, delivery.Target{DeliveryID: d.ID, WebhookID: d.WebhookID, URL: d.URL, Status: d.Status})
	}
	run, err := s.te.Client.ExecuteWorkflow(t.Context(), delivery.StartOptions(in, s.te.TaskQueue), delivery.EventWorkflow, in)
	require.NoError(t, err)
	return run
}

func (s *shutdownStack) onlyDelivery(t *testing.T) store.Delivery {
	t.Helper()
	ds, err := s.st.ListEventDeliveries(t.Context(), s.eventID)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	return ds[0]
}

// startInProcessWorker stands in for the next worker of a rolling restart.
func (s *shutdownStack) startInProcessWorker(t *testing.T, attemptTimeout time.Duration) {
	t.Helper()
	policy := netguard.Policy{AllowHTTP: true, Allowed: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	acts := activities.New(s.st, policy.Client(), activities.Config{
		Schedule: delivery.Schedule{Delays: []time.Duration{time.Second, time.Second}, AttemptTimeout: attemptTimeout},
	}, nil)
	s.te.StartWorker(t, func(r worker.Registry) { workflows.Register(r, acts) })
}

// holdingReceiver holds the first request until release is called or the sender goes
// away, and answers the others at once.
type holdingReceiver struct {
	*httptest.Server
	arrived  chan struct{}
	released chan struct{}
	once     sync.Once
	mu       sync.Mutex
	ids      []string
}

func newHoldingReceiver(t *testing.T) *holdingReceiver {
	t.Helper()
	rc := &holdingReceiver{arrived: make(chan struct{}), released: make(chan struct{})}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rc.mu.Lock()
		rc.ids = append(rc.ids, r.Header.Get(signature.HeaderWebhookID))
		first := len(rc.ids) == 1
		rc.mu.Unlock()
		if first {
			close(rc.arrived)
			select {
			case <-rc.released:
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	t.Cleanup(rc.release) // before Close: a held handler would block it
	return rc
}

func (rc *holdingReceiver) waitArrived(t *testing.T) {
	t.Helper()
	select {
	case <-rc.arrived:
	case <-time.After(time.Minute):
		t.Fatal("the worker never sent the delivery")
	}
}

func (rc *holdingReceiver) release() { rc.once.Do(func() { close(rc.released) }) }

func (rc *holdingReceiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.ids)
}

func (rc *holdingReceiver) webhookIDs() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...)
}

// process is a running surveyhooks subcommand whose stderr (the log) is read line by line.
type process struct {
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
	mu    sync.Mutex
	lines []string
	added chan struct{} // closed and replaced whenever a line arrives
}

func startProcess(t *testing.T, bin, subcommand string, env []string) *process {
	t.Helper()
	cmd := exec.Command(bin, subcommand)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.Stdout = io.Discard
	require.NoError(t, cmd.Start())
	p := &process{cmd: cmd, done: make(chan struct{}), added: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.added)
			p.added = make(chan struct{})
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s %s output:\n%s", filepath.Base(bin), subcommand, p.output())
		}
	})
	return p
}

// waitFor waits until a log line contains s, and returns that line.
func (p *process) waitFor(t *testing.T, s string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for _, line := range p.lines {
			if strings.Contains(line, s) {
				p.mu.Unlock()
				return line
			}
		}
		added := p.added
		p.mu.Unlock()
		select {
		case <-added:
		case <-p.done:
			t.Fatalf("process exited (%v) before logging %q; output:\n%s", p.err, s, p.output())
		case <-deadline:
			t.Fatalf("no %q in the log after %s; output:\n%s", s, timeout, p.output())
		}
	}
}

func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait returns the exit code, failing when the process outlives timeout.
func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("still running %s after the signal; output:\n%s", timeout, p.output())
	}
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) {
		return exitErr.ExitCode()
	}
	require.NoError(t, p.err)
	return 0
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}
