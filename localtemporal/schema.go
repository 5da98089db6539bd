package localtemporal

import (
	"bytes"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	"go.temporal.io/server/common/resolver"
	serverschema "go.temporal.io/server/schema"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

// schemaSpec is the schema one SQLite file must have for this server version.
type schemaSpec struct {
	// name keys the file's row in its schema_version table. It is fixed rather than the
	// file's path so that a data folder can be moved.
	name string
	// version is what the server expects (sqliteschema.Version or VisibilityVersion).
	version string
	// versionedDir holds the upgrade steps inside serverschema.Assets(); "" when the
	// server ships none (the SQLite visibility schema has a single version).
	versionedDir string
	// unusedIndexes are dropped from a new file (an existing one is left as it is).
	unusedIndexes []string
}

var (
	mainSchema       = schemaSpec{name: "temporal", version: sqliteschema.Version, versionedDir: "sqlite/v3/temporal/versioned"}
	visibilitySchema = schemaSpec{name: "temporal_visibility", version: sqliteschema.VisibilityVersion, unusedIndexes: unusedVisibilityIndexes()}
)

// unusedVisibilityIndexes are the visibility table's indexes that neither surveyhooks nor
// the Web UI's usual lists and filters query by. The schema indexes every search attribute
// column, about 60 indexes, and every visibility write (start, upsert, close; each a
// REPLACE) updates all of them: with them it was ~40% of the process's CPU in the bench.
// Kept: the default order, execution time, workflow id and type, status, task queue, the
// first four Keyword columns (surveyhooks' own attributes) and the schedules' attributes.
// A query by a dropped one still works, by a scan.
func unusedVisibilityIndexes() []string {
	names := []string{
		"by_history_length", "by_history_size_bytes", "by_execution_duration", "by_state_transition_count",
		"by_parent_workflow_id", "by_parent_run_id", "by_root_workflow_id", "by_root_run_id",
		"by_batcher_user", "by_temporal_pause_info", "by_temporal_worker_deployment_version",
		"by_temporal_workflow_versioning_behavior", "by_temporal_worker_deployment",
		"by_temporal_low_cardinality_keyword_01",
	}
	numbered := func(prefix string, from, to int) {
		for i := from; i <= to; i++ {
			names = append(names, fmt.Sprintf("%s_%02d", prefix, i))
		}
	}
	numbered("by_bool", 1, 3)
	numbered("by_datetime", 1, 3)
	numbered("by_double", 1, 3)
	numbered("by_int", 1, 3)
	numbered("by_keyword", 5, 10)
	numbered("by_temporal_bool", 1, 2)
	numbered("by_temporal_datetime", 1, 2)
	numbered("by_temporal_double", 1, 2)
	numbered("by_temporal_int", 1, 2)
	numbered("by_temporal_keyword", 1, 4)
	return names
}

// prepareSchema creates the schema in a new database file and brings an existing one up to
// spec.version, so that a data folder written by an older surveyhooks keeps working.
//
// The server module embeds both the full schema (sqliteschema) and the numbered upgrade
// steps (serverschema.Assets); Temporal's own schema tool is not importable here, so the
// upgrade walks the steps itself, recording versions the way that tool does.
func prepareSchema(cfg *config.SQL, spec schemaSpec, logger log.Logger) error {
	db, err := sql.NewSQLAdminDB(sqlplugin.DbKindUnknown, cfg, resolver.NewNoopResolver(), logger, metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("open %s: %w", cfg.DatabaseName, err)
	}
	defer func() { _ = db.Close() }()

	tables, err := db.ListTables(cfg.DatabaseName)
	if err != nil {
		return fmt.Errorf("list tables of %s: %w", cfg.DatabaseName, err)
	}
	if len(tables) == 0 {
		if err := sqliteschema.SetupSchemaOnDB(db); err != nil {
			return fmt.Errorf("create schema in %s: %w", cfg.DatabaseName, err)
		}
		if err := db.CreateSchemaVersionTables(); err != nil {
			return fmt.Errorf("create schema version tables in %s: %w", cfg.DatabaseName, err)
		}
		if err := db.UpdateSchemaVersion(spec.name, spec.version, spec.version); err != nil {
			return fmt.Errorf("record schema version in %s: %w", cfg.DatabaseName, err)
		}
		for _, index := range spec.unusedIndexes {
			if err := db.Exec("DROP INDEX IF EXISTS " + index); err != nil {
				return fmt.Errorf("drop index %s in %s: %w", index, cfg.DatabaseName, err)
			}
		}
		return nil
	}
	current := ""
	if slices.Contains(tables, "schema_version") {
		current, err = db.ReadSchemaVersion(spec.name)
		if errors.Is(err, stdsql.ErrNoRows) {
			err = nil
		}
	}
	if current == "" && err == nil {
		// Written by another tool (e.g. `temporal server start-dev --db-filename`), which
		// records no version: use it as it is.
		logger.Warn("SQLite database has no schema version; not upgrading it", tag.NewStringTag("file", cfg.DatabaseName))
		return nil
	}
	if err != nil {
		return fmt.Errorf("read schema version of %s: %w", cfg.DatabaseName, err)
	}
	if cmp, err := compareVersions(current, spec.version); err != nil {
		return fmt.Errorf("schema version of %s: %w", cfg.DatabaseName, err)
	} else if cmp > 0 {
		return fmt.Errorf("schema version %s of %s is newer than this Temporal server's %s", current, cfg.DatabaseName, spec.version)
	} else if cmp == 0 {
		return nil
	}
	if err := upgradeSchema(db, current, spec); err != nil {
		return fmt.Errorf("upgrade schema of %s from %s: %w", cfg.DatabaseName, current, err)
	}
	return nil
}

// manifest is the manifest.json of one upgrade step.
type manifest struct {
	CurrVersion          string
	MinCompatibleVersion string
	Description          string
	SchemaUpdateCqlFiles []string
}

func upgradeSchema(db sqlplugin.AdminDB, current string, spec schemaSpec) error {
	if spec.versionedDir == "" {
		return errors.New("no upgrade steps available")
	}
	assets := serverschema.Assets()
	entries, err := fs.ReadDir(assets, spec.versionedDir)
	if err != nil {
		return fmt.Errorf("read upgrade steps: %w", err)
	}
	var steps []string
	for _, e := range entries {
		v := strings.TrimPrefix(e.Name(), "v")
		after, err1 := compareVersions(v, current)
		upTo, err2 := compareVersions(v, spec.version)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("upgrade step %s: %w", e.Name(), err)
		}
		if e.IsDir() && after > 0 && upTo <= 0 {
			steps = append(steps, v)
		}
	}
	slices.SortFunc(steps, func(a, b string) int {
		c, _ := compareVersions(a, b) // both parsed above
		return c
	})

	for _, v := range steps {
		dir := path.Join(spec.versionedDir, "v"+v)
		raw, err := fs.ReadFile(assets, path.Join(dir, "manifest.json"))
		if err != nil {
			return fmt.Errorf("read manifest of %s: %w", v, err)
		}
		var m manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("parse manifest of %s: %w", v, err)
		}
		readers := make([]io.Reader, 0, len(m.SchemaUpdateCqlFiles))
		for _, name := range m.SchemaUpdateCqlFiles {
			b, err := fs.ReadFile(assets, path.Join(dir, name))
			if err != nil {
				return fmt.Errorf("read %s of %s: %w", name, v, err)
			}
			readers = append(readers, bytes.NewReader(b))
		}
		stmts, err := persistence.LoadAndSplitQueryFromReaders(readers)
		if err != nil {
			return fmt.Errorf("split statements of %s: %w", v, err)
		}
		for _, stmt := range stmts {
			if err := db.Exec(stmt); err != nil {
				return fmt.Errorf("apply %s: %w", v, err)
			}
		}
		if err := db.UpdateSchemaVersion(spec.name, v, m.MinCompatibleVersion); err != nil {
			return fmt.Errorf("record version %s: %w", v, err)
		}
		if err := db.WriteSchemaUpdateLog(current, v, "", m.Description); err != nil {
			return fmt.Errorf("log update to %s: %w", v, err)
		}
		current = v
	}
	return nil
}

// compareVersions compares dotted numeric versions such as "0.9" and "0.11" (numerically,
// not as strings).
func compareVersions(a, b string) (int, error) {
	pa, err := parseVersion(a)
	if err != nil {
		return 0, err
	}
	pb, err := parseVersion(b)
	if err != nil {
		return 0, err
	}
	return slices.Compare(pa, pb), nil
}

func parseVersion(v string) ([]int, error) {
	parts := strings.Split(v, ".")
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("version %q is not numeric", v)
		}
		nums[i] = n
	}
	return nums, nil
}
