package localtemporal

import (
	stdsql "database/sql"
	"io/fs"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	"go.temporal.io/server/common/resolver"
	serverschema "go.temporal.io/server/schema"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

func openAdmin(t *testing.T, file string) sqlplugin.AdminDB {
	t.Helper()
	db, err := sql.NewSQLAdminDB(sqlplugin.DbKindUnknown, sqliteConfig(file), resolver.NewNoopResolver(), log.NewNoopLogger(), metrics.NoopMetricsHandler)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestPrepareSchemaCreatesAndRecordsVersion(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "temporal.db")
	require.NoError(t, prepareSchema(sqliteConfig(file), mainSchema, log.NewNoopLogger()))

	db := openAdmin(t, file)
	tables, err := db.ListTables(file)
	require.NoError(t, err)
	require.Contains(t, tables, "executions")
	require.Contains(t, tables, "current_chasm_executions")
	version, err := db.ReadSchemaVersion(mainSchema.name)
	require.NoError(t, err)
	require.Equal(t, sqliteschema.Version, version)

	require.NoError(t, prepareSchema(sqliteConfig(file), mainSchema, log.NewNoopLogger()), "second run changes nothing")
}

func TestPrepareSchemaUpgradesOlderFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "temporal.db")
	require.NoError(t, prepareSchema(sqliteConfig(file), mainSchema, log.NewNoopLogger()))

	// Turn the file into what version 0.9 created: without the tables of 0.10 and 0.11.
	db := openAdmin(t, file)
	for _, table := range []string{"tasks_v2", "task_queues_v2", "current_chasm_executions"} {
		require.NoError(t, db.DropTable(table))
	}
	require.NoError(t, db.UpdateSchemaVersion(mainSchema.name, "0.9", "0.1"))

	require.NoError(t, prepareSchema(sqliteConfig(file), mainSchema, log.NewNoopLogger()))
	tables, err := db.ListTables(file)
	require.NoError(t, err)
	require.Subset(t, tables, []string{"tasks_v2", "task_queues_v2", "current_chasm_executions"})
	version, err := db.ReadSchemaVersion(mainSchema.name)
	require.NoError(t, err)
	require.Equal(t, sqliteschema.Version, version)
}

func TestPrepareSchemaRefusesNewerFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "temporal.db")
	require.NoError(t, prepareSchema(sqliteConfig(file), mainSchema, log.NewNoopLogger()))
	require.NoError(t, openAdmin(t, file).UpdateSchemaVersion(mainSchema.name, "1.0", "1.0"))

	err := prepareSchema(sqliteConfig(file), mainSchema, log.NewNoopLogger())
	require.ErrorContains(t, err, "schema version 1.0 of "+file+" is newer than this Temporal server's "+sqliteschema.Version)
}

func TestCompareVersionsIsNumeric(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"0.9", "0.10", -1},
		{"0.11", "0.11", 0},
		{"1.0", "0.11", 1},
	} {
		got, err := compareVersions(tc.a, tc.b)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%s vs %s", tc.a, tc.b)
	}
	_, err := compareVersions("0.x", "0.1")
	require.Error(t, err)
}

func TestPrepareVisibilitySchemaDropsUnusedIndexes(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "visibility.db")
	require.NoError(t, prepareSchema(sqliteConfig(file), visibilitySchema, log.NewNoopLogger()))

	schema, err := fs.ReadFile(serverschema.Assets(), "sqlite/v3/visibility/schema.sql")
	require.NoError(t, err)
	var created []string
	for _, m := range regexp.MustCompile(`CREATE INDEX (\w+)\s+ON executions_visibility`).FindAllStringSubmatch(string(schema), -1) {
		created = append(created, m[1])
	}
	for _, name := range visibilitySchema.unusedIndexes {
		require.Contains(t, created, name, "an index the schema does not create: the list is stale")
	}

	db, err := stdsql.Open("sqlite", file)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions_visibility' AND sql IS NOT NULL`)
	require.NoError(t, err)
	var left []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		left = append(left, name)
	}
	require.NoError(t, rows.Err())
	require.ElementsMatch(t, []string{
		"default_idx", "by_execution_time", "by_workflow_id", "by_workflow_type", "by_status", "by_task_queue",
		"by_keyword_01", "by_keyword_02", "by_keyword_03", "by_keyword_04",
		"by_temporal_scheduled_start_time", "by_temporal_scheduled_by_id", "by_temporal_schedule_paused",
		"by_temporal_namespace_division",
	}, left)
	require.Len(t, created, len(left)+len(visibilitySchema.unusedIndexes))
}
