package localpg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// watchdogScript runs in a process of its own. Its stdin is the read end of a pipe whose
// only write end lives in our process, so `read` returns when our process ends, whether it
// exits, panics or is killed. It then does what `pg_ctl stop -m immediate` does (SIGQUIT to
// the postmaster; pg_ctl itself refuses to run as root) and deletes the data directory.
const watchdogScript = `read -r _
pidfile="$1/postmaster.pid"
if [ -f "$pidfile" ]; then
	pid=$(head -n 1 "$pidfile")
	if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
		i=0
		while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 300 ]; do
			sleep 0.1
			i=$((i + 1))
		done
	fi
fi
rm -rf "$1"
`

// liveWatchdogPipes keeps the write ends of the watchdogs' pipes reachable: if the garbage
// collector finalised one, its watchdog would delete a cluster still in use.
var liveWatchdogPipes sync.Map // *os.File -> struct{}

// watchdog deletes an ephemeral cluster once this process is gone, or when fire is called.
type watchdog struct {
	pipe *os.File
	done chan struct{}
}

func startWatchdog(dataDir string) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create watchdog pipe: %w", err)
	}
	defer r.Close() // the child has its own copy
	// Not CommandContext: the watchdog must outlive any context, that is its point.
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "localpg-watchdog", dataDir)
	cmd.Stdin = r
	cmd.Dir = "/"
	// A process group of its own, so that Ctrl-C on the terminal does not stop it before
	// it has cleaned up. Its output goes to /dev/null and never holds `go test`'s pipes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	liveWatchdogPipes.Store(w, struct{}{})
	wd := &watchdog{pipe: w, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // reap it; the script reports nothing worth acting on
		close(wd.done)
	}()
	return wd, nil
}

// fire makes the watchdog stop the server and delete the data directory now, and waits
// until it has.
func (wd *watchdog) fire(ctx context.Context) error {
	if _, loaded := liveWatchdogPipes.LoadAndDelete(wd.pipe); loaded {
		wd.pipe.Close()
	}
	select {
	case <-wd.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for data directory removal: %w", ctx.Err())
	}
}
