package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	apiclient "github.com/surveyhooks/surveyhooks/client"
)

// ScenarioRecovery stores Options.Count failed deliveries of one webhook, as an outage
// leaves them, and recovers them through the API: a recovery workflow retries them at its
// bounded rate (SURVEYHOOKS_RECOVERY_RATE) while the scenario samples its progress and the
// process's memory.
const ScenarioRecovery = "recovery"

// recoverySample is how often the recovery scenario reads the progress and the memory.
const recoverySample = 2 * time.Second

// RecoveryResult is what the recovery scenario measured.
type RecoveryResult struct {
	Deliveries int     `json:"deliveries"`
	Matched    int     `json:"matched"`
	Delivered  int     `json:"delivered"`
	Failed     int     `json:"failed"`
	Arrived    int     `json:"arrived"`
	Duplicates int     `json:"duplicates"`
	Seconds    float64 `json:"seconds"`
	// Rate is the retries asked for per second, over the whole recovery; RateBound the
	// configured bound.
	Rate      float64 `json:"rate"`
	RateBound float64 `json:"rateBound"`
	// SameID says a second identical request while it ran was answered with its id.
	SameID bool `json:"sameId"`
	// Samples are the progress and memory read while it ran.
	Samples []RecoveryProgressSample `json:"samples"`
}

// RecoveryProgressSample is one reading while the recovery ran.
type RecoveryProgressSample struct {
	Seconds   float64 `json:"seconds"`
	Retried   int     `json:"retried"`
	Delivered int     `json:"delivered"`
	// HeapMB is the Go heap in use and RSSMB the process's resident memory: the worker,
	// the API and the Temporal server share this process.
	HeapMB float64 `json:"heapMb"`
	RSSMB  float64 `json:"rssMb"`
}

// seedRecoveryQuery stores $2 events of survey $3 in the default account, an hour back, one
// a millisecond, each with one failed delivery of webhook $4: ids are the event's
// millisecond first (UUIDv7, as the store makes them), so id order is creation order.
const seedRecoveryQuery = `
WITH p AS (
	SELECT g, (extract(epoch FROM now() - interval '1 hour') * 1000)::bigint + g AS ms
	FROM generate_series(1, $2::int) g
), ev AS (
	INSERT INTO events (id, account_id, event_type, survey_id, body, created_at, dispatched_at)
	SELECT $1 || g, 'default', $5, $3, convert_to('{"event_id":"' || $1 || g || '"}', 'UTF8'),
		to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0)
	FROM p
)
INSERT INTO deliveries (id, account_id, event_id, webhook_id, status, attempt_count, last_status_code, last_error,
	created_at, updated_at)
SELECT (lpad(to_hex(ms), 12, '0') || '7000' || '8000' || lpad(to_hex(g), 12, '0'))::uuid, 'default', $1 || g, $4::uuid,
	'failed', 6, 503, 'receiver answered 503 Service Unavailable', to_timestamp(ms / 1000.0), to_timestamp(ms / 1000.0)
FROM p`

