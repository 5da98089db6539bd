package testenv

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/surveyhooks/surveyhooks/delivery"
)

// searchAttributesTimeout bounds the wait for new search attributes to become usable.
const searchAttributesTimeout = 30 * time.Second

// TemporalEnv is an in-process Temporal server for one test, with surveyhooks' search
// attributes registered in its namespace.
type TemporalEnv struct {
	// Client talks to Namespace; it is closed when the test ends.
	Client client.Client
	// Namespace is the server's only user namespace.
	Namespace string
	// TaskQueue is unique to the test, for workers started with StartWorker.
	TaskQueue string
	// HostPort is the frontend address, for code under test that dials its own client.
	HostPort string
}

// Temporal starts a Temporal server (temporaltest: in-memory SQLite, one shard) for t,
// registers delivery.SearchAttributes() and returns once they can be used. The server
// stops when the test ends.
func Temporal(t testing.TB) *TemporalEnv {
	t.Helper()
	opts := []temporaltest.TestServerOption{
		temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			// What temporaltest sets itself (this option replaces its dynamic config).
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
			// The services see new search attributes when their namespace cache refreshes
			// (every 2 s by default); refresh often so tests don't wait for it.
			dynamicconfig.NamespaceCacheRefreshInterval.Key(): 50 * time.Millisecond,
		})),
	}
	if tt, ok := t.(*testing.T); ok {
		// Routes client and worker logs to the test and stops the server in cleanup.
		opts = append(opts, temporaltest.WithT(tt))
	}
	ts := temporaltest.NewServer(opts...)
	if _, ok := t.(*testing.T); !ok {
		t.Cleanup(ts.Stop)
	}

	env := &TemporalEnv{
		Client:    ts.GetDefaultClient(),
		Namespace: ts.GetDefaultNamespace(),
		TaskQueue: taskQueueName(t),
		HostPort:  ts.GetFrontendHostPort(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), searchAttributesTimeout)
	defer cancel()
	require.NoError(t, registerSearchAttributes(ctx, env.Client, env.Namespace))
	return env
}

// StartWorker starts a worker on e.TaskQueue with what register adds, after applying opts
// to its options. The worker stops when the test ends, before the server does.
func (e *TemporalEnv) StartWorker(t testing.TB, register func(worker.Registry), opts ...func(*worker.Options)) {
	t.Helper()
	// Fail a workflow at once on a panic or non-determinism, rather than retrying its task
	// until the test times out.
	options := worker.Options{WorkflowPanicPolicy: worker.FailWorkflow}
	for _, opt := range opts {
		opt(&options)
	}
	w := worker.New(e.Client, e.TaskQueue, options)
	register(w)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
}

// registerSearchAttributes adds surveyhooks' search attributes and waits until a visibility
// query may name them, which is when the frontend's namespace cache has them.
func registerSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	if err := delivery.RegisterSearchAttributes(ctx, c, namespace); err != nil {
		return err
	}

	names := slices.Sorted(maps.Keys(delivery.SearchAttributes()))
	terms := make([]string, len(names))
	for i, name := range names {
		terms[i] = name + " IS NULL"
	}
	query := strings.Join(terms, " AND ")
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: query})
		var invalid *serviceerror.InvalidArgument
		if err == nil {
			return nil
		} else if !errors.As(err, &invalid) {
			return fmt.Errorf("query search attributes: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for search attributes %v: %w (last error: %v)", names, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// taskQueueName is unique per test (and per call) and says which test it belongs to.
func taskQueueName(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s-%s", name, uuid.NewString()[:8])
}
