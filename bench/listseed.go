package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

// The list scenario's tables, as many accounts of one platform would fill them:
//
//   - accounts 1..A, ids <prefix>a<n>. Account 1 is the large one: it has half of the
//     events; the other half is spread evenly over accounts 2..A.
//   - ten webhooks per account, all subscribed to eventType: webhook 0 is account-wide
//     (every survey), webhook 1 account-wide for surveys s1 and s2, webhooks 2..9 belong
//     to surveys s2..s9.
//   - events 1..E, one every step milliseconds from two days back; event g belongs to
//     account 1 when g is even, and to survey s((g/2) mod 10). Its deliveries are made as
//     publishing makes them: one to each webhook of its account that hears its survey, so
//     one, two or three (two on average).
//   - every delivery has listAttemptsPerDelivery attempts; a tenth of the deliveries failed,
//     a tenth wait for a retry, the rest were delivered by their last attempt.
//
// Delivery and attempt ids are UUIDv7s of their event's millisecond, as the store makes
// them (time first, so that the lists' id order is creation order), with (g, webhook,
// attempt) in place of the random bits.
const (
	// listWebhooksPerAccount is fixed by the layout above.
	listWebhooksPerAccount = 10
	// listSurveyWebhook is the survey webhook the scenario reads (survey s3).
	listSurveyWebhook = 3
)

// listSeed holds the parameters of the seed statements, which take it as one JSON object
// (listParams).
type listSeed struct {
	Prefix    string `json:"prefix"`
	Events    int    `json:"events"`
	Accounts  int    `json:"accounts"`
	BaseMS    int64  `json:"base_ms"`
	StepMS    int64  `json:"step_ms"`
	EventType string `json:"event_type"`
	Attempts  int    `json:"attempts"`
	// URL, RequestHeaders, RequestBody and ResponseHeaders fill every attempt.
	URL             string          `json:"url"`
	RequestHeaders  json.RawMessage `json:"request_headers"`
	RequestBody     string          `json:"request_body"`
	ResponseHeaders json.RawMessage `json:"response_headers"`
}

// accountID returns the id of account n (1..Accounts).
func (s listSeed) accountID(n int) string {
	return fmt.Sprintf("%sa%d", s.Prefix, n)
}

// webhookName is the name of webhook k of an account: the deliveries statement finds the
// webhooks by it.
func webhookName(k int) string {
	return fmt.Sprintf("bench list %d", k)
}

// listParams opens every seed statement: s is the listSeed of $1.
const listParams = `
WITH s AS (
	SELECT * FROM jsonb_to_record($1::jsonb) AS s (prefix text, events int, accounts int,
		base_ms bigint, step_ms bigint, event_type text, attempts int, url text,
		request_headers jsonb, request_body text, response_headers jsonb)
)`

// listEventRows is one row per event: g, its account, its survey number j and its
// millisecond.
const listEventRows = `
SELECT g,
	s.prefix || 'a' || CASE WHEN g % 2 = 0 THEN 1 ELSE 2 + ((g - 1) / 2) % (s.accounts - 1) END AS account_id,
	(g / 2) % 10 AS j,
	s.base_ms + g * s.step_ms AS ms
FROM s, generate_series(1, s.events) g`

// listDeliveryRows is one row per delivery: its event's g, account and millisecond, the
// webhook number k and h, which picks the status (0 failed, 1 retrying, else delivered)
// independently of the account and the survey.
const listDeliveryRows = `
SELECT e.g, e.account_id, e.ms, k, (e.g / 20 + k) % 10 AS h
FROM (` + listEventRows + `) e CROSS JOIN generate_series(0, 9) k
WHERE k = 0 OR (k = 1 AND e.j IN (1, 2)) OR (k >= 2 AND k = e.j)`

const (
	listDeliveryID = `(lpad(to_hex(p.ms), 12, '0') || '7' || lpad(to_hex(p.k), 3, '0') || '8000' || lpad(to_hex(p.g), 12, '0'))::uuid`
	listAttemptID  = `(lpad(to_hex(p.ms), 12, '0') || '7' || lpad(to_hex(p.k * 16 + n), 3, '0') || '9000' || lpad(to_hex(p.g), 12, '0'))::uuid`
	listTime       = `to_timestamp(p.ms / 1000.0)`
	// listRefused: every attempt but a delivered delivery's last was answered 500.
	listRefused = `(n < s.attempts OR p.h IN (0, 1))`

	insertListEventsQuery = listParams + `
INSERT INTO events (id, account_id, event_type, survey_id, body, created_at, dispatched_at)
SELECT s.prefix || 'e' || p.g, p.account_id, s.event_type, 's' || p.j,
	convert_to(json_build_object('event_id', s.prefix || 'e' || p.g)::text, 'UTF8'),
	` + listTime + `, ` + listTime + `
FROM (` + listEventRows + `) p, s`

	insertListDeliveriesQuery = listParams + `
INSERT INTO deliveries (id, account_id, event_id, webhook_id, status, attempt_count, next_attempt_at,
	last_status_code, last_error, created_at, updated_at, delivered_at)
SELECT ` + listDeliveryID + `, p.account_id, s.prefix || 'e' || p.g, w.id,
	CASE p.h WHEN 0 THEN 'failed' WHEN 1 THEN 'retrying' ELSE 'delivered' END,
	s.attempts,
	CASE WHEN p.h = 1 THEN now() + interval '1 hour' END,
	CASE WHEN p.h IN (0, 1) THEN 500 ELSE 200 END,
	CASE WHEN p.h IN (0, 1) THEN 'receiver answered 500 Internal Server Error' ELSE '' END,
	` + listTime + `, ` + listTime + `,
	CASE WHEN p.h > 1 THEN ` + listTime + ` END
FROM (` + listDeliveryRows + `) p
CROSS JOIN s
JOIN webhooks w ON w.account_id = p.account_id AND w.name = 'bench list ' || p.k`

	insertListAttemptsQuery = listParams + `
INSERT INTO delivery_attempts (id, delivery_id, number, trigger, started_at, duration_ms, request_url,
	request_headers, request_body, response_status, response_headers, response_body, error)
SELECT ` + listAttemptID + `, ` + listDeliveryID + `, n, 'auto', ` + listTime + ` + n * interval '1 minute', 3.5,
	s.url, s.request_headers, s.request_body,
	CASE WHEN ` + listRefused + ` THEN 500 ELSE 200 END,
	s.response_headers,
	CASE WHEN ` + listRefused + ` THEN 'Internal Server Error' ELSE 'ok' END,
	CASE WHEN ` + listRefused + ` THEN 'receiver answered 500 Internal Server Error' ELSE '' END
FROM (` + listDeliveryRows + `) p
CROSS JOIN s
CROSS JOIN generate_series(1, s.attempts) n`
)

