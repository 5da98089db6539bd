// Package testenv gives tests real infrastructure of their own: a migrated PostgreSQL
// database per test, and an in-process Temporal server.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/surveyhooks/surveyhooks/localpg"
	"github.com/surveyhooks/surveyhooks/schema"
	"github.com/surveyhooks/surveyhooks/store"
)

// TestDatabaseURLEnv names the variable that points tests at an existing PostgreSQL
// server (a postgres:// URL whose role may CREATE DATABASE) instead of a throwaway cluster
// started from the local binaries.
const TestDatabaseURLEnv = "TEST_DATABASE_URL"

const (
	// maxOpenConns bounds each test's pool: a test binary runs many tests at once against
	// one server, whose max_connections is 200.
	maxOpenConns = 10
	// templateLockKey serializes template builds of test binaries sharing a server.
	templateLockKey int64 = 0x73686f6f6b74706c // "shooktpl"
	serverTimeout         = 2 * time.Minute
)

const (
	databaseExistsQuery = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`
	serverVersionQuery  = `SELECT current_setting('server_version_num')::int`
	lockQuery           = `SELECT pg_advisory_lock($1::bigint)`
	unlockQuery         = `SELECT pg_advisory_unlock($1::bigint)`
)

// pgServer is the server a test binary makes its databases on.
type pgServer struct {
	base     *url.URL // the maintenance database: test databases get the same URL but path
	admin    *sql.DB  // creates and drops test databases
	template string   // migrated database every test database is cloned from
	// cloneOptions picks FILE_COPY on PostgreSQL 15+: copying files and checkpointing is
	// much cheaper than WAL-logging every page of the template on a server without fsync.
	cloneOptions string
}

var (
	pgOnce sync.Once
	pg     *pgServer
	errPG  error
	// cloneMu keeps this binary's clones one at a time: CREATE DATABASE ... TEMPLATE
	// fails while anything else uses the template.
	cloneMu sync.Mutex
)

// Postgres returns a connection to a fresh, migrated database of the test's own, closed
// and dropped when the test ends.
func Postgres(t testing.TB) *sqlx.DB {
	t.Helper()
	dbURL := PostgresURL(t)
	db, err := sqlx.Open(store.DriverName, dbURL)
	if err != nil {
		t.Fatalf("testenv: open test database: %v", err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	// Registered after PostgresURL's cleanup, so it runs before the database is dropped.
	t.Cleanup(func() { db.Close() })
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatalf("testenv: connect to test database: %v", err)
	}
	return db
}

// PostgresURL is like Postgres but returns the database's URL, for tests that connect
// from elsewhere, such as a subprocess.
func PostgresURL(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pg, errPG = startPostgres() })
	if errPG != nil {
		t.Fatalf("testenv: %v", errPG)
	}
	name, err := pg.clone(t.Context())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		// FORCE ends connections the test left open (a subprocess, a leaked pool).
		if _, err := pg.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop test database %s: %v", name, err)
		}
	})
	return pg.url(name)
}

// startPostgres connects to TEST_DATABASE_URL or starts a throwaway cluster, then makes
// sure the migrated template exists.
func startPostgres() (*pgServer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), serverTimeout)
	defer cancel()

	rawURL := os.Getenv(TestDatabaseURLEnv)
	if rawURL == "" {
		var err error
		if rawURL, err = startCluster(ctx); err != nil {
			return nil, err
		}
	}
	base, err := url.Parse(rawURL)
	if err != nil || (base.Scheme != "postgres" && base.Scheme != "postgresql") {
		return nil, fmt.Errorf("%s must be a postgres:// URL", TestDatabaseURLEnv)
	}
	admin, err := sql.Open("postgres", rawURL)
	if err != nil {
		return nil, fmt.Errorf("open admin connection: %w", err)
	}
	admin.SetMaxOpenConns(4)
	s := &pgServer{base: base, admin: admin}
	var version int
	if err := admin.QueryRowContext(ctx, serverVersionQuery).Scan(&version); err != nil {
		admin.Close()
		return nil, fmt.Errorf("connect to test PostgreSQL: %w", err)
	}
	if version >= 150000 {
		s.cloneOptions = " STRATEGY FILE_COPY"
	}
	if s.template, err = templateName(); err != nil {
		admin.Close()
		return nil, err
	}
	if err := s.ensureTemplate(ctx); err != nil {
		admin.Close()
		return nil, err
	}
	return s, nil
}

// startCluster starts this test binary's own cluster, which a watchdog stops and deletes
// when the binary ends, however it ends.
func startCluster(ctx context.Context) (string, error) {
	// Not t.TempDir: the directory must outlive the test that happens to start it, and
	// be reachable by the OS user the server runs as.
	dir, err := os.MkdirTemp("", "surveyhooks-test-pg-")
	if err != nil {
		return "", fmt.Errorf("create test PostgreSQL directory: %w", err)
	}
	c, err := localpg.Start(ctx, localpg.Options{DataDir: dir, Ephemeral: true})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("start test PostgreSQL (or set %s): %w", TestDatabaseURLEnv, err)
	}
	return c.LocalURL("postgres"), nil
}

// templateName names the template after the migrations' content: binaries sharing a
// server through TEST_DATABASE_URL share a template only when their schemas are equal.
func templateName() (string, error) {
	migrations, err := schema.Versions()
	if err != nil {
		return "", fmt.Errorf("list migrations: %w", err)
	}
	h := sha256.New()
	for _, m := range migrations {
		fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00", m.Version, m.Name, m.Up, m.Down)
	}
	return "surveyhooks_template_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ensureTemplate builds the template under a temporary name and renames it when complete,
// so that no binary ever clones a half-migrated one.
func (s *pgServer) ensureTemplate(ctx context.Context) (err error) {
	conn, err := s.admin.Conn(ctx)
	if err != nil {
		return fmt.Errorf("get admin connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, lockQuery, templateLockKey); err != nil {
		return fmt.Errorf("take template lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), unlockQuery, templateLockKey); uerr != nil {
			err = errors.Join(err, fmt.Errorf("release template lock: %w", uerr))
		}
	}()

	var exists bool
	if err := conn.QueryRowContext(ctx, databaseExistsQuery, s.template).Scan(&exists); err != nil {
		return fmt.Errorf("look up template database: %w", err)
	}
	if exists {
		return nil
	}
	build := s.template + "_build"
	for _, stmt := range []string{
		"DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(build) + " WITH (FORCE)", // left by a killed binary
		"CREATE DATABASE " + pq.QuoteIdentifier(build),
	} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create template database: %w", err)
		}
	}
	db, err := sql.Open("postgres", s.url(build))
	if err != nil {
		return fmt.Errorf("open template database: %w", err)
	}
	err = store.Migrate(ctx, db, Keyring())
	// Close before renaming and cloning, which both refuse a database in use.
	db.Close()
	if err != nil {
		return fmt.Errorf("migrate template database: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "ALTER DATABASE "+pq.QuoteIdentifier(build)+" RENAME TO "+pq.QuoteIdentifier(s.template)); err != nil {
		return fmt.Errorf("rename template database: %w", err)
	}
	return nil
}

// clone creates a database from the template and returns its name.
func (s *pgServer) clone(ctx context.Context) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	name := "test_" + hex.EncodeToString(b[:])
	cloneMu.Lock()
	defer cloneMu.Unlock()
	stmt := "CREATE DATABASE " + pq.QuoteIdentifier(name) + " TEMPLATE " + pq.QuoteIdentifier(s.template) + s.cloneOptions
	if _, err := s.admin.ExecContext(ctx, stmt); err != nil {
		return "", fmt.Errorf("create test database: %w", err)
	}
	return name, nil
}

// url is the URL of database on the server, with the base URL's user and options.
func (s *pgServer) url(database string) string {
	u := *s.base
	u.Path = "/" + database
	u.RawPath = ""
	return u.String()
}
