// Package temporalcluster runs a Temporal cluster of several nodes as processes on
// loopback for the e2e tests: the official server binary built from the
// go.temporal.io/server module this repository pins, each node running every service,
// persistence and visibility on PostgreSQL, the schema set up by the module's own SQL tool,
// and a TCP load balancer in front of the frontends.
package temporalcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// serverModule is the module whose server and SQL tool the cluster runs.
const serverModule = "go.temporal.io/server"

// Binaries are the two programs of the server module that a cluster needs.
type Binaries struct {
	// Version is the module version they were built from, such as v1.32.1.
	Version string
	// Server is temporal-server (cmd/server).
	Server string
	// SQLTool is temporal-sql-tool (cmd/tools/sql).
	SQLTool string
	// Built says whether this call built them (false: found in the cache).
	Built bool
}

// ServerVersion is the version of go.temporal.io/server that go.mod pins: the one linked
// into the running binary, or, for a test binary (which records no dependencies), the one
// `go list -m` reports from the working directory's module.
func ServerVersion() (string, error) {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == serverModule {
				if dep.Replace != nil {
					return "", fmt.Errorf("%s is replaced by %s: no official build to run", serverModule, dep.Replace.Path)
				}
				return dep.Version, nil
			}
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}} {{with .Replace}}{{.Path}}{{end}}", serverModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", serverModule, err)
	}
	version, replaced, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if replaced != "" {
		return "", fmt.Errorf("%s is replaced by %s: no official build to run", serverModule, replaced)
	}
	if version == "" {
		return "", fmt.Errorf("%s is not a dependency of this module", serverModule)
	}
	return version, nil
}

// Build returns temporal-server and temporal-sql-tool of the pinned module version, built
// with this Go version into the user cache directory, keyed by both versions: the first
// call on a machine takes a while, the next ones find them. Concurrent callers (test
// binaries of several packages) wait for one build under a file lock.
//
// The build runs in a scratch module that requires what this repository's go.mod requires
// (found from the working directory; without one, the server module alone), so it
// compiles against the dependency versions the tests already compiled, and the build cache
// makes it cheap; the server's own entry points add a few modules (its CLI library), which
// `-mod=mod` resolves from the server module's requirements.
func Build(ctx context.Context) (Binaries, error) {
	version, err := ServerVersion()
	if err != nil {
		return Binaries{}, err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return Binaries{}, fmt.Errorf("find the user cache directory: %w", err)
	}
	dir := filepath.Join(cache, "surveyhooks", fmt.Sprintf("temporal-server-%s-%s-%s-%s", version, runtime.Version(), runtime.GOOS, runtime.GOARCH))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("create %s: %w", dir, err)
	}
	bins := Binaries{
		Version: version,
		Server:  filepath.Join(dir, "temporal-server"),
		SQLTool: filepath.Join(dir, "temporal-sql-tool"),
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return Binaries{}, err
	}
	defer unlock()
	if executable(bins.Server) && executable(bins.SQLTool) {
		return bins, nil
	}

	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return Binaries{}, fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(work)
	if err := scratchModule(work, version); err != nil {
		return Binaries{}, err
	}
	out := filepath.Join(work, "bin")
	cmd := exec.CommandContext(ctx, "go", "build", "-mod=mod", "-o", out+string(filepath.Separator),
		serverModule+"/cmd/server", serverModule+"/cmd/tools/sql")
	cmd.Dir = work
	began := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("go build the Temporal server %s: %w\n%s", version, err, b)
	}
	fmt.Fprintf(os.Stderr, "temporalcluster: built the Temporal server %s with %s in %v, cached in %s\n",
		version, runtime.Version(), time.Since(began).Round(time.Second), dir)
	for from, to := range map[string]string{"server": bins.Server, "sql": bins.SQLTool} {
		if err := os.Rename(filepath.Join(out, from), to); err != nil {
			return Binaries{}, fmt.Errorf("move the built %s: %w", from, err)
		}
	}
	bins.Built = true
	return bins, nil
}

// scratchModule writes the go.mod (and go.sum) of the build module in dir: a copy of the
// working directory's module's when there is one, else one requiring the server module.
func scratchModule(dir, version string) error {
	goMod, _ := exec.Command("go", "env", "GOMOD").Output()
	src := strings.TrimSpace(string(goMod))
	mod := []byte(fmt.Sprintf("module surveyhooks.local/temporal-build\n\ngo %s\n\nrequire %s %s\n",
		strings.TrimPrefix(runtime.Version(), "go"), serverModule, version))
	var sum []byte
	if src != "" && src != os.DevNull {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		// The same requirements under another module path; replace directives are
		// relative to the original folder and so are left out.
		var lines []string
		skip := false
		for line := range strings.Lines(string(b)) {
			trimmed := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(trimmed, "module "):
				line = "module surveyhooks.local/temporal-build\n"
			case strings.HasPrefix(trimmed, "replace (") || strings.HasPrefix(trimmed, "tool ("):
				skip = true
				continue
			case skip && trimmed == ")":
				skip = false
				continue
			case skip || strings.HasPrefix(trimmed, "replace ") || strings.HasPrefix(trimmed, "tool "):
				continue
			}
			lines = append(lines, line)
		}
		mod = []byte(strings.Join(lines, ""))
		sum, _ = os.ReadFile(filepath.Join(filepath.Dir(src), "go.sum"))
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), mod, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)
}

// lockFile takes an exclusive lock on path, waiting for it until ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the lock %s (another build of the Temporal server): %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func executable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// oneLine shortens command output for an error message.
func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}
