package e2e_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

// chaosSeedEnv replays a run of TestReceiverChaos with the seed it logged.
const chaosSeedEnv = "E2E_CHAOS_SEED"

// Receiver answers of the chaos test, and whether the attempt counts as delivered.
var chaosAnswers = []struct {
	name      string
	weight    int
	delivered bool
}{
	{"200", 30, true},
	{"500", 25, false},
	{"timeout", 10, false}, // no answer before the attempt timeout
	{"slow", 15, true},     // 200, then the body in pieces, within the timeout
	{"stall", 5, true},     // 200, then a body that outlasts the timeout
	{"reset", 15, false},   // the request read, then the connection reset
}

// TestReceiverChaos delivers events to a receiver that answers each request at random:
// 200, 500, a timeout, a slow body, a body that stalls past the timeout, or a connection
// reset. Every delivery ends delivered or failed as the schedule says, and its attempt
// records agree one by one with what the receiver saw.
func TestReceiverChaos(t *testing.T) {
	t.Parallel()
	const (
		events         = 60
		attemptTimeout = time.Second
		maxAttempts    = 3
	)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(chaosSeedEnv); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (replay with %s=%d)", seed, chaosSeedEnv, seed)
	var rngMu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, seed))
	pick := func() string {
		rngMu.Lock()
		defer rngMu.Unlock()
		n := rng.IntN(100)
		for _, a := range chaosAnswers {
			if n < a.weight {
				return a.name
			}
			n -= a.weight
		}
		panic("weights do not add up to 100")
	}

	st := store.New(testenv.Postgres(t), testenv.Keyring())
	te := testenv.Temporal(t)
	acts := activities.New(st, loopbackPolicy.Client(), activities.Config{
		Schedule: delivery.Schedule{Delays: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, AttemptTimeout: attemptTimeout},
	}, testLogger(t, slog.LevelError))
	te.StartWorker(t, func(r worker.Registry) { workflows.Register(r, acts) })
	d := delivery.New(st, te.Client, delivery.Config{TaskQueue: te.TaskQueue, Schedule: delivery.Schedule{Delays: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, AttemptTimeout: attemptTimeout}}, nil)
	api := startAPI(t, st, d)

	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) string {
		answer := pick()
		switch answer {
		case "200":
			w.WriteHeader(http.StatusOK)
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "oops")
		case "timeout":
			select {
			case <-r.Context().Done(): // the sender gave up
			case <-time.After(10 * attemptTimeout):
			}
		case "slow", "stall":
			pause := 20 * time.Millisecond
			if answer == "stall" {
				pause = attemptTimeout / 2
			}
			w.WriteHeader(http.StatusOK)
			for range 5 {
				fmt.Fprint(w, "chunk ")
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return answer
				case <-time.After(pause):
				}
			}
		case "reset":
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				panic(err)
			}
			// Linger 0: close with RST instead of FIN.
			_ = conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
		return answer
	})
	api.createWebhook(t, rc.URL, "*")
	published := publishAll(t, api, events, 4)
	t.Logf("published: %v", published)
	// Rarely, on a loaded machine, an activity task is lost between Temporal and the
	// worker: it waits out StartToClose (attempt timeout + 30 s) and, once Temporal's
	// attempts are spent, the workflow's one-minute restart. Hence the long bound.
	counts := waitSettled(t, st, events, 150*time.Second)

	type attemptRow struct {
		DeliveryID uuid.UUID `db:"delivery_id"`
		Number     int       `db:"number"`
		Status     *int      `db:"response_status"`
		Error      string    `db:"error"`
	}
	var rows []attemptRow
	require.NoError(t, st.DB().SelectContext(t.Context(), &rows,
		`SELECT delivery_id, number, response_status, error FROM delivery_attempts ORDER BY delivery_id, number`))
	// The receiver answers a hung request only when the sender has given up: wait for it
	// to have seen every recorded attempt.
	require.Eventually(t, func() bool { return len(rc.got()) >= len(rows) }, 30*time.Second, 20*time.Millisecond)
	hits := rc.got()
	require.Len(t, hits, len(rows), "one request at the receiver per recorded attempt")

	byDelivery := map[string][]hit{}
	seen := map[string]int{}
	for _, h := range hits {
		byDelivery[h.WebhookID] = append(byDelivery[h.WebhookID], h)
		seen[h.Answer]++
	}
	attempts := map[string][]attemptRow{}
	for _, r := range rows {
		attempts[r.DeliveryID.String()] = append(attempts[r.DeliveryID.String()], r)
	}
	var deliveries []store.Delivery
	require.NoError(t, st.DB().SelectContext(t.Context(), &deliveries,
		`SELECT d.*, e.event_type FROM deliveries d JOIN events e ON e.id = d.event_id`))
	require.Len(t, deliveries, events)
	for _, dl := range deliveries {
		id := dl.ID.String()
		got := byDelivery[id]
		slices.SortFunc(got, func(a, b hit) int { return a.Nth - b.Nth })
		recs := attempts[id]
		require.Len(t, got, dl.AttemptCount, "delivery %s: requests seen = attempt count", id)
		require.Len(t, recs, dl.AttemptCount, "delivery %s: attempt records = attempt count", id)
		for i, h := range got {
			rec := recs[i]
			require.Equal(t, i+1, rec.Number)
			switch h.Answer {
			case "200", "slow", "stall":
				require.NotNil(t, rec.Status, "delivery %s attempt %d (%s): %s", id, rec.Number, h.Answer, rec.Error)
				require.Equal(t, http.StatusOK, *rec.Status)
				require.Equal(t, len(got)-1, i, "delivery %s: nothing after a 2xx", id)
			case "500":
				require.NotNil(t, rec.Status)
				require.Equal(t, http.StatusInternalServerError, *rec.Status)
			case "timeout":
				require.Nil(t, rec.Status)
				require.Contains(t, rec.Error, "timed out")
			case "reset":
				require.Nil(t, rec.Status, "delivery %s attempt %d", id, rec.Number)
				require.NotEmpty(t, rec.Error)
			}
		}
		answered := make([]string, len(got))
		for i, h := range got {
			answered[i] = h.Answer
		}
		last := answered[len(answered)-1]
		if answerDelivers(last) {
			require.Equal(t, delivery.StatusDelivered, dl.Status, "delivery %s answered %v: %s", id, answered, dl.LastError)
		} else {
			require.Equal(t, delivery.StatusFailed, dl.Status, "delivery %s answered %v: %s", id, answered, dl.LastError)
			require.Equal(t, maxAttempts, dl.AttemptCount, "delivery %s answered %v fails only when the schedule is spent: %s", id, answered, dl.LastError)
		}
	}
	answers, _ := json.Marshal(seen)
	dup := countDuplicates(t, hits)
	t.Logf("RESULT receiver chaos: events %d, requests %d %s, delivered %d, failed after %d attempts %d, duplicates %d, lost 0",
		events, len(hits), answers, counts[delivery.StatusDelivered], maxAttempts, counts[delivery.StatusFailed], dup.extra2xx)
}

func answerDelivers(name string) bool {
	for _, a := range chaosAnswers {
		if a.name == name {
			return a.delivered
		}
	}
	panic("unknown answer " + name)
}
