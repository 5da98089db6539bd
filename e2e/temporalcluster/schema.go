package temporalcluster

import (
	"context"
	"fmt"
	"net"
	"os/exec"
)

// schemaNames maps a SQL plugin to the embedded schemas of its two databases.
var schemaNames = map[string][2]string{
	"postgres12":     {"postgresql/v12/temporal", "postgresql/v12/visibility"},
	"postgres12_pgx": {"postgresql/v12/temporal", "postgresql/v12/visibility"},
	"mysql8":         {"mysql/v8/temporal", "mysql/v8/visibility"},
}

// Databases returns the names of the persistence and visibility databases that settings
// give, with the template's defaults.
func Databases(settings map[string]string) (store, visibility string) {
	store, visibility = settings["DBNAME"], settings["VISIBILITY_DBNAME"]
	if store == "" {
		store = "temporal"
	}
	if visibility == "" {
		visibility = "temporal_visibility"
	}
	return store, visibility
}

// setupSchema creates both databases and brings them to the module's newest schema with
// temporal-sql-tool, as the server's admin tools do: create-database, setup-schema -v 0.0,
// update-schema with the embedded schema.
func setupSchema(ctx context.Context, opts Options) error {
	plugin := opts.Settings["DB"]
	names, ok := schemaNames[plugin]
	if !ok {
		return fmt.Errorf("temporalcluster: DB=%q is not a SQL plugin this cluster sets up", plugin)
	}
	host, port, err := net.SplitHostPort(opts.Postgres)
	if err != nil {
		return fmt.Errorf("postgres address: %w", err)
	}
	store, visibility := Databases(opts.Settings)
	for i, db := range []string{store, visibility} {
		global := []string{
			"--endpoint", host, "--port", port, "--user", opts.PostgresUser, "--password", opts.PostgresPasswd,
			"--plugin", plugin, "--database", db,
		}
		for _, step := range [][]string{
			{"create-database"},
			{"setup-schema", "--version", "0.0"},
			{"update-schema", "--schema-name", names[i]},
		} {
			cmd := exec.CommandContext(ctx, opts.Binaries.SQLTool, append(append([]string{}, global...), step...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("temporal-sql-tool %s on %s: %w: %s", step[0], db, err, oneLine(out))
			}
		}
	}
	return nil
}

// SchemaNames returns the embedded schemas (persistence, visibility) that the cluster
// applies for plugin, nil for a plugin it does not set up.
func SchemaNames(plugin string) []string {
	names, ok := schemaNames[plugin]
	if !ok {
		return nil
	}
	return names[:]
}
