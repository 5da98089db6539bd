package localpg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// serverUserName is the OS user that runs initdb and the server when we are root:
// PostgreSQL refuses to run as root, and Debian's packages create this user.
const serverUserName = "postgres"

// runner starts PostgreSQL programs, as an unprivileged OS user when the current process
// is root.
type runner struct {
	// cred is nil when the programs run as the current user.
	cred     *syscall.Credential
	username string
}

func newRunner() (runner, error) {
	if os.Geteuid() != 0 {
		return runner{}, nil
	}
	u, err := user.Lookup(serverUserName)
	if err != nil {
		return runner{}, fmt.Errorf("running as root, PostgreSQL needs the unprivileged OS user %q: %w", serverUserName, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return runner{}, fmt.Errorf("parse uid of OS user %q: %w", serverUserName, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return runner{}, fmt.Errorf("parse gid of OS user %q: %w", serverUserName, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return runner{cred: cred, username: u.Username}, nil
}

// command prepares a PostgreSQL program with a clean environment.
func (r runner) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	// The server user may not be able to enter our working directory (e.g. /root), and
	// PostgreSQL programs resolve their own path relative to it.
	cmd.Dir = "/"
	cmd.Env = serverEnv()
	// pg_ctl's server redirects its output to the log file; should anything still hold our
	// output pipe, don't wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	if r.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	}
	return cmd
}

// serverEnv is our environment without PG* variables, which would otherwise change what
// initdb and pg_ctl do (PGDATA, PGPORT, PGOPTIONS...).
func serverEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PG") })
}

// own hands an empty data directory to the server user, who must own it.
func (r runner) own(dir string) error {
	if r.cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(r.cred.Uid), int(r.cred.Gid)); err != nil {
		return fmt.Errorf("hand %s to OS user %q: %w", dir, r.username, err)
	}
	return nil
}

// checkReachable fails with a one-line explanation when the server user cannot enter one
// of dir's parent directories: initdb's own message for that is obscure. Missing ones
// count as reachable, since they are created world-searchable.
func (r runner) checkReachable(dir string) error {
	if r.cred == nil {
		return nil
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) && d != filepath.Dir(d) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check data directory parent: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return errors.New("check data directory parent: no file owner information")
		}
		if !r.canEnter(fi.Mode().Perm(), st.Uid, st.Gid) {
			return fmt.Errorf("directory %s cannot be entered by OS user %q, which runs PostgreSQL: "+
				"choose a data directory elsewhere or run chmod o+x %s", d, r.username, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func (r runner) canEnter(perm os.FileMode, uid, gid uint32) bool {
	switch {
	case uid == r.cred.Uid:
		return perm&0o100 != 0
	case gid == r.cred.Gid || slices.Contains(r.cred.Groups, gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
