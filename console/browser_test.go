package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/surveyhooks/surveyhooks/activities"
	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/console"
	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/netguard"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
	"github.com/surveyhooks/surveyhooks/workflows"
)

const platformKey = "console-test-platform-key"

// screenshotDir is where the tests write each screen at 1280 and 375 pixels wide
// (gitignored; README names it).
const screenshotDir = "screenshots"

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// stack is the whole product as serve runs it (console, API, delivery service, worker,
// PostgreSQL, Temporal) with an httptest receiver, and one headless Chromium.
type stack struct {
	url      string
	st       *store.Store
	receiver string
	hits     atomic.Int64
	browser  context.Context
}

// chromium finds Debian's browser. Locally its absence skips the browser tests; under
// CI=true it fails them, so that CI never passes without running them.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI=true requires the browser tests: apt-get install chromium")
	}
	t.Skip("chromium is not installed: the console's browser tests need it (apt-get install chromium)")
	return ""
}

func setup(t *testing.T) *stack {
	t.Helper()
	path := chromium(t)
	delays := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}
	schedule := delivery.Schedule{Delays: delays, AttemptTimeout: 2 * time.Second}
	db := testenv.Postgres(t)
	st := store.New(db, testenv.Keyring())
	te := testenv.Temporal(t)
	acts := activities.New(st, netguard.Policy{Allowed: loopback}.Client(), activities.Config{Schedule: schedule}, nil)
	d := delivery.New(st, te.Client, delivery.Config{TaskQueue: te.TaskQueue, Schedule: schedule, RecoveryRate: 50,
		Outbox: delivery.OutboxConfig{Interval: 200 * time.Millisecond, Grace: time.Second}}, nil)
	outboxCtx, stopOutbox := context.WithCancel(context.Background())
	go func() { _ = d.Run(outboxCtx) }()
	t.Cleanup(stopOutbox)
	te.StartWorker(t, func(r worker.Registry) {
		workflows.Register(r, acts)
		workflows.RegisterRecovery(r, delivery.NewRecoverer(d))
	})
	srv := api.New(api.Config{APIKeys: []string{platformKey}, URLPolicy: netguard.Policy{AllowHTTP: true, Allowed: loopback}}, st, d, nil)
	c, err := console.New(console.Config{API: srv.Handler(), Store: st, TemporalUIURL: "http://127.0.0.1:8233",
		TemporalNamespace: te.Namespace, Brand: console.Brand{Name: "Acme Surveys", Accent: "#7b3fe4"}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, c.Handler())
	mux.Handle("/", srv.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)

	s := &stack{url: hs.URL, st: st}
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"received":"hit-%d"}`, n)
	}))
	t.Cleanup(rc.Close)
	s.receiver = rc.URL + "/hooks"

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	require.NoError(t, chromedp.Do(browser), "start chromium")
	s.browser = browser
	require.NoError(t, os.MkdirAll(screenshotDir, 0o755))
	return s
}

// tab opens a tab in a fresh browser profile (its own cookies). Every request the tab
// makes is recorded; when the test ends, any that left the console's origin fails it.
func (s *stack) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(s.browser, chromedp.WithNewBrowserContext())
	require.NoError(t, chromedp.Do(ctx))
	var mu sync.Mutex
	var foreign []string
	requests := chromedp.Events(ctx, network.RequestWillBeSent)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range requests {
			if err != nil {
				return
			}
			u := ev.Request.URL
			if !strings.HasPrefix(u, s.url+"/") && !strings.HasPrefix(u, "data:") {
				mu.Lock()
				foreign = append(foreign, u)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, foreign, "requests that left the console's origin")
	})
	return ctx
}

// api calls the REST API with the platform key.
func (s *stack) api(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	return callAPI(t, s.url, method, path, body)
}

// callAPI calls the REST API served at base with the platform key.
func callAPI(t *testing.T, base, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+platformKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp.StatusCode, out
}

func (s *stack) createWebhook(t *testing.T, account, name string) string {
	t.Helper()
	status, out := s.api(t, http.MethodPost, "/api/accounts/"+account+"/webhooks",
		map[string]any{"name": name, "url": s.receiver + "/" + name, "events": []string{"survey.response.*"}})
	require.Equal(t, http.StatusCreated, status, out)
	return out["id"].(string)
}

func (s *stack) publish(t *testing.T, account string) {
	t.Helper()
	status, out := s.api(t, http.MethodPost, "/api/events", map[string]any{"account_id": account,
		"event_type": "survey.response.completed", "survey_id": "survey-1",
		"data": map[string]any{"survey": map[string]any{"id": "survey-1", "title": "NPS"},
			"response": map[string]any{"id": "r-1", "answers": []any{map[string]any{"questionId": "q1", "value": 9}}}}})
	require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status, out)
}

// shoot writes the tab's page at 1280 and at 375 pixels wide.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	for _, width := range []int64{1280, 375} {
		do(t, ctx, chromedp.EmulateViewport(width, 800))
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(screenshotDir, fmt.Sprintf("%s-%d.png", name, width)), png, 0o644))
	}
	do(t, ctx, chromedp.EmulateViewport(1280, 800))
}

// actionTimeout bounds each step, so that a page that never shows what a step waits for
// fails the test with a screenshot instead of hanging it.
const actionTimeout = 20 * time.Second

// do runs steps in the tab; on failure it saves the page as failure-<test>.png and logs
// its HTML.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		// The diagnostics get their own deadline: a page that broke mid-render must fail
		// the test, not hang it.
		dctx, cancel := context.WithTimeout(ctx, actionTimeout)
		defer cancel()
		name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
		if png, serr := chromedp.Run(dctx, chromedp.FullScreenshot(100)); serr == nil {
			_ = os.WriteFile(filepath.Join(screenshotDir, "failure-"+name+".png"), png, 0o644)
		}
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		html, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("browser step failed at %s: %v\n%s", loc, err, html)
	}
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	require.NoError(t, err, css)
	return s
}

// open navigates and returns the answer's status.
func open(t *testing.T, ctx context.Context, url string) int64 {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	require.NoError(t, err, url)
	return resp.Status
}

// waitPath waits until the tab shows path, whatever navigations it takes to get there.
func waitPath(t *testing.T, ctx context.Context, s *stack, path string) {
	t.Helper()
	require.Eventually(t, func() bool {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.HasPrefix(loc, s.url+path)
	}, 15*time.Second, 100*time.Millisecond, "the tab never reached %s", path)
}

// waitText waits until the element css holds want, across navigations.
func waitText(t *testing.T, ctx context.Context, css, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		got, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(css)))
		return err == nil && strings.Contains(got, want)
	}, 15*time.Second, 100*time.Millisecond, "%s never showed %q", css, want)
}

// signIn signs an operator in with the platform key.
func signIn(t *testing.T, ctx context.Context, s *stack) {
	t.Helper()
	do(t, ctx,
		chromedp.Navigate(s.url+"/console/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), platformKey),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("account")),
	)
}

// tabTo presses Tab until the focused element matches css, as a keyboard user would.
func tabTo(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	for range 80 {
		do(t, ctx, chromedp.KeyEvent(kb.Tab))
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.activeElement && document.activeElement.matches(%q)`, css)))
		require.NoError(t, err)
		if ok {
			return
		}
	}
	t.Fatalf("Tab never reached %s", css)
}
