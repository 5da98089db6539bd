package testenv

import (
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/schema"
)

// requireMigrated checks that db holds every migration of this binary.
func requireMigrated(t *testing.T, db *sqlx.DB) {
	t.Helper()
	want, err := schema.Versions()
	require.NoError(t, err)
	var got []int
	require.NoError(t, db.SelectContext(t.Context(), &got, "SELECT version FROM schema_migrations ORDER BY version"))
	require.Len(t, got, len(want))
	for i, m := range want {
		require.Equal(t, m.Version, got[i])
	}
}

func databaseName(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var name string
	require.NoError(t, db.GetContext(t.Context(), &name, "SELECT current_database()"))
	return name
}

func databaseExists(t *testing.T, db *sqlx.DB, name string) bool {
	t.Helper()
	var exists bool
	require.NoError(t, db.GetContext(t.Context(), &exists, databaseExistsQuery, name))
	return exists
}

func TestPostgresIsolated(t *testing.T) {
	t.Parallel()
	start := time.Now()
	db1 := Postgres(t)
	first := time.Since(start)
	start = time.Now()
	db2 := Postgres(t)
	t.Logf("Postgres(t): %v, then %v", first, time.Since(start))

	requireMigrated(t, db1)
	requireMigrated(t, db2)
	require.NotEqual(t, databaseName(t, db1), databaseName(t, db2))

	_, err := db1.ExecContext(t.Context(), "INSERT INTO schema_migrations (version, name) VALUES (99999, 'probe')")
	require.NoError(t, err)
	var n int
	require.NoError(t, db1.GetContext(t.Context(), &n, "SELECT count(*) FROM schema_migrations WHERE version = 99999"))
	require.Equal(t, 1, n)
	require.NoError(t, db2.GetContext(t.Context(), &n, "SELECT count(*) FROM schema_migrations WHERE version = 99999"))
	require.Zero(t, n, "a row written in one test database shows in another")
}

func TestPostgresParallel(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	names := map[string]bool{}
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"a", "b", "c"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				db := Postgres(t)
				requireMigrated(t, db)
				mu.Lock()
				defer mu.Unlock()
				names[databaseName(t, db)] = true
			})
		}
	})
	require.Len(t, names, 3, "each test gets a database of its own")

	// Their databases are gone once they have ended.
	db := Postgres(t)
	for name := range names {
		require.False(t, databaseExists(t, db, name), "database %s left behind", name)
	}
}

func TestPostgresURL(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("subprocess", func(t *testing.T) {
		// A connection the test never closes, as a killed subprocess would leave.
		db, err := sql.Open("postgres", PostgresURL(t))
		require.NoError(t, err)
		require.NoError(t, db.QueryRowContext(t.Context(), "SELECT current_database()").Scan(&name))
		requireMigrated(t, sqlx.NewDb(db, "postgres"))
	})
	require.NotEmpty(t, name)
	require.False(t, databaseExists(t, Postgres(t), name), "database dropped despite an open connection")
}

func TestPostgresPoolSize(t *testing.T) {
	t.Parallel()
	require.Equal(t, maxOpenConns, Postgres(t).Stats().MaxOpenConnections)
}
