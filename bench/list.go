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
)

const (
	// listAttemptsPerDelivery: every generated delivery has this many attempts.
	listAttemptsPerDelivery = 5
	// listRequests are timed per route, after listWarmup untimed ones.
	listRequests = 500
	listWarmup   = 20
)

// ListResult is how fast the API reads deliveries out of the tables of many accounts.
type ListResult struct {
	Accounts      int     `json:"accounts"`
	Webhooks      int     `json:"webhooks"`
	Events        int     `json:"events"`
	Deliveries    int     `json:"deliveries"`
	AttemptRows   int     `json:"attemptRows"`
	InsertSeconds float64 `json:"insertSeconds"`
	// AttemptsTableBytes and DeliveriesTableBytes include indexes and TOAST.
	AttemptsTableBytes   int64          `json:"attemptsTableBytes"`
	DeliveriesTableBytes int64          `json:"deliveriesTableBytes"`
	Queries              []QueryLatency `json:"queries"`
}

// QueryLatency is the latency of one API request, listRequests times in a row.
type QueryLatency struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// Over is how many deliveries the route reads from: the account's or the webhook's.
	Over    int     `json:"over"`
	Latency Latency `json:"latency"`
}

const (
	tableSizeQuery = `SELECT pg_total_relation_size($1::regclass)`

	// The scenario's own reads, to build its requests: a webhook by name, and how many
	// deliveries an account or a webhook has and which is the middle one of its list.
	listWebhookIDQuery          = `SELECT id FROM webhooks WHERE account_id = $1 AND name = $2`
	countAccountDeliveriesQuery = `SELECT count(*) FROM deliveries WHERE account_id = $1`
	middleAccountDeliveryQuery  = `SELECT id FROM deliveries WHERE account_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1`
	countWebhookDeliveriesQuery = `SELECT count(*) FROM deliveries WHERE webhook_id = $1`
	middleWebhookDeliveryQuery  = `SELECT id FROM deliveries WHERE webhook_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1`
)

// listed is the deliveries of an account or a webhook: how many, and the middle one.
type listed struct {
	count  int
	middle uuid.UUID
}

// cursor is the list cursor that starts after the middle delivery, as the API encodes it.
func (l listed) cursor() string {
	return base64.RawURLEncoding.EncodeToString(l.middle[:])
}