// runRecovery seeds the failed deliveries, starts their recovery, asks for it again while
// it runs, and samples it until every delivery arrived.
func runRecovery(ctx context.Context, st *stack, opts Options) (*RecoveryResult, error) {
	p := st.recv.begin(1, 0, 0)
	survey := fmt.Sprintf("recovery-%s-%d", st.runID, p.number)
	hookID, secret, err := st.createWebhook(ctx, survey, "recovered", st.recv.url(p, 0))
	if err != nil {
		return nil, err
	}
	p.secrets[0] = secret
	prefix := fmt.Sprintf("rec-%s-%d-", st.runID, p.number)
	if _, err := st.db.ExecContext(ctx, seedRecoveryQuery, prefix, opts.Count, survey, hookID, eventType); err != nil {
		return nil, fmt.Errorf("seed failed deliveries: %w", err)
	}
	start := time.Now()
	for i := 1; i <= opts.Count; i++ {
		p.publishing(fmt.Sprintf("%s%d", prefix, i), start)
	}
	p.accepted(opts.Count)
	p.donePublishing()

	id, err := uuid.Parse(hookID)
	if err != nil {
		return nil, err
	}
	body := apiclient.RecoveryRequest{Since: start.Add(-2 * time.Hour)}
	recoverOnce := func() (string, error) {
		resp, err := st.api.RecoverWebhookDeliveriesWithResponse(ctx, survey, id, body)
		if err != nil {
			return "", err
		}
		if resp.JSON202 == nil {
			return "", fmt.Errorf("recover: the API answered %d: %s", resp.StatusCode(), firstLine(resp.Body))
		}
		return resp.JSON202.ID, nil
	}
	recoveryID, err := recoverOnce()
	if err != nil {
		return nil, err
	}
	res := &RecoveryResult{Deliveries: opts.Count, RateBound: opts.RecoveryRate}
	st.settling(ScenarioRecovery, "")
	deadline := time.Now().Add(time.Duration(float64(opts.Count)/max(opts.RecoveryRate, 1)*3*float64(time.Second)) + 5*time.Minute)
	tick := time.NewTicker(recoverySample)
	defer tick.Stop()
	var last apiclient.Recovery
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		resp, err := st.api.GetWebhookRecoveryWithResponse(ctx, survey, id, recoveryID)
		if err != nil {
			return res, err
		}
		if resp.JSON200 == nil {
			return res, fmt.Errorf("recovery progress: the API answered %d: %s", resp.StatusCode(), firstLine(resp.Body))
		}
		last = *resp.JSON200
		if !res.SameID && !last.Finished {
			again, err := recoverOnce()
			if err != nil {
				return res, err
			}
			res.SameID = again == recoveryID
			if !res.SameID {
				return res, fmt.Errorf("a second identical request started %s beside %s", again, recoveryID)
			}
		}
		var mem runtime.MemStats
		runtime.ReadMemStats(&mem)
		rss, _ := rssBytes(os.Getpid())
		res.Samples = append(res.Samples, RecoveryProgressSample{Seconds: time.Since(start).Seconds(), Retried: last.Retried,
			Delivered: last.Delivered, HeapMB: float64(mem.HeapInuse) / (1 << 20), RSSMB: rss / (1 << 20)})
		arrived, _, _ := p.counts()
		if last.Finished && last.Delivered+last.Failed >= last.Retried && arrived >= last.Retried {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("recovery %s: not done after %s: %+v", recoveryID, time.Since(start).Round(time.Second), last)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Matched, res.Delivered, res.Failed = last.Matched, last.Delivered, last.Failed
	if last.Status != apiclient.RecoveryStatusCompleted {
		return res, fmt.Errorf("recovery %s ended %s: %+v", recoveryID, last.Status, last)
	}
	p.mu.Lock()
	res.Arrived, res.Duplicates = len(p.delivered), p.duplicates
	p.mu.Unlock()
	// The rate over the retries' own span: from the first sample with one to the last.
	for _, s := range res.Samples {
		if s.Retried > 0 {
			if span := res.Samples[len(res.Samples)-1].Seconds - s.Seconds + recoverySample.Seconds(); span > 0 {
				res.Rate = float64(last.Retried) / span
			}
			break
		}
	}
	return res, nil
}

func (r *RecoveryResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "\nrecovery: %d failed deliveries of one webhook, recovered at most %.0f/s\n", r.Deliveries, r.RateBound)
	fmt.Fprintf(w, "matched %d, delivered %d, failed %d; the receiver got %d, %d duplicates; %.0f s, %.1f retries/s; a second request while it ran got the same id: %t\n",
		r.Matched, r.Delivered, r.Failed, r.Arrived, r.Duplicates, r.Seconds, r.Rate, r.SameID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "s\tretried\tdelivered\theap MB\tRSS MB\t")
	step := max(1, len(r.Samples)/12)
	for i, s := range r.Samples {
		if i%step == 0 || i == len(r.Samples)-1 {
			fmt.Fprintf(tw, "%.0f\t%d\t%d\t%.0f\t%.0f\t\n", s.Seconds, s.Retried, s.Delivered, s.HeapMB, s.RSSMB)
		}
	}
	tw.Flush()
}
