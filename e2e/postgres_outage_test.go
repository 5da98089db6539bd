package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/localpg"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// TestPostgresOutage stops PostgreSQL for a few seconds while deliveries run: meanwhile
// /readyz says 503 and API calls answer 503 JSON at once; afterwards the activities'
// retries deliver every event that was accepted, and the publisher's retries of the
// refused ones are accepted and delivered too.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	const (
		events = 60
		outage = 5 * time.Second
	)
	cluster, dbURL := ownPostgres(t)
	db, err := sqlx.Open(store.DriverName, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, store.Migrate(t.Context(), db.DB, testenv.Keyring()))
	st := store.New(db, testenv.Keyring())

	te := testenv.Temporal(t)
	acts := activities.New(st, loopbackPolicy.Client(), activities.Config{
		Schedule: delivery.Schedule{Delays: []time.Duration{time.Second, time.Second}, AttemptTimeout: 2 * time.Second},
	}, testLogger(t, slog.LevelError))
	te.StartWorker(t, func(r worker.Registry) { workflows.Register(r, acts) })
	d := delivery.New(st, te.Client, delivery.Config{
		TaskQueue: te.TaskQueue,
		Schedule:  delivery.Schedule{Delays: []time.Duration{time.Second, time.Second}, AttemptTimeout: 2 * time.Second},
		Outbox:    delivery.OutboxConfig{Interval: 500 * time.Millisecond, Grace: time.Second},
	}, testLogger(t, slog.LevelError))
	runOutbox(t, d)
	api := startAPI(t, st, d)
	// About 30% of the deliveries fail their first attempt.
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, nth int) string {
		time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
		if nth == 0 && failsFirst(r.Header.Get("webhook-id")) {
			w.WriteHeader(http.StatusInternalServerError)
			return "500"
		}
		w.WriteHeader(http.StatusOK)
		return "200"
	})
	hookID := api.createWebhook(t, rc.URL, "*")
	accepted := publishAll(t, api, events, 8)
	t.Logf("published %d events: %v", events, accepted)

	// Stop PostgreSQL once deliveries are under way.
	require.Eventually(t, func() bool { return distinctOK(rc.got()) >= events/4 }, 60*time.Second, 10*time.Millisecond)
	stopCtx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.Stop(stopCtx))
	down := time.Now()
	t.Logf("PostgreSQL stopped with %d of %d deliveries arrived", distinctOK(rc.got()), events)

	// Meanwhile every probe answers 503 JSON, at once.
	refused := 0
	var slowest time.Duration
	probes := 0
	typed, ctx, hook := api.typed(), t.Context(), uuid.MustParse(hookID)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for ; time.Since(down) < outage; <-tick.C {
		for _, probe := range []struct {
			method, path string
			call         func() (*http.Response, error)
			code         string
		}{
			{http.MethodGet, "/readyz", func() (*http.Response, error) { return typed.Ready(ctx) }, ""},
			{http.MethodPost, "/api/events", func() (*http.Response, error) {
				return typed.PublishEvent(ctx, eventBody(fmt.Sprintf("outage-%03d", refused), "survey.response.completed"))
			}, "unavailable"},
			{http.MethodGet, "/api/events/{eventId}", func() (*http.Response, error) { return typed.GetEvent(ctx, "evt-0001") }, "unavailable"},
			{http.MethodGet, "/api/surveys/{surveyId}/webhooks", func() (*http.Response, error) { return typed.ListWebhooks(ctx, surveyID, nil) }, "unavailable"},
			{http.MethodGet, "/api/surveys/{surveyId}/webhooks/{id}/deliveries", func() (*http.Response, error) {
				return typed.ListDeliveries(ctx, surveyID, hook, nil)
			}, "unavailable"},
		} {
			began := time.Now()
			resp, err := probe.call()
			require.NoError(t, err, "%s %s", probe.method, probe.path)
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			requireJSON(t, resp, raw)
			status := resp.StatusCode
			took := time.Since(began)
			slowest = max(slowest, took)
			probes++
			require.Equal(t, http.StatusServiceUnavailable, status, "%s %s: %s", probe.method, probe.path, raw)
			require.Less(t, took, 3*time.Second, "%s %s answers quickly", probe.method, probe.path)
			var body map[string]any
			require.NoError(t, json.Unmarshal(raw, &body))
			if probe.code != "" {
				require.Equal(t, probe.code, body["code"], string(raw))
				require.NotEmpty(t, body["message"])
			} else {
				require.Equal(t, "unready", body["status"], string(raw))
			}
			if probe.method == http.MethodPost {
				refused++
			}
		}
	}
	t.Logf("outage of %v: %d probes, all 503 JSON, slowest %v", outage, probes, slowest.Round(time.Millisecond))

	restarted := time.Now()
	_, err = localpg.Start(t.Context(), localpg.Options{DataDir: cluster.DataDir, Port: cluster.Port})
	require.NoError(t, err)
	t.Logf("PostgreSQL back after %v", time.Since(down).Round(time.Millisecond))

	// The publisher retries what was refused.
	for i := range refused {
		require.Eventually(t, func() bool {
			status, _ := api.publish(t, fmt.Sprintf("outage-%03d", i), "survey.response.completed")
			return status == http.StatusCreated || status == http.StatusAccepted
		}, 30*time.Second, 100*time.Millisecond)
	}
	total := events + refused
	// Long bound: a try PostgreSQL failed twice can leave a delivery to the workflow's
	// one-minute restart (see the schedule above).
	counts := waitSettled(t, st, total, 150*time.Second)
	t.Logf("all %d deliveries settled %v after PostgreSQL came back", total, time.Since(restarted).Round(time.Millisecond))
	if counts[delivery.StatusFailed] > 0 {
		var failed []struct {
			ID        string `db:"id"`
			Attempts  int    `db:"attempt_count"`
			LastError string `db:"last_error"`
		}
		require.NoError(t, db.SelectContext(t.Context(), &failed, `SELECT id::text, attempt_count, last_error FROM deliveries WHERE status = 'failed'`))
		for _, f := range failed {
			t.Logf("failed delivery %s after %d attempts: %s", f.ID, f.Attempts, f.LastError)
		}
	}
	require.Equal(t, total, counts[delivery.StatusDelivered], "%v", counts)

	// The receiver records a request just after answering it.
	require.Eventually(t, func() bool { return distinctOK(rc.got()) >= total }, 10*time.Second, 10*time.Millisecond)
	hits := rc.got()
	dup := countDuplicates(t, hits)
	require.Equal(t, total, dup.delivered, "every delivery arrived")
	var ids []string
	require.NoError(t, db.SelectContext(t.Context(), &ids, `SELECT id::text FROM deliveries`))
	for _, id := range ids {
		require.Equal(t, 1, func() int {
			for _, h := range hits {
				if h.WebhookID == id && h.Answer == "200" {
					return 1
				}
			}
			return 0
		}(), "delivery %s arrived", id)
	}
	status, ready := api.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, status, ready)
	t.Logf("RESULT postgres outage: events %d before + %d refused (503) then retried, delivered %d, duplicates %d, lost %d",
		events, refused, dup.delivered, dup.extra2xx, total-dup.delivered)
}

// ownPostgres starts a PostgreSQL cluster of the test's own, on a fixed port so that it
// can be stopped and started again, and returns it with the URL of a database on it.
func ownPostgres(t *testing.T) (*localpg.Cluster, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "surveyhooks-e2e-pg-")
	require.NoError(t, err)
	// The server runs as the OS user postgres, which must reach the directory.
	require.NoError(t, os.Chmod(dir, 0o755))
	_, portText, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	port, err := strconv.Atoi(portText)
	require.NoError(t, err)
	c, err := localpg.Start(t.Context(), localpg.Options{DataDir: filepath.Join(dir, "pg"), Port: port})
	if err != nil {
		os.RemoveAll(dir)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, c.Stop(ctx))
		require.NoError(t, os.RemoveAll(dir))
	})
	require.NoError(t, c.CreateDatabase(t.Context(), "surveyhooks"))
	return c, c.URL("surveyhooks")
}
