// Package localpg runs a PostgreSQL cluster from the server binaries installed on this
// machine: the persistent database of `surveyhooks dev` and the throwaway one of tests.
//
// The server listens on 127.0.0.1 (and on a Unix socket in its data directory when the
// path is short enough), and asks every connection for the superuser's password
// (scram-sha-256), kept in the data directory: other users of the machine reach the port
// but not the password.
package localpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Superuser is the role initdb creates and URL connects as.
const Superuser = "postgres"

const (
	// logName is the server log inside the data directory; start errors quote its tail.
	logName = "postgres.log"
	// startTimeout bounds pg_ctl's wait for the server; recovery after a crash can take a while.
	startTimeout = 120 * time.Second
	// maxSocketPath is the longest Unix socket path Linux accepts (sun_path less its NUL).
	maxSocketPath = 107
)

// Options configure Start.
type Options struct {
	// DataDir is the cluster directory. initdb creates the cluster when the directory is
	// missing or empty; an existing cluster is started as it is.
	DataDir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Ephemeral makes a throwaway cluster: no durability (fsync and full_page_writes off),
	// and the server is stopped and DataDir deleted once this process ends, even when it
	// is killed. DataDir must then be missing or empty.
	Ephemeral bool
	// Elsewhere is where the cluster goes when DataDir is missing and the OS user that runs
	// the server cannot reach it (root running from a folder under /root, mode 700).
	// Start then makes Elsewhere, for that user alone, and a symbolic link to it at
	// DataDir, by which the next Start finds it. Empty: such a DataDir is an error.
	Elsewhere string
	// Logger receives a line when the cluster is created, started or reused; nil discards.
	Logger *slog.Logger
}

// Cluster is a running PostgreSQL server.
type Cluster struct {
	// DataDir is the absolute path of the cluster directory: Options.DataDir, or where a
	// link there points.
	DataDir string
	// Port is the TCP port the server listens on at 127.0.0.1.
	Port int
	// Reused is true when the server was already running on DataDir and Start adopted it.
	Reused bool

	bins     binaries
	run      runner
	password string // the superuser's, from PasswordFile
	logger   *slog.Logger
	watchdog *watchdog // set for ephemeral clusters
}

// Start initialises DataDir when it holds no cluster, starts the server and waits until it
// accepts connections. A server already running on DataDir (say, left behind by a killed
// `surveyhooks dev`) is reused on the port it listens on, which may differ from opts.Port;
// opts.Ephemeral then changes nothing, the server stays as its starter configured it.
//
// Missing parent directories of DataDir are created world-searchable (0755): when we are
// root, the server runs as the OS user postgres, which must reach DataDir (see
// Options.Elsewhere for a DataDir it cannot reach).
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.DataDir == "" {
		return nil, errors.New("localpg: no data directory given")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("resolve data directory: %w", err)
	}
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	run, err := newRunner()
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if dataDir, err = run.place(dataDir, opts.Elsewhere); err != nil {
		return nil, err
	}
	c := &Cluster{DataDir: dataDir, bins: bins, run: run, logger: logger}

	port, running, err := c.runningPort(ctx)
	if err != nil {
		return nil, err
	}
	if running {
		c.Port, c.Reused = port, true
		if c.password, err = readPassword(dataDir); err != nil {
			return nil, fmt.Errorf("PostgreSQL runs on %s without a password we know (%w): stop it with %s",
				dataDir, err, c.stopCommand())
		}
		if opts.Port != 0 && opts.Port != port {
			logger.Warn("PostgreSQL already running on another port; reusing it",
				"data_dir", dataDir, "port", port, "requested_port", opts.Port)
		}
		if err := c.waitReady(ctx); err != nil {
			return nil, fmt.Errorf("reuse PostgreSQL running on %s: %w", dataDir, err)
		}
		logger.Info("reusing running PostgreSQL", "data_dir", dataDir, "port", port)
		return c, nil
	}

	if opts.Port != 0 {
		// Checked before a lengthy initdb; startServer checks again.
		if err := checkPortFree(opts.Port); err != nil {
			return nil, err
		}
	}
	if err := c.prepare(ctx, opts.Ephemeral); err != nil {
		return nil, err
	}
	if err := c.ensurePassword(ctx, opts.Ephemeral); err != nil {
		return nil, err
	}
	if err := c.startServer(ctx, opts); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("wait for PostgreSQL on port %d: %w", c.Port, err)
	}
	logger.Info("PostgreSQL started", "data_dir", dataDir, "port", c.Port)
	return c, nil
}