// runList fills the tables with opts.ListAccounts accounts, ten webhooks each and about
// opts.ListAttempts attempt rows (listseed.go), then times the API's delivery lists of the
// large account, of a small one and of two of the large account's webhooks, each with the
// key of its account.
func runList(ctx context.Context, st *stack, opts Options) (*ListResult, error) {
	p := st.recv.begin(1, 0, 0)
	seed, err := newListSeed(st, opts, st.recv.url(p, 0))
	if err != nil {
		return nil, err
	}
	res := &ListResult{Accounts: seed.Accounts}
	if err := seedList(ctx, st, seed, res); err != nil {
		return nil, err
	}
	for table, dst := range map[string]*int64{"delivery_attempts": &res.AttemptsTableBytes, "deliveries": &res.DeliveriesTableBytes} {
		if err := st.db.QueryRowContext(ctx, tableSizeQuery, table).Scan(dst); err != nil {
			return nil, fmt.Errorf("size of %s: %w", table, err)
		}
	}

	large, small := seed.accountID(1), seed.accountID(2)
	keys := map[string]string{}
	for _, account := range []string{large, small} {
		if keys[account], err = st.createAccountKey(ctx, account); err != nil {
			return nil, err
		}
	}
	// The large account's webhook 0 is account-wide and hears all its events.
	var wideHook, surveyHook uuid.UUID
	if err := st.db.GetContext(ctx, &wideHook, listWebhookIDQuery, large, webhookName(0)); err != nil {
		return nil, fmt.Errorf("find the account-wide webhook: %w", err)
	}
	if err := st.db.GetContext(ctx, &surveyHook, listWebhookIDQuery, large, webhookName(listSurveyWebhook)); err != nil {
		return nil, fmt.Errorf("find the survey webhook: %w", err)
	}
	largeList, err := st.listed(ctx, countAccountDeliveriesQuery, middleAccountDeliveryQuery, large)
	if err != nil {
		return nil, err
	}
	smallList, err := st.listed(ctx, countAccountDeliveriesQuery, middleAccountDeliveryQuery, small)
	if err != nil {
		return nil, err
	}
	wideList, err := st.listed(ctx, countWebhookDeliveriesQuery, middleWebhookDeliveryQuery, wideHook)
	if err != nil {
		return nil, err
	}
	surveyList, err := st.listed(ctx, countWebhookDeliveriesQuery, middleWebhookDeliveryQuery, surveyHook)
	if err != nil {
		return nil, err
	}

	account := "/api/accounts/" + large + "/deliveries"
	wide := fmt.Sprintf("/api/accounts/%s/webhooks/%s/deliveries", large, wideHook)
	survey := fmt.Sprintf("/api/accounts/%s/surveys/s%d/webhooks/%s/deliveries", large, listSurveyWebhook, surveyHook)
	routes := []struct {
		QueryLatency
		key string
	}{
		{QueryLatency{Name: "account, first page (50)", Path: account, Over: largeList.count}, keys[large]},
		{QueryLatency{Name: "account, status=failed", Path: account + "?status=failed", Over: largeList.count}, keys[large]},
		{QueryLatency{Name: "account, status=pending (none)", Path: account + "?status=pending", Over: largeList.count}, keys[large]},
		{QueryLatency{Name: "account, page from the middle (cursor)", Path: account + "?cursor=" + largeList.cursor(), Over: largeList.count}, keys[large]},
		{QueryLatency{Name: "account, limit=200", Path: account + "?limit=200", Over: largeList.count}, keys[large]},
		{QueryLatency{Name: "small account, first page", Path: "/api/accounts/" + small + "/deliveries", Over: smallList.count}, keys[small]},
		{QueryLatency{Name: "account-wide webhook, first page", Path: wide, Over: wideList.count}, keys[large]},
		{QueryLatency{Name: "account-wide webhook, cursor", Path: wide + "?cursor=" + wideList.cursor(), Over: wideList.count}, keys[large]},
		{QueryLatency{Name: "survey webhook, first page", Path: survey, Over: surveyList.count}, keys[large]},
		{QueryLatency{Name: "survey webhook, status=failed", Path: survey + "?status=failed", Over: surveyList.count}, keys[large]},
		{QueryLatency{Name: "survey webhook, cursor", Path: survey + "?cursor=" + surveyList.cursor(), Over: surveyList.count}, keys[large]},
		{QueryLatency{Name: "one delivery with its 5 attempts", Path: survey + "/" + surveyList.middle.String(), Over: surveyList.count}, keys[large]},
	}
	for _, r := range routes {
		q, err := st.timeList(ctx, r.QueryLatency, func() (int, []byte, error) {
			return st.apiAs(ctx, r.key, http.MethodGet, r.Path, nil)
		})
		if err != nil {
			return nil, err
		}
		res.Queries = append(res.Queries, q)
	}

	// The console's deliveries and delivery screens, rendered for the large account's
	// session (a console link's), which reads them through the API in-process.
	cookie, err := st.consoleSession(ctx, large)
	if err != nil {
		return nil, err
	}
	screens := []QueryLatency{
		{Name: "console: deliveries screen", Path: "/console/a/" + large + "/deliveries", Over: largeList.count},
		{Name: "console: deliveries screen, status=failed", Path: "/console/a/" + large + "/deliveries?status=failed", Over: largeList.count},
		{Name: "console: deliveries screen, live rows", Path: "/console/a/" + large + "/deliveries?fragment=rows", Over: largeList.count},
		{Name: "console: delivery screen (5 attempts)", Path: fmt.Sprintf("/console/a/%s/webhooks/%s/deliveries/%s", large, wideHook, wideList.middle), Over: wideList.count},
	}
	for _, r := range screens {
		q, err := st.timeList(ctx, r, func() (int, []byte, error) { return st.consoleGet(ctx, cookie, r.Path) })
		if err != nil {
			return nil, err
		}
		res.Queries = append(res.Queries, q)
	}
	st.progress("")
	return res, nil
}

