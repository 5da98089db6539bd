package schema_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/schema"
	"github.com/surveyhooks/surveyhooks/testenv"
)

func files(nameSQL ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i < len(nameSQL); i += 2 {
		fsys[nameSQL[i]] = &fstest.MapFile{Data: []byte(nameSQL[i+1])}
	}
	return fsys
}

// tables lists the tables in the public schema, without schema_migrations.
func tables(t *testing.T, db *sqlx.DB) []string {
	t.Helper()
	names := []string{}
	require.NoError(t, db.SelectContext(t.Context(), &names, `SELECT tablename FROM pg_tables
		WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY tablename`))
	return names
}

func applied(t *testing.T, db *sqlx.DB) []int {
	t.Helper()
	versions := []int{}
	require.NoError(t, db.SelectContext(t.Context(), &versions, "SELECT version FROM schema_migrations ORDER BY version"))
	return versions
}

func knownVersions(t *testing.T) []int {
	t.Helper()
	all, err := schema.Versions()
	require.NoError(t, err)
	versions := []int{}
	for _, m := range all {
		versions = append(versions, m.Version)
	}
	return versions
}

func TestVersions(t *testing.T) {
	t.Parallel()
	all, err := schema.Versions()
	require.NoError(t, err)
	require.NotEmpty(t, all)
	require.Equal(t, 1, all[0].Version)
	require.Equal(t, "init", all[0].Name)
	for i, m := range all {
		require.NotEmpty(t, m.Up, "migration %d", m.Version)
		require.NotEmpty(t, m.Down, "migration %d", m.Version)
		if i > 0 {
			require.Greater(t, m.Version, all[i-1].Version)
		}
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		fsys fstest.MapFS
		want string
	}{
		"malformed name": {
			files("0001_init.up.sql", "", "0001_init.down.sql", "", "2_more.up.sql", ""),
			`migration file "2_more.up.sql": name must look like`,
		},
		"upper case": {
			files("0001_Init.up.sql", "", "0001_Init.down.sql", ""),
			`migration file "0001_Init.down.sql": name must look like`,
		},
		"version zero": {
			files("0000_init.up.sql", "", "0000_init.down.sql", ""),
			`version must be a number from 1`,
		},
		"duplicate version": {
			files("0001_a.up.sql", "", "0001_a.down.sql", "", "0001_b.up.sql", "", "0001_b.down.sql", ""),
			`migration file "0001_b.down.sql": version 0001 is already used by 0001_a`,
		},
		"same version written twice": {
			files("0001_a.up.sql", "", "0001_a.down.sql", "", "00001_a.up.sql", ""),
			`migration file "0001_a.up.sql": version 0001 is already used by 0001_a`,
		},
		"up without down": {
			files("0001_a.up.sql", "", "0001_a.down.sql", "", "0002_b.up.sql", ""),
			`migration 0002_b has no down file (0002_b.down.sql)`,
		},
		"down without up": {
			files("0003_c.down.sql", ""),
			`migration 0003_c has no up file (0003_c.up.sql)`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := schema.Load(tc.fsys)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoadOrdersByVersion(t *testing.T) {
	t.Parallel()
	all, err := schema.Load(files(
		"0010_ten.up.sql", "up10", "0010_ten.down.sql", "down10",
		"0002_two.up.sql", "up2", "0002_two.down.sql", "down2",
	))
	require.NoError(t, err)
	require.Equal(t, []schema.Migration{
		{Version: 2, Name: "two", Up: "up2", Down: "down2"},
		{Version: 10, Name: "ten", Up: "up10", Down: "down10"},
	}, all)
}

func TestMigrateRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testenv.Postgres(t) // migrated already
	migrated := tables(t, db)
	require.NotEmpty(t, migrated)
	require.Equal(t, knownVersions(t), applied(t, db))

	require.NoError(t, schema.Rollback(ctx, db.DB, nil, 0))
	require.Empty(t, tables(t, db), "every table but schema_migrations dropped")
	require.Empty(t, applied(t, db))

	require.NoError(t, schema.Migrate(ctx, db.DB, nil))
	require.Equal(t, migrated, tables(t, db))
	require.Equal(t, knownVersions(t), applied(t, db))
	var names []string
	require.NoError(t, db.SelectContext(ctx, &names, "SELECT name FROM schema_migrations WHERE version = 1"))
	require.Equal(t, []string{"init"}, names)
}

func TestMigrateIdempotent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testenv.Postgres(t)
	var before, after []time.Time
	require.NoError(t, db.SelectContext(ctx, &before, "SELECT applied_at FROM schema_migrations ORDER BY version"))

	require.NoError(t, schema.Migrate(ctx, db.DB, nil))

	require.NoError(t, db.SelectContext(ctx, &after, "SELECT applied_at FROM schema_migrations ORDER BY version"))
	require.Equal(t, before, after, "nothing re-applied")
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := testenv.PostgresURL(t)
	// A pool per migrator, as separate processes would have.
	const migrators = 4
	pools := make([]*sql.DB, migrators)
	for i := range pools {
		pool, err := sql.Open("postgres", url)
		require.NoError(t, err)
		t.Cleanup(func() { pool.Close() })
		pools[i] = pool
	}
	require.NoError(t, schema.Rollback(ctx, pools[0], nil, 0))

	errs := make([]error, migrators)
	var wg sync.WaitGroup
	for i, pool := range pools {
		wg.Go(func() { errs[i] = schema.Migrate(ctx, pool, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, knownVersions(t), applied(t, sqlx.NewDb(pools[0], "postgres")))
}

// Test migrations use versions far above the real ones, so they run on top of the
// migrated test database and leave its migrations alone.
var (
	good = []string{
		"9001_good.up.sql", "CREATE TABLE good_t (id int)",
		"9001_good.down.sql", "DROP TABLE good_t",
	}
	broken = []string{
		"9002_broken.up.sql", "CREATE TABLE half_t (id int); INSERT INTO missing_t VALUES (1);",
		"9002_broken.down.sql", "DROP TABLE half_t",
	}
	fixed = []string{
		"9002_broken.up.sql", "CREATE TABLE half_t (id int); INSERT INTO half_t VALUES (1);",
		"9002_broken.down.sql", "DROP TABLE half_t",
	}
	third = []string{
		"9003_third.up.sql", "CREATE TABLE third_t (id int)",
		"9003_third.down.sql", "DROP TABLE third_t",
	}
)

func TestMigrateBrokenMigrationLeavesNothingHalfApplied(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testenv.Postgres(t)
	base := tables(t, db)

	err := schema.MigrateFS(ctx, db.DB, files(append(good, broken...)...), nil)
	require.ErrorContains(t, err, "apply migration 9002_broken")
	require.ErrorContains(t, err, `relation "missing_t" does not exist`)
	require.ElementsMatch(t, append(base, "good_t"), tables(t, db), "9001 applied, 9002 not even in part")
	require.Equal(t, append(knownVersions(t), 9001), applied(t, db))

	require.NoError(t, schema.MigrateFS(ctx, db.DB, files(append(good, fixed...)...), nil))
	require.ElementsMatch(t, append(base, "good_t", "half_t"), tables(t, db))
	require.Equal(t, append(knownVersions(t), 9001, 9002), applied(t, db))
}

func TestRollbackToTarget(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testenv.Postgres(t)
	base := tables(t, db)
	fsys := files(append(append(good, fixed...), third...)...)
	require.NoError(t, schema.MigrateFS(ctx, db.DB, fsys, nil))

	require.NoError(t, schema.RollbackFS(ctx, db.DB, fsys, nil, 9001))
	require.ElementsMatch(t, append(base, "good_t"), tables(t, db))
	require.Equal(t, append(knownVersions(t), 9001), applied(t, db))

	require.ErrorContains(t, schema.RollbackFS(ctx, db.DB, fsys, nil, -1), "roll back to version -1")

	// A binary that does not know an applied migration cannot revert it.
	require.NoError(t, schema.MigrateFS(ctx, db.DB, fsys, nil))
	err := schema.RollbackFS(ctx, db.DB, files(good...), nil, 9000)
	require.ErrorContains(t, err, "roll back migration 9003: this binary does not know it")
	require.Equal(t, append(knownVersions(t), 9001, 9002, 9003), applied(t, db), "nothing reverted")
}

func TestMigrateHonoursContext(t *testing.T) {
	t.Parallel()
	db := testenv.Postgres(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, schema.Migrate(ctx, db.DB, nil), context.Canceled)
}

// A migration's Go step runs in the migration's transaction, after its SQL: it sees what
// the SQL did, and when it fails the SQL is undone and the version stays as it was, going
// up as going down.
func TestStepsRunInTheMigrationsTransaction(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testenv.Postgres(t)
	base := tables(t, db)
	fsys := files(good...)
	errStep := errors.New("step failed")
	insertRow := func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO good_t VALUES (1)`)
		return err
	}
	insertThenFail := func(ctx context.Context, tx *sql.Tx) error {
		return errors.Join(insertRow(ctx, tx), errStep)
	}

	err := schema.MigrateFS(ctx, db.DB, fsys, schema.Steps{9001: {Up: insertThenFail}})
	require.ErrorIs(t, err, errStep)
	require.ErrorContains(t, err, "apply migration 9001_good")
	require.ElementsMatch(t, base, tables(t, db), "the SQL is undone with the step")
	require.Equal(t, knownVersions(t), applied(t, db))

	require.NoError(t, schema.MigrateFS(ctx, db.DB, fsys, schema.Steps{9001: {Up: insertRow}}))
	var rows int
	require.NoError(t, db.GetContext(ctx, &rows, `SELECT count(*) FROM good_t`))
	require.Equal(t, 1, rows, "the step ran once, after the SQL made its table")
	require.NoError(t, schema.MigrateFS(ctx, db.DB, fsys, schema.Steps{9001: {Up: insertThenFail}}),
		"an applied migration's step does not run again")

	// Going down, the step runs after the down SQL dropped the table.
	var sawTable bool
	dropCheck := func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT to_regclass('good_t') IS NOT NULL`).Scan(&sawTable)
		return errors.Join(err, errStep)
	}
	err = schema.RollbackFS(ctx, db.DB, fsys, schema.Steps{9001: {Down: dropCheck}}, 9000)
	require.ErrorIs(t, err, errStep)
	require.ErrorContains(t, err, "roll back migration 9001_good")
	require.False(t, sawTable)
	require.ElementsMatch(t, append(base, "good_t"), tables(t, db), "the down SQL is undone with the step")
	require.Equal(t, append(knownVersions(t), 9001), applied(t, db))

	require.NoError(t, schema.RollbackFS(ctx, db.DB, fsys, schema.Steps{9001: {Down: func(context.Context, *sql.Tx) error { return nil }}}, 9000))
	require.ElementsMatch(t, base, tables(t, db))
	require.Equal(t, knownVersions(t), applied(t, db))
}