// listCreators is how many webhooks are created at once: the store seals each secret
// and the statements are small, so a few in flight keep PostgreSQL busy.
const listCreators = 4

// seedList fills the tables as described above and returns the rows made and how long
// that took. The webhooks are made by the store, which seals their secrets as the API
// would; the rest by one set-based statement per table.
func seedList(ctx context.Context, st *stack, seed listSeed, res *ListResult) error {
	start := time.Now()
	if err := createListWebhooks(ctx, st, seed); err != nil {
		return err
	}
	res.Webhooks = seed.Accounts * listWebhooksPerAccount
	params, err := json.Marshal(seed)
	if err != nil {
		return fmt.Errorf("encode seed: %w", err)
	}
	st.progress("list         inserting %d events, their deliveries and %d attempts each…", seed.Events, seed.Attempts)
	for _, step := range []struct {
		name  string
		query string
		rows  *int
	}{
		{"events", insertListEventsQuery, &res.Events},
		{"deliveries", insertListDeliveriesQuery, &res.Deliveries},
		{"attempts", insertListAttemptsQuery, &res.AttemptRows},
	} {
		r, err := st.db.ExecContext(ctx, step.query, string(params))
		if err != nil {
			return fmt.Errorf("insert %s: %w", step.name, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return fmt.Errorf("insert %s: %w", step.name, err)
		}
		*step.rows = int(n)
	}
	st.progress("list         analyzing…")
	if _, err := st.db.ExecContext(ctx, "ANALYZE webhooks, events, deliveries, delivery_attempts"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	res.InsertSeconds = time.Since(start).Seconds()
	return nil
}

// createListWebhooks creates every account's ten webhooks through the store.
func createListWebhooks(ctx context.Context, st *stack, seed listSeed) error {
	total := seed.Accounts * listWebhooksPerAccount
	next := make(chan int)
	var (
		made     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range listCreators {
		wg.Go(func() {
			for i := range next {
				if _, err := st.store.CreateWebhook(ctx, listWebhook(seed, i)); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("create webhook: %w", err); cancel() })
					continue
				}
				if n := made.Add(1); n%1000 == 0 {
					st.progress("list         creating webhooks %d/%d…", n, total)
				}
			}
		})
	}
loop:
	for i := range total {
		select {
		case next <- i:
		case <-ctx.Done():
			break loop
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// listWebhook is webhook i of the seed: webhook i mod 10 of account i/10 + 1.
func listWebhook(seed listSeed, i int) store.Webhook {
	k := i % listWebhooksPerAccount
	w := store.Webhook{
		AccountID: seed.accountID(i/listWebhooksPerAccount + 1),
		Name:      webhookName(k),
		URL:       seed.URL,
		Events:    []string{seed.EventType},
		IsActive:  true,
		Secret:    listSecret,
	}
	switch {
	case k == 1:
		w.SurveyIDs = []string{"s1", "s2"}
	case k >= 2:
		w.SurveyID = fmt.Sprintf("s%d", k)
	}
	return w
}

// listSecret signs the seeded attempts' headers; nothing is sent with it.
const listSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// newListSeed sizes the seed for about attempts attempt rows over accounts accounts: E is
// a multiple of 20, so that both halves of the events go through every survey alike and
// the deliveries are exactly two per event.
func newListSeed(st *stack, opts Options, url string) (listSeed, error) {
	perEvent := 2 * listAttemptsPerDelivery
	events := max(20, opts.ListAttempts/perEvent/20*20)
	seed := listSeed{
		Prefix:          fmt.Sprintf("bench-%s-list-", st.runID),
		Events:          events,
		Accounts:        opts.ListAccounts,
		BaseMS:          time.Now().Add(-48 * time.Hour).UnixMilli(),
		StepMS:          max(1, (48*time.Hour).Milliseconds()/int64(events)),
		EventType:       eventType,
		Attempts:        listAttemptsPerDelivery,
		URL:             url,
		ResponseHeaders: json.RawMessage(`{"Content-Type":["text/plain; charset=utf-8"],"Content-Length":["2"]}`),
	}
	headers := signature.Headers([]string{listSecret}, "018f0000-0000-7000-8000-000000000000", time.Now(), []byte("{}"))
	headers.Set("Content-Type", "application/json")
	headers.Set(signature.HeaderEvent, eventType)
	raw, err := json.Marshal(headers)
	if err != nil {
		return listSeed{}, fmt.Errorf("encode headers: %w", err)
	}
	seed.RequestHeaders = raw
	body, err := envelope(seed.Prefix+"e1", payloadData(opts.PayloadBytes))
	if err != nil {
		return listSeed{}, err
	}
	seed.RequestBody = string(body)
	return seed, nil
}
