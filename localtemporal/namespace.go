package localtemporal

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/config"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"google.golang.org/protobuf/types/known/durationpb"
)

// retention is how long closed workflows stay visible: long enough to look back at a week
// of deliveries in the Web UI.
const retention = 7 * 24 * time.Hour

// createNamespace writes the namespace, with its search attributes, straight into the
// database before the server starts, as the Temporal CLI's dev server does: registering it
// through the API instead would leave the server's namespace cache without it for a few
// seconds. An existing namespace is left alone.
func createNamespace(cfg *config.SQL, clusterName, name string, attrs map[string]enumspb.IndexedValueType) error {
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, name, false, attrs)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	ns.Detail.Config.Retention = durationpb.New(retention)
	if err := sqliteschema.CreateNamespaces(cfg, ns); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// registerSearchAttributes adds the attributes the namespace lacks (for example ones a newer
// surveyhooks defines on a data folder made by an older one) and waits until the server
// accepts them in queries. An attribute registered with another type is an error: the server cannot
// change it.
func registerSearchAttributes(ctx context.Context, c client.Client, namespace string, want map[string]enumspb.IndexedValueType) error {
	missing, err := missingSearchAttributes(ctx, c, namespace, want)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		return fmt.Errorf("add search attributes %v: %w", slices.Sorted(maps.Keys(missing)), err)
	}

	// The attributes are stored at once, but the services read them from a namespace cache
	// that refreshes every couple of seconds. A visibility query naming them fails until the
	// frontend's cache has them.
	query := usableQuery(want)
	tick := time.NewTicker(50 * time.Millisecond)
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
			return fmt.Errorf("wait for search attributes %v: %w (last error: %v)", slices.Sorted(maps.Keys(missing)), ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// usableQuery is a visibility query that names every attribute in attrs.
func usableQuery(attrs map[string]enumspb.IndexedValueType) string {
	terms := make([]string, 0, len(attrs))
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		terms = append(terms, name+" IS NULL")
	}
	return strings.Join(terms, " AND ")
}

func missingSearchAttributes(ctx context.Context, c client.Client, namespace string, want map[string]enumspb.IndexedValueType) (map[string]enumspb.IndexedValueType, error) {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list search attributes: %w", err)
	}
	missing := make(map[string]enumspb.IndexedValueType)
	for name, typ := range want {
		got, ok := resp.GetCustomAttributes()[name]
		if !ok {
			missing[name] = typ
			continue
		}
		if got != typ {
			return nil, fmt.Errorf("search attribute %s is registered as %s, want %s", name, got, typ)
		}
	}
	return missing, nil
}
