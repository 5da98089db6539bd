package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/surveyhooks/surveyhooks/signature"
)

const (
	// listAttemptsPerDelivery: every generated delivery has this many attempts.
	listAttemptsPerDelivery = 5
	// listRequests are timed per query, after listWarmup untimed ones.
	listRequests = 500
	listWarmup   = 20
)

// ListResult is how fast the API reads deliveries out of a large table.
type ListResult struct {
	AttemptRows   int     `json:"attemptRows"`
	Deliveries    int     `json:"deliveries"`
	InsertSeconds float64 `json:"insertSeconds"`
	// AttemptsTableBytes and DeliveriesTableBytes include indexes and TOAST.
	AttemptsTableBytes   int64          `json:"attemptsTableBytes"`
	DeliveriesTableBytes int64          `json:"deliveriesTableBytes"`
	Queries              []QueryLatency `json:"queries"`
}

// QueryLatency is the latency of one API request, listRequests times in a row.
type QueryLatency struct {
	Name    string  `json:"name"`
	Path    string  `json:"path"`
	Latency Latency `json:"latency"`
}

// The generated rows are spread one millisecond apart, two days back, with ids made like
// UUIDv7s (time first), as the store makes them. In every query $3 is the number of
// deliveries and $4 the first one's unix milliseconds.
const (
	listV7 = `(lpad(to_hex($4::bigint + g), 12, '0') || '70008000' || lpad(to_hex(g), 12, '0'))::uuid`
	listTS = `to_timestamp(($4::bigint + g) / 1000.0)`

	// $1 event id prefix, $2 survey.
	insertListEventsQuery = `
INSERT INTO events (id, event_type, survey_id, body, created_at, dispatched_at)
SELECT $1 || g, 'survey.response.completed', $2, convert_to('{"event_id":"' || $1 || g || '"}', 'UTF8'),
	` + listTS + `, ` + listTS + `
FROM generate_series(1, $3::int) g`

	// 10% failed, 10% waiting for a retry, the rest delivered. $1 event id prefix,
	// $2 webhook, $5 attempts per delivery.
	insertListDeliveriesQuery = `
INSERT INTO deliveries (id, event_id, webhook_id, status, attempt_count, next_attempt_at,
	last_status_code, last_error, created_at, updated_at, delivered_at)
SELECT ` + listV7 + `, $1 || g, $2::uuid,
	CASE g % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'retrying' ELSE 'delivered' END,
	$5::int,
	CASE WHEN g % 10 = 1 THEN now() + interval '1 hour' END,
	CASE WHEN g % 10 IN (0, 1) THEN 500 ELSE 200 END,
	CASE WHEN g % 10 IN (0, 1) THEN 'receiver answered 500 Internal Server Error' ELSE '' END,
	` + listTS + `, ` + listTS + `,
	CASE WHEN g % 10 > 1 THEN ` + listTS + ` END
FROM generate_series(1, $3::int) g`

	// Every attempt but a delivered delivery's last was answered 500. $1 attempts per
	// delivery, $2 URL, $5 request headers, $6 request body.
	insertListAttemptsQuery = `
INSERT INTO delivery_attempts (id, delivery_id, number, trigger, started_at, duration_ms, request_url,
	request_headers, request_body, response_status, response_headers, response_body, error)
SELECT (lpad(to_hex($4::bigint + g), 12, '0') || '7' || lpad(to_hex(n), 3, '0') || '9000' || lpad(to_hex(g), 12, '0'))::uuid,
	` + listV7 + `, n, 'auto', ` + listTS + ` + n * interval '1 minute', 3.5, $2, $5::jsonb, $6,
	CASE WHEN n < $1::int OR g % 10 IN (0, 1) THEN 500 ELSE 200 END,
	'{"Content-Type":["text/plain; charset=utf-8"],"Content-Length":["2"]}'::jsonb,
	CASE WHEN n < $1::int OR g % 10 IN (0, 1) THEN 'Internal Server Error' ELSE 'ok' END,
	CASE WHEN n < $1::int OR g % 10 IN (0, 1) THEN 'receiver answered 500 Internal Server Error' ELSE '' END
FROM generate_series(1, $3::int) g CROSS JOIN generate_series(1, $1::int) n`

	tableSizeQuery = `SELECT pg_total_relation_size($1::regclass)`
)

