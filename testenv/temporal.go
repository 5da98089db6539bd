package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
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
	require.NoError(t, delivery.RegisterSearchAttributes(ctx, env.Client, env.Namespace))
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

// taskQueueName is unique per test (and per call) and says which test it belongs to.
func taskQueueName(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s-%s", name, uuid.NewString()[:8])
}
