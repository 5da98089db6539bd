package localtemporal

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
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