// timeList times get listRequests times, after listWarmup untimed calls; every answer
// must be a 200.
func (s *stack) timeList(ctx context.Context, q QueryLatency, get func() (int, []byte, error)) (QueryLatency, error) {
	s.progress("list         timing %s", q.Name)
	var ms []float64
	for n := range listWarmup + listRequests {
		t := time.Now()
		status, raw, err := get()
		elapsed := time.Since(t)
		if err != nil {
			return QueryLatency{}, err
		}
		if status != http.StatusOK {
			return QueryLatency{}, fmt.Errorf("GET %s answered %d: %s", q.Path, status, firstLine(raw))
		}
		if n >= listWarmup {
			ms = append(ms, float64(elapsed.Microseconds())/1000)
		}
	}
	q.Latency = summarize(ms)
	return q, nil
}

// consoleSession opens a console link of account, minted through the API, and returns the
// session cookie it sets.
func (s *stack) consoleSession(ctx context.Context, account string) (*http.Cookie, error) {
	status, raw, err := s.apiRaw(ctx, http.MethodPost, "/api/accounts/"+account+"/console-links", nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusCreated {
		return nil, fmt.Errorf("mint a console link of account %s: the API answered %d: %s", account, status, firstLine(raw))
	}
	var link struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(raw, &link); err != nil {
		return nil, fmt.Errorf("decode console link: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("build console link request: %w", err)
	}
	resp, err := s.apiClient.Transport.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("open console link: %w", err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "surveyhooks_console" {
			return c, nil
		}
	}
	return nil, fmt.Errorf("open console link: answered %d without a session (is the console served?)", resp.StatusCode)
}

// consoleGet fetches a console page with the session cookie.
func (s *stack) consoleGet(ctx context.Context, cookie *http.Cookie, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.apiURL+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.AddCookie(cookie)
	resp, err := s.apiClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("GET %s: read response: %w", path, err)
	}
	return resp.StatusCode, raw, nil
}

// listed counts the deliveries of an account or a webhook and finds the middle one.
func (s *stack) listed(ctx context.Context, countQuery, middleQuery string, of any) (listed, error) {
	var l listed
	if err := s.db.GetContext(ctx, &l.count, countQuery, of); err != nil {
		return listed{}, fmt.Errorf("count deliveries of %v: %w", of, err)
	}
	if err := s.db.GetContext(ctx, &l.middle, middleQuery, of, l.count/2); err != nil {
		return listed{}, fmt.Errorf("middle delivery of %v: %w", of, err)
	}
	return l, nil
}

// createAccountKey makes a key of the account through the API, with the platform key.
func (s *stack) createAccountKey(ctx context.Context, account string) (string, error) {
	status, raw, err := s.apiRaw(ctx, http.MethodPost, "/api/accounts/"+account+"/keys", []byte(`{"name":"bench list"}`))
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		return "", fmt.Errorf("create key of account %s: the API answered %d: %s", account, status, firstLine(raw))
	}
	var created struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(raw, &created); err != nil {
		return "", fmt.Errorf("decode created key: %w", err)
	}
	return created.Key, nil
}

func (r *ListResult) writeText(w io.Writer) {
	fmt.Fprintf(w, "\nAPI reads over %d attempt rows: %d accounts, %d webhooks (10 each: 2 account-wide, 8 of one survey), %d events, %d deliveries (half of them the large account's); attempts table %s, deliveries table %s; inserted in %.0f s; %d requests each, one at a time, with the account's key\n",
		r.AttemptRows, r.Accounts, r.Webhooks, r.Events, r.Deliveries, mib(r.AttemptsTableBytes), mib(r.DeliveriesTableBytes), r.InsertSeconds, listRequests)
	fmt.Fprintf(w, "%-40s %8s %9s %9s %9s %9s %9s\n", "", "of", "p50", "p90", "p95", "p99", "max")
	for _, q := range r.Queries {
		l := q.Latency
		fmt.Fprintf(w, "%-40s %8d %9s %9s %9s %9s %9s\n", q.Name, q.Over, ms(l.P50), ms(l.P90), ms(l.P95), ms(l.P99), ms(l.Max))
	}
}
