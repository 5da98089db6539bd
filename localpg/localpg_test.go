package localpg

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
)

// newDataDir returns a path for a cluster that the server user can reach: t.TempDir is
// private to root when tests run as root.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "localpg-test-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// newParentDir returns a directory, open to the server user, to create clusters in.
func newParentDir(t *testing.T) string {
	t.Helper()
	dir := newDataDir(t)
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func setting(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT current_setting($1)", name).Scan(&v))
	return v
}

func TestStartEphemeral(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := newDataDir(t)

	c, err := Start(ctx, Options{DataDir: dir, Ephemeral: true})
	require.NoError(t, err)
	require.NotZero(t, c.Port)
	require.False(t, c.Reused)

	db := openDB(t, c.URL("postgres"))
	require.Equal(t, "off", setting(t, db, "fsync"))
	// A commit writes its own WAL: cheaper with fsync off than waking the WAL writer.
	require.Equal(t, "on", setting(t, db, "synchronous_commit"))
	require.Equal(t, "127.0.0.1", setting(t, db, "listen_addresses"))
	require.Equal(t, "200", setting(t, db, "max_connections"))
	require.Equal(t, "UTF8", setting(t, db, "server_encoding"))

	// LocalURL goes through the Unix socket (no client address), URL through TCP.
	require.Contains(t, c.LocalURL("postgres"), "host="+url.QueryEscape(c.DataDir))
	var overTCP bool
	require.NoError(t, db.QueryRow(`SELECT inet_client_addr() IS NOT NULL`).Scan(&overTCP))
	require.True(t, overTCP)
	for _, driver := range []string{"postgres", "pgx"} { // lib/pq and pgx, as the application uses both
		local, err := sql.Open(driver, c.LocalURL("postgres"))
		require.NoError(t, err)
		require.NoError(t, local.QueryRow(`SELECT inet_client_addr() IS NOT NULL`).Scan(&overTCP), driver)
		require.False(t, overTCP, driver)
		local.Close()
	}

	// CreateDatabase is idempotent and the new database accepts connections.
	require.NoError(t, c.CreateDatabase(ctx, "app-db"))
	require.NoError(t, c.CreateDatabase(ctx, "app-db"))
	appDB := openDB(t, c.URL("app-db"))
	var name string
	require.NoError(t, appDB.QueryRowContext(ctx, "SELECT current_database()").Scan(&name))
	require.Equal(t, "app-db", name)
	require.NoError(t, appDB.Close())

	// A second Start on the same directory adopts the running server.
	again, err := Start(ctx, Options{DataDir: dir, Ephemeral: true})
	require.NoError(t, err)
	require.True(t, again.Reused)
	require.Equal(t, c.Port, again.Port)

	// Stop shuts the server down and deletes the ephemeral cluster.
	require.NoError(t, c.Stop(ctx))
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Error(t, db.PingContext(ctx))
	require.NoError(t, c.Stop(ctx), "stopping twice")
}

func TestStartPersistentRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(newParentDir(t), "nested", "postgres")

	// A directory the server user can reach stays where it is, its missing parents too.
	elsewhere := filepath.Join(newParentDir(t), "elsewhere")
	c, err := Start(ctx, Options{DataDir: dir, Elsewhere: elsewhere})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.WithoutCancel(ctx)) })
	require.Equal(t, dir, c.DataDir)
	_, err = os.Stat(elsewhere)
	require.ErrorIs(t, err, os.ErrNotExist)
	db := openDB(t, c.URL("postgres"))
	require.Equal(t, "on", setting(t, db, "fsync"))
	_, err = db.ExecContext(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	require.NoError(t, c.Stop(ctx))
	_, err = os.Stat(filepath.Join(dir, "PG_VERSION"))
	require.NoError(t, err, "a persistent cluster stays on disk")

	c2, err := Start(ctx, Options{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c2.Stop(context.WithoutCancel(ctx)) })
	require.False(t, c2.Reused)
	var v string
	require.NoError(t, openDB(t, c2.URL("postgres")).QueryRowContext(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, "survives", v)

	log, err := os.ReadFile(filepath.Join(dir, logName))
	require.NoError(t, err)
	require.Contains(t, string(log), "database system is ready to accept connections")
}

func TestStartPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	_, err = Start(t.Context(), Options{DataDir: newDataDir(t), Port: port, Ephemeral: true})
	require.ErrorContains(t, err, fmt.Sprintf("port %d on 127.0.0.1 is in use", port))
}

