package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	apiclient "github.com/surveyhooks/surveyhooks/client"
	"github.com/surveyhooks/surveyhooks/localpg"
)

// TestDevRestartMidSchedule stops `surveyhooks dev` (SIGTERM) while a delivery waits for
// its second attempt and starts it again on the same data folder: the second and third
// attempts still happen, each at its time after the previous one.
func TestDevRestartMidSchedule(t *testing.T) {
	t.Parallel()
	// The second wait is long enough for dev to stop and start again within it; the third
	// one runs entirely on the restarted process.
	delays := []time.Duration{6 * time.Second, 3 * time.Second}
	binary(t)
	dataDir := devDataDir(t)
	addr := freeAddr(t)
	env := []string{
		"SURVEYHOOKS_DATA_DIR=" + dataDir,
		"SURVEYHOOKS_ADDR=" + addr,
		"TEMPORAL_ADDRESS=" + freeAddr(t),
		"TEMPORAL_UI_ADDR=" + freeAddr(t),
		"SURVEYHOOKS_METRICS_ADDR=" + freeAddr(t),
		fmt.Sprintf("SURVEYHOOKS_RETRY_DELAYS=%s,%s", delays[0], delays[1]),
		"SURVEYHOOKS_ATTEMPT_TIMEOUT=2s",
		"SURVEYHOOKS_ALLOW_HTTP=true",
		"SURVEYHOOKS_ALLOWED_CIDRS=127.0.0.0/8",
	}
	dev := startProc(t, "dev-1", env, "dev")
	began := time.Now()
	waitReady(t, dev, "http://"+addr, 3*time.Minute)
	t.Logf("dev ready in %v (first start: initdb, migrations, Temporal schema)", time.Since(began).Round(time.Millisecond))
	key, err := os.ReadFile(filepath.Join(dataDir, "api-key"))
	require.NoError(t, err)
	api := &apiClient{url: "http://" + addr, key: strings.TrimSpace(string(key)), http: &http.Client{Timeout: 30 * time.Second}}

	rc := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, nth int) string {
		if nth < 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return "500"
		}
		w.WriteHeader(http.StatusOK)
		return "200"
	})
	hookID := api.createWebhook(t, rc.URL, "*")
	status, out := api.publish(t, "dev-restart-1", "survey.response.completed")
	require.Equal(t, http.StatusCreated, status, out)
	require.Eventually(t, func() bool { return len(rc.got()) == 1 }, 30*time.Second, 10*time.Millisecond)
	first := rc.got()[0].At

	stopping := time.Now()
	dev.terminate(t, time.Minute)
	t.Logf("dev stopped %v after SIGTERM", time.Since(stopping).Round(time.Millisecond))
	require.Len(t, rc.got(), 1, "no attempt while dev is down")
	dev = startProc(t, "dev-2", env, "dev")
	waitReady(t, dev, api.url, time.Minute)
	restarted := time.Since(first)
	t.Logf("dev serving again %v after attempt 1", restarted.Round(time.Millisecond))

	require.Eventually(t, func() bool { return len(rc.got()) == 3 }, 60*time.Second, 10*time.Millisecond)
	hits := rc.got()
	gap2, gap3 := hits[1].At.Sub(first), hits[2].At.Sub(hits[1].At)
	t.Logf("attempt 2 came %v after attempt 1 (schedule %v), attempt 3 %v after attempt 2 (schedule %v)",
		gap2.Round(time.Millisecond), delays[0], gap3.Round(time.Millisecond), delays[1])
	// Never early; late only by the time the restart itself took beyond the wait.
	const slack = 1500 * time.Millisecond
	require.GreaterOrEqual(t, gap2, delays[0]-100*time.Millisecond)
	require.LessOrEqual(t, gap2, max(delays[0], restarted)+slack)
	require.GreaterOrEqual(t, gap3, delays[1]-100*time.Millisecond)
	require.LessOrEqual(t, gap3, delays[1]+slack)
	for _, h := range hits {
		require.Equal(t, hits[0].WebhookID, h.WebhookID)
	}

	// The delivery log agrees (once the worker recorded what the receiver answered):
	// three scheduled attempts, the last one delivered.
	var delivery apiclient.Delivery
	require.Eventually(t, func() bool {
		ev, err := api.typed().GetEventWithResponse(t.Context(), "dev-restart-1")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, ev.StatusCode(), string(ev.Body))
		require.NotNil(t, ev.JSON200.Deliveries)
		deliveries := *ev.JSON200.Deliveries
		require.Len(t, deliveries, 1)
		delivery = deliveries[0]
		return delivery.Status != nil && *delivery.Status == apiclient.DeliveryStatusDelivered
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 3, *delivery.AttemptCount)
	d, err := api.typed().GetDeliveryWithResponse(t.Context(), surveyID, uuid.MustParse(hookID), *delivery.ID)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, d.StatusCode(), string(d.Body))
	var codes []int
	for _, attempt := range *d.JSON200.Attempts {
		require.Equal(t, apiclient.AttemptTriggerAuto, *attempt.Trigger)
		codes = append(codes, *attempt.Response.Status)
	}
	require.Equal(t, []int{500, 500, 200}, codes)
	dev.terminate(t, time.Minute)
	t.Logf("RESULT dev restart: events 1, attempts 3 (500, 500, 200), attempt 2 after %v (due %v), attempt 3 after %v (due %v), duplicates 0, lost 0",
		gap2.Round(time.Millisecond), delays[0], gap3.Round(time.Millisecond), delays[1])
}

// devDataDir is a data folder for dev that the OS user postgres can reach (t.TempDir is
// private to root). It is removed when the test ends, after stopping a PostgreSQL that a
// killed dev left running in it.
func devDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "surveyhooks-e2e-dev-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() {
		stopLeftPostgres(t, filepath.Join(dir, "postgres"))
		require.NoError(t, os.RemoveAll(dir))
	})
	return dir
}

// stopLeftPostgres stops a PostgreSQL that a killed dev left running on pgDir.
func stopLeftPostgres(t *testing.T, pgDir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgDir, "postmaster.pid")); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Start adopts the running server; Stop stops it.
	if c, err := localpg.Start(ctx, localpg.Options{DataDir: pgDir}); err == nil {
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop PostgreSQL left by dev: %v", err)
		}
	}
}

// waitReady waits until the API at url answers /readyz with 200, failing early when the
// process exits.
func waitReady(t *testing.T, p *proc, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second}
	require.Eventually(t, func() bool {
		if p.exited() {
			return true
		}
		resp, err := client.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, timeout, 50*time.Millisecond, "%s never became ready", p.name)
	require.False(t, p.exited(), "%s exited: %v\n%s", p.name, p.err, p.tail(30))
}
