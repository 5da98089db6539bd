package e2e_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestDevAsRootFromPrivateFolder runs `surveyhooks dev` as root from a data folder inside
// a directory of mode 700, as from a checkout under /root, which the OS user postgres
// cannot enter: PostgreSQL's files go elsewhere and the data folder links to them. A
// webhook survives a clean restart and a killed dev; each stop leaves no process behind.
func TestDevAsRootFromPrivateFolder(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("runs dev as root")
	}
	binary(t)
	home := privateHome(t)
	dataDir := filepath.Join(home, "surveyhooks", ".surveyhooks")
	addr := freeAddr(t)
	env := []string{
		"SURVEYHOOKS_DATA_DIR=" + dataDir,
		"SURVEYHOOKS_ADDR=" + addr,
		"TEMPORAL_ADDRESS=" + freeAddr(t),
		"TEMPORAL_UI_ADDR=" + freeAddr(t),
		"SURVEYHOOKS_METRICS_ADDR=" + freeAddr(t),
		"SURVEYHOOKS_ALLOW_HTTP=true",
		"SURVEYHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
	}
	linkPath := filepath.Join(dataDir, "postgres")
	t.Cleanup(func() { removeLinkedCluster(t, linkPath) })

	dev := startProc(t, "dev-root-1", env, "dev")
	waitReady(t, dev, "http://"+addr, 3*time.Minute)
	clusterDir, err := os.Readlink(linkPath)
	require.NoError(t, err, "the data folder links to PostgreSQL's files")
	require.True(t, strings.HasPrefix(clusterDir, "/var/lib/surveyhooks/surveyhooks-"), clusterDir)
	fi, err := os.Stat(clusterDir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	require.Contains(t, readLog(t, dev), "files in "+clusterDir+" (linked from the data folder)")
	// Temporal's files and the API key stay in the data folder.
	for _, name := range []string{"temporal", "api-key"} {
		_, err := os.Lstat(filepath.Join(dataDir, name))
		require.NoError(t, err, name)
	}
	key, err := os.ReadFile(filepath.Join(dataDir, "api-key"))
	require.NoError(t, err)
	api := &apiClient{url: "http://" + addr, key: strings.TrimSpace(string(key)), http: &http.Client{Timeout: 30 * time.Second}}
	hookID := api.createWebhook(t, "http://127.0.0.1:1/hook", "*")
	requireWebhook := func() {
		t.Helper()
		hook, err := api.typed().GetWebhookWithResponse(t.Context(), surveyID, uuid.MustParse(hookID))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, hook.StatusCode(), string(hook.Body))
		require.Equal(t, hookID, hook.JSON200.ID.String())
	}
	pids := clusterProcesses(t, clusterDir)
	dev.terminate(t, time.Minute)
	requireGone(t, pids, clusterDir)

	dev = startProc(t, "dev-root-2", env, "dev")
	waitReady(t, dev, api.url, 2*time.Minute)
	requireWebhook()
	require.Contains(t, readLog(t, dev), "files in "+clusterDir+" (linked from the data folder)")

	// A killed dev leaves PostgreSQL running; the next one finds it and stops it.
	pids = clusterProcesses(t, clusterDir)
	dev.kill(t)
	dev = startProc(t, "dev-root-3", env, "dev")
	waitReady(t, dev, api.url, 2*time.Minute)
	requireWebhook()
	require.Contains(t, readLog(t, dev), "reusing running PostgreSQL")
	require.Subset(t, clusterProcesses(t, clusterDir), pids[:1], "the same postmaster")
	dev.terminate(t, time.Minute)
	requireGone(t, pids, clusterDir)
}

// TestDevDoesNotShowGivenKeys: a key given in SURVEYHOOKS_API_KEYS is the user's secret,
// kept out of dev's output; it works all the same.
func TestDevDoesNotShowGivenKeys(t *testing.T) {
	t.Parallel()
	binary(t)
	dataDir := devDataDir(t)
	addr := freeAddr(t)
	const given = "given-key-7f3a9c1e5b2d4068"
	dev := startProc(t, "dev-keys", []string{
		"SURVEYHOOKS_DATA_DIR=" + dataDir,
		"SURVEYHOOKS_ADDR=" + addr,
		"TEMPORAL_ADDRESS=" + freeAddr(t),
		"TEMPORAL_UI_ADDR=" + freeAddr(t),
		"SURVEYHOOKS_METRICS_ADDR=" + freeAddr(t),
		"SURVEYHOOKS_ALLOW_HTTP=true",
		"SURVEYHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
		"SURVEYHOOKS_API_KEYS=" + given,
	}, "dev")
	waitReady(t, dev, "http://"+addr, 3*time.Minute)
	api := &apiClient{url: "http://" + addr, key: given, http: &http.Client{Timeout: 30 * time.Second}}
	api.createWebhook(t, "http://127.0.0.1:1/hook", "*")

	out := readLog(t, dev)
	require.Contains(t, out, "surveyhooks dev is running")
	require.Contains(t, out, "API key      from SURVEYHOOKS_API_KEYS (not shown)")
	require.NotContains(t, out, given)
	_, err := os.Stat(filepath.Join(dataDir, "api-key"))
	require.ErrorIs(t, err, os.ErrNotExist, "no key generated")
	dev.terminate(t, time.Minute)
}

// privateHome is a directory that only root can enter, as /root is. It is removed when
// the test ends.
func privateHome(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "surveyhooks-e2e-home-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o700))
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(dir)) })
	return dir
}

// removeLinkedCluster stops a PostgreSQL still running on the cluster that link points
// to, and removes that cluster, which dev keeps outside the test's folders.
func removeLinkedCluster(t *testing.T, link string) {
	target, err := os.Readlink(link)
	if err != nil {
		return // dev never got as far as placing the cluster
	}
	stopLeftPostgres(t, target)
	require.NoError(t, os.RemoveAll(target))
}

// readLog returns all the output of p so far.
func readLog(t *testing.T, p *proc) string {
	t.Helper()
	b, err := os.ReadFile(p.log)
	require.NoError(t, err)
	return string(b)
}

// clusterProcesses returns the PIDs of the PostgreSQL server running on clusterDir: the
// postmaster first, then its children (whose command lines name no directory).
func clusterProcesses(t *testing.T, clusterDir string) []int {
	t.Helper()
	pidFile, err := os.ReadFile(filepath.Join(clusterDir, "postmaster.pid"))
	require.NoError(t, err)
	postmaster, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	require.NoError(t, err)
	pids := []int{postmaster}
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, ppid, ok := procStat(pid); ok && state != 'Z' && ppid == postmaster {
			pids = append(pids, pid)
		}
	}
	require.Greater(t, len(pids), 1, "a postmaster has children (checkpointer, writer...)")
	return pids
}

// procStat reads a process's state (R, S, Z...) and parent from /proc; ok is false once
// the process is gone.
func procStat(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name, in parentheses, may hold spaces: fields count from the last ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
	return fields[0][0], ppid, err == nil
}

// requireGone checks that none of pids runs any more, nor any process that names
// clusterDir, and that the server left no pid file.
func requireGone(t *testing.T, pids []int, clusterDir string) {
	t.Helper()
	for _, pid := range pids {
		// A zombie has ended; only its parent's wait is missing.
		state, _, ok := procStat(pid)
		require.True(t, !ok || state == 'Z', "process %d is still running (state %c)", pid, state)
	}
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil {
			require.NotContains(t, string(cmdline), clusterDir, "process %s", e.Name())
		}
	}
	_, err = os.Stat(filepath.Join(clusterDir, "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