func TestStartRejectsForeignDirectory(t *testing.T) {
	t.Parallel()
	dir := newDataDir(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))

	_, err := Start(t.Context(), Options{DataDir: dir})
	require.ErrorContains(t, err, "neither empty nor a PostgreSQL cluster")
	_, err = Start(t.Context(), Options{DataDir: dir, Ephemeral: true})
	require.ErrorContains(t, err, "needs an empty data directory")
	_, err = os.Stat(filepath.Join(dir, "notes.txt"))
	require.NoError(t, err, "the directory is left alone")
}

func TestStartUnreachableParent(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to another OS user")
	}
	parent := newDataDir(t) // os.MkdirTemp makes it 0700, owned by root
	_, err := Start(t.Context(), Options{DataDir: filepath.Join(parent, "pg")})
	require.ErrorContains(t, err, "directory "+parent+" cannot be entered by OS user \"postgres\"")
	require.NotContains(t, err.Error(), "\n")
}

func TestFindBinariesMissing(t *testing.T) {
	// Not parallel: it changes PATH and a package variable.
	t.Setenv("PATH", t.TempDir())
	old := distroBinGlob
	distroBinGlob = filepath.Join(t.TempDir(), "*", "bin")
	t.Cleanup(func() { distroBinGlob = old })

	_, err := findBinaries()
	require.ErrorIs(t, err, ErrNoBinaries)
	_, err = Start(t.Context(), Options{DataDir: filepath.Join(t.TempDir(), "pg")})
	require.ErrorIs(t, err, ErrNoBinaries)
	require.Equal(t, "PostgreSQL server binaries (initdb, pg_ctl) not found: install them "+
		"(Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL", err.Error())
}

func TestFindBinariesDistroDirectory(t *testing.T) {
	// Not parallel: it changes PATH and a package variable.
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "13"} {
		dir := filepath.Join(root, v, "bin")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for _, name := range []string{"initdb", "pg_ctl"} {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755))
		}
	}
	t.Setenv("PATH", t.TempDir())
	old := distroBinGlob
	distroBinGlob = filepath.Join(root, "*", "bin")
	t.Cleanup(func() { distroBinGlob = old })

	b, err := findBinaries()
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "15", "bin", "initdb"), b.initdb)
	require.Equal(t, filepath.Join(root, "15", "bin", "pg_ctl"), b.pgCtl)
}

// helperDirEnv makes the test binary act as a process that starts an ephemeral cluster
// and then waits to be killed.
const helperDirEnv = "LOCALPG_TEST_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDirEnv); dir != "" {
		c, err := Start(context.Background(), Options{DataDir: dir, Ephemeral: true})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(c.URL("postgres"))
		select {} // until killed
	}
	os.Exit(m.Run())
}

func TestEphemeralClusterRemovedWhenOwnerKilled(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(newParentDir(t), "pg")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	u, err := url.Parse(strings.TrimSpace(line))
	require.NoError(t, err, "helper said %q", line)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err, "helper said %q", line)
	db := openDB(t, u.String())
	require.NoError(t, db.PingContext(t.Context()))
	require.NoError(t, db.Close())

	// SIGKILL: no deferred function, no cleanup of the owner runs.
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()

	require.Eventually(t, func() bool {
		_, err := os.Stat(dir)
		return errors.Is(err, os.ErrNotExist)
	}, 30*time.Second, 50*time.Millisecond, "data directory removed")
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err == nil {
		conn.Close()
	}
	require.Error(t, err, "server stopped")
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	require.Positive(t, compareVersions("15", "9.6"))
	require.Negative(t, compareVersions("9.6", "10"))
	require.Zero(t, compareVersions("15", "15"))
	require.Positive(t, compareVersions("9.6", "9.5"))
}

func TestStartFailureQuotesLog(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := newDataDir(t)
	c, err := Start(ctx, Options{DataDir: dir})
	require.NoError(t, err)
	require.NoError(t, c.Stop(ctx))
	conf, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = conf.WriteString("shared_buffers = 'plenty'\n")
	require.NoError(t, err)
	require.NoError(t, conf.Close())

	_, err = Start(ctx, Options{DataDir: dir})
	require.ErrorContains(t, err, `invalid value for parameter "shared_buffers": "plenty"`)
	require.ErrorContains(t, err, filepath.Join(dir, logName))
	require.NotContains(t, err.Error(), "\n")
	t.Log(err)
}
