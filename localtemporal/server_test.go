package localtemporal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

var testSearchAttributes = map[string]enumspb.IndexedValueType{
	"SurveyId":   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"WebhookIds": enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}

// setup returns options for a server in a fresh directory on free loopback ports.
func setup(t *testing.T, withUI bool) Options {
	t.Helper()
	opts := Options{
		DataDir:          filepath.Join(t.TempDir(), "temporal"),
		FrontendAddr:     freeAddr(t),
		Namespace:        "default",
		SearchAttributes: testSearchAttributes,
		Logger:           testLogger(t),
	}
	if withUI {
		opts.UIAddr = freeAddr(t)
	}
	return opts
}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	began := time.Now()
	s, err := Start(t.Context(), opts)
	require.NoError(t, err)
	t.Logf("started in %v", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { require.NoError(t, s.Stop()) })
	return s
}

func dial(t *testing.T, s *Server, namespace string) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddr(),
		Namespace: namespace,
		Logger:    sdklog.NewStructuredLogger(testLogger(t)),
	})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func startWorker(t *testing.T, c client.Client, taskQueue string) worker.Worker {
	t.Helper()
	w := worker.New(c, taskQueue, worker.Options{WorkflowPanicPolicy: worker.FailWorkflow})
	w.RegisterWorkflow(Greet)
	w.RegisterWorkflow(Nap)
	w.RegisterActivity(Shout)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return w
}

// Greet runs one activity.
func Greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, Shout, name).Get(ctx, &out)
	return out, err
}

// Shout is Greet's activity.
func Shout(_ context.Context, name string) (string, error) {
	return "HELLO " + strings.ToUpper(name), nil
}

// Nap sleeps on a durable timer, then returns.
func Nap(ctx workflow.Context, d time.Duration) (string, error) {
	if err := workflow.Sleep(ctx, d); err != nil {
		return "", err
	}
	return "rested", nil
}

func TestStartRunsWorkflowsAndServesUI(t *testing.T) {
	t.Parallel()
	opts := setup(t, true)
	s := start(t, opts)
	require.Equal(t, opts.FrontendAddr, s.FrontendAddr())
	require.Equal(t, "http://"+opts.UIAddr, s.UIURL())

	c := dial(t, s, opts.Namespace)
	startWorker(t, c, "greetings")
	run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "greet-ada", TaskQueue: "greetings"}, Greet, "ada")
	require.NoError(t, err)
	var got string
	require.NoError(t, run.Get(t.Context(), &got))
	require.Equal(t, "HELLO ADA", got)

	// Namespace with retention and search attributes; SQLite in WAL mode on files.
	ns, err := c.WorkflowService().DescribeNamespace(t.Context(), &workflowservice.DescribeNamespaceRequest{Namespace: opts.Namespace})
	require.NoError(t, err)
	require.Equal(t, retention, ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration())
	requireSearchAttributes(t, c, opts.Namespace)
	require.FileExists(t, filepath.Join(opts.DataDir, "temporal.db-wal"))
	require.FileExists(t, filepath.Join(opts.DataDir, "temporal-visibility.db-wal"))

	// The Web UI app.
	resp, err := http.Get(s.UIURL() + "/")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Contains(t, strings.ToLower(string(body)), "<!doctype html>")

	// The UI's API lists the namespace's workflows (visibility is eventually consistent).
	require.Eventually(t, func() bool {
		var list struct {
			Executions []struct {
				Execution struct {
					WorkflowID string `json:"workflowId"`
				} `json:"execution"`
				Status string `json:"status"`
			} `json:"executions"`
		}
		resp, err := http.Get(s.UIURL() + "/api/v1/namespaces/" + opts.Namespace + "/workflows")
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&list) != nil {
			return false
		}
		for _, e := range list.Executions {
			if e.Execution.WorkflowID == "greet-ada" && e.Status == "WORKFLOW_EXECUTION_STATUS_COMPLETED" {
				return true
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond)
}

func TestRestartContinuesWorkflows(t *testing.T) {
	t.Parallel()
	opts := setup(t, true)
	began := time.Now()
	s, err := Start(t.Context(), opts)
	require.NoError(t, err)
	t.Logf("first start in %v", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() { _ = s.Stop() })

	// Client and worker by hand: they must be gone before the server stops.
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddr(), Namespace: opts.Namespace, Logger: sdklog.NewStructuredLogger(testLogger(t))})
	require.NoError(t, err)
	long, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "nap-long", TaskQueue: "naps"}, Nap, time.Hour)
	require.NoError(t, err)
	short, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "nap-short", TaskQueue: "naps"}, Nap, 3*time.Second)
	require.NoError(t, err)
	w := worker.New(c, "naps", worker.Options{})
	w.RegisterWorkflow(Nap)
	require.NoError(t, w.Start())
	// Each timer is durable once its workflow's first task completed: started, task
	// scheduled, started, completed, timer started.
	for _, id := range []string{"nap-long", "nap-short"} {
		require.Eventually(t, func() bool {
			d, err := c.DescribeWorkflowExecution(t.Context(), id, "")
			return err == nil && d.GetWorkflowExecutionInfo().GetHistoryLength() >= 5
		}, 10*time.Second, 20*time.Millisecond, "timer of %s", id)
	}
	w.Stop()
	c.Close()
	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop(), "Stop is idempotent")

	// Same directory, same ports.
	s2 := start(t, opts) // logs the second start-up time
	c2 := dial(t, s2, opts.Namespace)
	d, err := c2.DescribeWorkflowExecution(t.Context(), long.GetID(), long.GetRunID())
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, d.GetWorkflowExecutionInfo().GetStatus())
	requireSearchAttributes(t, c2, opts.Namespace)

	// The short timer fires after the restart and the workflow completes on a new worker.
	startWorker(t, c2, "naps")
	var got string
	require.NoError(t, c2.GetWorkflow(t.Context(), short.GetID(), short.GetRunID()).Get(t.Context(), &got))
	require.Equal(t, "rested", got)
}

