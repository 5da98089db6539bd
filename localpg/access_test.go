package localpg

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// withoutPassword is rawURL as another local user would write it: all but the password.
func withoutPassword(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	u.User = url.User(u.User.Username())
	return u.String()
}

// requireRefused checks that a connection to rawURL is turned away for its credentials.
func requireRefused(t *testing.T, driver, rawURL string) {
	t.Helper()
	db, err := sql.Open(driver, rawURL)
	require.NoError(t, err)
	defer db.Close()
	err = db.PingContext(t.Context())
	require.Error(t, err, "%s connects without the password", driver)
	require.Contains(t, err.Error(), "password authentication failed", driver)
}

func TestStartAsksEveryConnectionForThePassword(t *testing.T) {
	t.Parallel()
	c, err := Start(t.Context(), Options{DataDir: newDataDir(t), Ephemeral: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.WithoutCancel(t.Context())) })

	// Any local user reaches 127.0.0.1: without the password, the server turns them away.
	for _, driver := range []string{"postgres", "pgx"} {
		requireRefused(t, driver, withoutPassword(t, c.URL("postgres")))
		requireRefused(t, driver, withoutPassword(t, c.LocalURL("postgres")))
	}
	require.NoError(t, openDB(t, c.URL("postgres")).PingContext(t.Context()))

	fi, err := os.Stat(filepath.Join(c.DataDir, PasswordFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	pw, err := readPassword(c.DataDir)
	require.NoError(t, err)
	require.Len(t, pw, 32)
	u, err := url.Parse(c.URL("postgres"))
	require.NoError(t, err)
	got, _ := u.User.Password()
	require.Equal(t, pw, got)
	// The data directory, socket included, is its owner's alone.
	fi, err = os.Stat(c.DataDir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

// TestStartGivesAnOlderClusterAPassword starts a cluster as clusters were made before they
// had a password: initdb's trust in pg_hba.conf and no password file.
func TestStartGivesAnOlderClusterAPassword(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := filepath.Join(newParentDir(t), "pg")
	c, err := Start(ctx, Options{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.WithoutCancel(ctx)) })
	_, err = openDB(t, c.URL("postgres")).ExecContext(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")
	require.NoError(t, err)
	old := c.password

	// A server that runs with a password we do not know is left running, with the fix.
	require.NoError(t, os.Remove(filepath.Join(dir, PasswordFile)))
	_, err = Start(ctx, Options{DataDir: dir})
	require.ErrorContains(t, err, "without a password we know")
	require.ErrorContains(t, err, "stop it with ")
	require.ErrorContains(t, err, "pg_ctl' stop -D '"+dir+"'")
	require.NoError(t, openDB(t, c.URL("postgres")).PingContext(ctx), "still running")

	require.NoError(t, c.Stop(ctx))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pg_hba.conf"),
		[]byte("local all all trust\nhost all all 127.0.0.1/32 trust\n"), 0o600))
	c2, err := Start(ctx, Options{DataDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c2.Stop(context.WithoutCancel(ctx)) })
	require.NotEqual(t, old, c2.password)
	requireRefused(t, "postgres", withoutPassword(t, c2.URL("postgres")))
	var v string
	require.NoError(t, openDB(t, c2.URL("postgres")).QueryRowContext(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, "survives", v)
}

// privateParent returns a directory that only root can enter, as /root is.
func privateParent(t *testing.T) string {
	t.Helper()
	dir := newDataDir(t) // os.MkdirTemp makes it 0700, owned by root
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	return dir
}

func TestStartElsewhereWhenDataDirUnreachable(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to another OS user")
	}
	ctx := t.Context()
	home := privateParent(t)
	dataDir := filepath.Join(home, "checkout", ".data", "postgres")
	elsewhere := filepath.Join(newParentDir(t), "lib", "checkout-1234")

	c, err := Start(ctx, Options{DataDir: dataDir, Elsewhere: elsewhere})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.WithoutCancel(ctx)) })
	require.Equal(t, elsewhere, c.DataDir)
	target, err := os.Readlink(dataDir)
	require.NoError(t, err)
	require.Equal(t, elsewhere, target)
	fi, err := os.Stat(elsewhere)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.Equal(t, c.run.cred.Uid, fi.Sys().(*syscall.Stat_t).Uid, "owned by the server user")
	_, err = openDB(t, c.URL("postgres")).ExecContext(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')")
	require.NoError(t, err)
	require.NoError(t, c.Stop(ctx))

	// The data folder moves; its link still finds the cluster, whatever Elsewhere now says.
	moved := filepath.Join(home, "moved")
	require.NoError(t, os.Rename(filepath.Join(home, "checkout"), moved))
	movedDataDir := filepath.Join(moved, ".data", "postgres")
	c2, err := Start(ctx, Options{DataDir: movedDataDir, Elsewhere: elsewhere + "-other"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c2.Stop(context.WithoutCancel(ctx)) })
	require.Equal(t, elsewhere, c2.DataDir)
	var v string
	require.NoError(t, openDB(t, c2.URL("postgres")).QueryRowContext(ctx, "SELECT v FROM kept").Scan(&v))
	require.Equal(t, "survives", v)
	require.NoError(t, c2.Stop(ctx))
	_, err = os.Stat(elsewhere + "-other")
	require.ErrorIs(t, err, os.ErrNotExist)

	// A data folder made afresh does not silently take the old cluster, nor remove it.
	require.NoError(t, os.Remove(movedDataDir))
	_, err = Start(ctx, Options{DataDir: movedDataDir, Elsewhere: elsewhere})
	require.ErrorContains(t, err, "run ln -s "+elsewhere+" "+movedDataDir+"; to start afresh, rm -r "+elsewhere)
	require.NotContains(t, err.Error(), "\n")
	_, err = os.Stat(filepath.Join(elsewhere, "PG_VERSION"))
	require.NoError(t, err)

	// A link to a cluster that is gone is reported, not followed by a new cluster.
	require.NoError(t, os.Symlink(elsewhere+"-gone", movedDataDir))
	_, err = Start(ctx, Options{DataDir: movedDataDir, Elsewhere: elsewhere})
	require.ErrorContains(t, err, "which is gone: to start with an empty database, run rm "+movedDataDir)
	_, err = os.Stat(elsewhere + "-gone")
	require.ErrorIs(t, err, os.ErrNotExist)
}