// runList fills the tables with opts.ListAttempts attempt rows for one webhook's deliveries
// and times the API's delivery routes over them.
func runList(ctx context.Context, st *stack, opts Options) (*ListResult, error) {
	p := st.recv.begin(1, 0, 0)
	survey := fmt.Sprintf("bench-%s-list", st.runID)
	webhookID, _, err := st.createWebhook(ctx, survey, "bench list", st.recv.url(p, 0))
	if err != nil {
		return nil, err
	}
	deliveries := max(1, opts.ListAttempts/listAttemptsPerDelivery)
	res := &ListResult{Deliveries: deliveries, AttemptRows: deliveries * listAttemptsPerDelivery}
	base := time.Now().Add(-48 * time.Hour).UnixMilli()
	prefix := fmt.Sprintf("bench-%s-list-", st.runID)

	if st.opts.Progress != nil {
		fmt.Fprintf(st.opts.Progress, "\rlist         inserting %d deliveries and %d attempts…   ", deliveries, res.AttemptRows)
	}
	headers := signature.Headers([]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "018f0000-0000-7000-8000-000000000000", time.Now(), []byte("{}"))
	headers.Set("Content-Type", "application/json")
	headers.Set(signature.HeaderEvent, eventType)
	headersJSON, err := json.Marshal(headers)
	if err != nil {
		return nil, fmt.Errorf("encode headers: %w", err)
	}
	body, err := envelope(prefix+"1", payloadData(opts.PayloadBytes))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	steps := []struct {
		name  string
		query string
		args  []any
	}{
		{"events", insertListEventsQuery, []any{prefix, survey, deliveries, base}},
		{"deliveries", insertListDeliveriesQuery, []any{prefix, webhookID, deliveries, base, listAttemptsPerDelivery}},
		{"attempts", insertListAttemptsQuery, []any{listAttemptsPerDelivery, st.recv.url(p, 0), deliveries, base,
			string(headersJSON), string(body)}},
		{"statistics", "ANALYZE events, deliveries, delivery_attempts", nil},
	}
	for _, step := range steps {
		if _, err := st.db.ExecContext(ctx, step.query, step.args...); err != nil {
			return nil, fmt.Errorf("insert %s: %w", step.name, err)
		}
	}
	res.InsertSeconds = time.Since(start).Seconds()
	for table, dst := range map[string]*int64{"delivery_attempts": &res.AttemptsTableBytes, "deliveries": &res.DeliveriesTableBytes} {
		if err := st.db.QueryRowContext(ctx, tableSizeQuery, table).Scan(dst); err != nil {
			return nil, fmt.Errorf("size of %s: %w", table, err)
		}
	}

	// A delivery and a cursor from the middle of the list, encoded as the API encodes them.
	middle, err := uuid.Parse(fmt.Sprintf("%012x70008000%012x", base+int64(deliveries/2), deliveries/2))
	if err != nil {
		return nil, fmt.Errorf("middle delivery id: %w", err)
	}
	cursor := base64.RawURLEncoding.EncodeToString(middle[:])
	hook := "/api/surveys/" + survey + "/webhooks/" + webhookID
	queries := []QueryLatency{
		{Name: "list, first page (50)", Path: hook + "/deliveries"},
		{Name: "list, status=failed", Path: hook + "/deliveries?status=failed"},
		{Name: "list, page from the middle (cursor)", Path: hook + "/deliveries?cursor=" + cursor},
		{Name: "list, limit=200", Path: hook + "/deliveries?limit=200"},
		{Name: "one delivery with its 5 attempts", Path: hook + "/deliveries/" + middle.String()},
	}
	for i, q := range queries {
		if st.opts.Progress != nil {
			fmt.Fprintf(st.opts.Progress, "\r%-80s", "list         timing "+q.Name)
		}
		var ms []float64
		for n := range listWarmup + listRequests {
			t := time.Now()
			status, raw, err := st.apiRaw(ctx, http.MethodGet, q.Path, nil)
			elapsed := time.Since(t)
			if err != nil {
				return nil, err
			}
			if status != http.StatusOK {
				return nil, fmt.Errorf("GET %s answered %d: %s", q.Path, status, firstLine(raw))
			}
			if n >= listWarmup {
				ms = append(ms, float64(elapsed.Microseconds())/1000)
			}
		}
		queries[i].Latency = summarize(ms)
	}
	if st.opts.Progress != nil {
		fmt.Fprintf(st.opts.Progress, "\r%80s\r", "")
	}
	res.Queries = queries
	return res, nil
}

func (r *ListResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "\nAPI reads over %d attempt rows (%d deliveries of one webhook; attempts table %s, deliveries table %s; inserted in %.0f s), %d requests each, one at a time\n",
		r.AttemptRows, r.Deliveries, mib(r.AttemptsTableBytes), mib(r.DeliveriesTableBytes), r.InsertSeconds, listRequests)
	fmt.Fprintf(w, "%-38s %9s %9s %9s %9s\n", "", "p50", "p90", "p99", "max")
	for _, q := range r.Queries {
		fmt.Fprintf(w, "%-38s %9s %9s %9s %9s\n", q.Name, ms(q.Latency.P50), ms(q.Latency.P90), ms(q.Latency.P99), ms(q.Latency.Max))
	}
}