func TestServersSideBySide(t *testing.T) {
	t.Parallel()
	optsA, optsB := setup(t, true), setup(t, true)
	optsB.Namespace = "other"
	// Started at the same moment, so that their free ports are picked concurrently.
	var a, b *Server
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { a, errA = Start(t.Context(), optsA) })
	wg.Go(func() { b, errB = Start(t.Context(), optsB) })
	wg.Wait()
	require.NoError(t, errA)
	t.Cleanup(func() { require.NoError(t, a.Stop()) })
	require.NoError(t, errB)
	t.Cleanup(func() { require.NoError(t, b.Stop()) })

	ca, cb := dial(t, a, optsA.Namespace), dial(t, b, optsB.Namespace)
	startWorker(t, ca, "greetings")
	startWorker(t, cb, "greetings")
	for name, c := range map[string]client.Client{"a": ca, "b": cb} {
		run, err := c.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: "greet-" + name, TaskQueue: "greetings"}, Greet, name)
		require.NoError(t, err)
		var got string
		require.NoError(t, run.Get(t.Context(), &got))
		require.Equal(t, "HELLO "+strings.ToUpper(name), got)
	}

	// Each server has its own data: b knows neither a's workflow nor a's namespace.
	_, err := cb.DescribeWorkflowExecution(t.Context(), "greet-a", "")
	require.Error(t, err)
	_, err = cb.WorkflowService().DescribeNamespace(t.Context(), &workflowservice.DescribeNamespaceRequest{Namespace: optsA.Namespace})
	require.Error(t, err)
}

func TestStartFailsOnPortInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })
	addr := taken.Addr().String()

	opts := setup(t, true)
	opts.FrontendAddr = addr
	_, err = Start(t.Context(), opts)
	require.EqualError(t, err, fmt.Sprintf("temporal frontend address %s is in use", addr))

	opts = setup(t, true)
	opts.UIAddr = addr
	_, err = Start(t.Context(), opts)
	require.EqualError(t, err, fmt.Sprintf("temporal UI address %s is in use", addr))
	require.NoDirExists(t, opts.DataDir, "nothing is written before the ports are checked")
}

func requireSearchAttributes(t *testing.T, c client.Client, namespace string) {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(t.Context(), &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	require.NoError(t, err)
	for name, typ := range testSearchAttributes {
		require.Equal(t, typ, resp.GetCustomAttributes()[name], name)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := freePort("127.0.0.1")
	require.NoError(t, err)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// testLogger writes to the test's output until the test ends; the server's goroutines may
// still log while they wind down, and writing to a finished test panics.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.w = nil
}