// URL is a connection URL (lib/pq and pgx read it alike) for database on this server, as
// the superuser, password included.
func (c *Cluster) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Superuser, c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// LocalURL is URL over the server's Unix socket when it has one (socketDir), for this
// machine's own connections: a statement's round trip skips the TCP stack on both sides,
// which costs less CPU per statement (BENCHMARKS.md). URL, over TCP, is the one to show
// people.
func (c *Cluster) LocalURL(database string) string {
	dir := c.socketDir(c.Port)
	if dir == "" {
		return c.URL(database)
	}
	// No host before the path: lib/pq would prefer it to the host parameter; pgx and
	// libpq read the socket directory and the port from the parameters alike.
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Superuser, c.password),
		Host:     "",
		Path:     "/" + database,
		RawQuery: url.Values{"host": {dir}, "port": {strconv.Itoa(c.Port)}, "sslmode": {"disable"}}.Encode(),
	}
	return u.String()
}

const (
	databaseExistsQuery = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`
	// duplicateDatabase is the SQLSTATE of CREATE DATABASE losing a race to another creator.
	duplicateDatabase = "42P04"
	// invalidAuthorization is the SQLSTATE class of a refused login.
	invalidAuthorization = "28"
)

// CreateDatabase creates the database unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("open maintenance database: %w", err)
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, databaseExistsQuery, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	// CREATE DATABASE takes no bind parameters: the name is quoted as an identifier.
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == duplicateDatabase {
			return nil
		}
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// Stop shuts the server down cleanly (pg_ctl stop -m fast), reused or not. For an
// ephemeral cluster it also deletes DataDir. Stopping a stopped cluster does nothing.
func (c *Cluster) Stop(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); err == nil {
		out, err := c.run.command(ctx, c.bins.pgCtl, "stop", "-D", c.DataDir, "-m", "fast", "-w", "-t", "60", "-s").CombinedOutput()
		if err != nil {
			return fmt.Errorf("stop PostgreSQL in %s: %s: %w", c.DataDir, oneLine(out), err)
		}
	}
	if c.watchdog != nil {
		return c.watchdog.fire(ctx)
	}
	return nil
}

// stopCommand is the shell command that stops the server on DataDir, for messages that
// leave it to a person.
func (c *Cluster) stopCommand() string {
	cmd := shellQuote(c.bins.pgCtl) + " stop -D " + shellQuote(c.DataDir)
	if c.run.cred != nil {
		cmd = "runuser -u " + c.run.username + " -- " + cmd
	}
	return cmd
}

// runningPort reports whether a server runs on the data directory and on which port.
func (c *Cluster) runningPort(ctx context.Context) (int, bool, error) {
	pidFile := filepath.Join(c.DataDir, "postmaster.pid")
	if _, err := os.Stat(pidFile); err != nil {
		return 0, false, nil // no server; a stale file after a crash is handled by postgres
	}
	// pg_ctl status exits 0 when the server runs, 3 when not (stale pid file).
	if err := c.run.command(ctx, c.bins.pgCtl, "status", "-D", c.DataDir).Run(); err != nil {
		return 0, false, nil
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", pidFile, err)
	}
	// Line 4 of postmaster.pid is the port (see PostgreSQL's pidfile.h).
	lines := strings.Split(string(data), "\n")
	if len(lines) < 4 {
		return 0, false, fmt.Errorf("read port from %s: file too short", pidFile)
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, false, fmt.Errorf("read port from %s: %w", pidFile, err)
	}
	return port, true, nil
}

// prepare makes sure DataDir holds a cluster the server user owns, running initdb when
// the directory is new or empty.
func (c *Cluster) prepare(ctx context.Context, ephemeral bool) error {
	if err := os.MkdirAll(filepath.Dir(c.DataDir), 0o755); err != nil {
		return fmt.Errorf("create parent of data directory: %w", err)
	}
	if err := c.run.checkReachable(c.DataDir); err != nil {
		return err
	}
	if err := os.Mkdir(c.DataDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create data directory: %w", err)
	}
	entries, err := os.ReadDir(c.DataDir)
	if err != nil {
		return fmt.Errorf("read data directory: %w", err)
	}
	if len(entries) > 0 {
		if ephemeral {
			return fmt.Errorf("ephemeral PostgreSQL needs an empty data directory, and %s is not", c.DataDir)
		}
		if _, err := os.Stat(filepath.Join(c.DataDir, "PG_VERSION")); err != nil {
			return fmt.Errorf("data directory %s is neither empty nor a PostgreSQL cluster", c.DataDir)
		}
		return nil
	}

	if err := c.run.own(c.DataDir); err != nil {
		return err
	}
	if ephemeral {
		// Before initdb: from here on, whatever happens to us, the directory goes away.
		wd, err := startWatchdog(c.DataDir)
		if err != nil {
			return err
		}
		c.watchdog = wd
	}
	args := []string{"-D", c.DataDir, "-U", Superuser, "-A", "trust", "-E", "UTF8", "--locale=C"}
	if ephemeral {
		args = append(args, "--no-sync")
	}
	start := time.Now()
	if out, err := c.run.command(ctx, c.bins.initdb, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("initdb %s: %s: %w", c.DataDir, lastLines(string(out), 3), err)
	}
	c.logger.Info("PostgreSQL cluster created", "data_dir", c.DataDir, "duration", time.Since(start))
	return nil
}

// startServer runs pg_ctl start. With a port picked at random, another process may grab
// it before the server binds it: then it tries another one.
func (c *Cluster) startServer(ctx context.Context, opts Options) error {
	const attempts = 3
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return err
			}
		} else if err := checkPortFree(port); err != nil {
			return err
		}
		err := c.pgCtlStart(ctx, port, opts.Ephemeral)
		if err == nil {
			c.Port = port
			return nil
		}
		if opts.Port != 0 || attempt == attempts || !errors.Is(err, errPortTaken) {
			return err
		}
	}
}

var errPortTaken = errors.New("port already in use")

func (c *Cluster) pgCtlStart(ctx context.Context, port int, ephemeral bool) error {
	logPath := filepath.Join(c.DataDir, logName)
	logStart := fileSize(logPath) // the log accumulates over restarts: quote only this one
	args := []string{"start", "-D", c.DataDir, "-l", logPath, "-w",
		"-t", strconv.Itoa(int(startTimeout.Seconds())), "-s", "-o", c.serverOptions(port, ephemeral)}
	out, err := c.run.command(ctx, c.bins.pgCtl, args...).CombinedOutput()
	if err == nil {
		return nil
	}
	tail := readTail(logPath, logStart)
	if strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use") {
		err = fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return fmt.Errorf("start PostgreSQL on 127.0.0.1:%d (%s; log %s: %s): %w",
		port, oneLine(out), logPath, lastLines(tail, 5), err)
}

// serverOptions are the server settings passed with pg_ctl -o. pg_ctl hands them to a
// shell, hence the quoting.
func (c *Cluster) serverOptions(port int, ephemeral bool) string {
	settings := []string{
		"listen_addresses=127.0.0.1",
		"port=" + strconv.Itoa(port),
		"unix_socket_directories=" + c.socketDir(port),
		"max_connections=200",
	}
	if ephemeral {
		// synchronous_commit stays on: with fsync off a commit's WAL write is a plain
		// write(2) by the backend itself, while an asynchronous commit signals the WAL
		// writer to do it, which costs PostgreSQL more CPU per statement.
		settings = append(settings, "fsync=off", "full_page_writes=off")
	}
	var b strings.Builder
	for _, s := range settings {
		b.WriteString(" -c ")
		b.WriteString(shellQuote(s))
	}
	return strings.TrimSpace(b.String())
}

// socketDir keeps the server's Unix socket inside the data directory, out of the shared
// /var/run/postgresql. A path too long for a socket, or one that would need quoting in the
// setting's list syntax, turns the socket off: we connect over TCP anyway.
func (c *Cluster) socketDir(port int) string {
	socket := filepath.Join(c.DataDir, ".s.PGSQL."+strconv.Itoa(port))
	if len(socket) > maxSocketPath || strings.ContainsAny(c.DataDir, ", \t\"'\\") {
		return ""
	}
	return c.DataDir
}

// waitReady pings the server until it answers; pg_ctl -w only knows that the postmaster
// is up, and a reused server may still be recovering.
func (c *Cluster) waitReady(ctx context.Context) error {
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("open maintenance database: %w", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return nil
		}
		// A refused password does not change by waiting.
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code.Class() == invalidAuthorization {
			return fmt.Errorf("ping: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ping: %w", err)
		case <-tick.C:
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func checkPortFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on 127.0.0.1 is in use: choose another one, or 0 for any free port", port)
	}
	return l.Close()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readTail returns what the file holds past offset, at most its last 4 KiB.
func readTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if size := fileSize(path); size-offset > 4096 {
		offset = size - 4096
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(f)
	return string(data)
}

// lastLines joins the last n non-empty lines of s with " | ", so that an error stays on
// one line.
func lastLines(s string, n int) string {
	var lines []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "no output"
	}
	return strings.Join(lines, " | ")
}

func oneLine(out []byte) string {
	return lastLines(string(out), 3)
}
