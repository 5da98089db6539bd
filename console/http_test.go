package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/console"
	"github.com/surveyhooks/surveyhooks/store"
	"github.com/surveyhooks/surveyhooks/testenv"
)

// setupHTTP serves the console and the API over PostgreSQL alone (no delivery engine), for
// the checks that need no browser.
func setupHTTP(t *testing.T, frameAncestors ...string) (*httptest.Server, *store.Store) {
	t.Helper()
	st := store.New(testenv.Postgres(t), testenv.Keyring())
	srv := api.New(api.Config{APIKeys: []string{platformKey}}, st, nil, nil)
	c, err := console.New(console.Config{API: srv.Handler(), Store: st, FrameAncestors: frameAncestors})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, c.Handler())
	mux.Handle("/", srv.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs, st
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// operator signs in over plain HTTP and returns the client (with its cookies) and the
// session's CSRF token.
func operator(t *testing.T, base string) (*http.Client, string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}
	page := get(t, c, base+"/console/signin")
	resp, err := c.PostForm(base+"/console/signin", url.Values{"csrf": {csrfInput.FindStringSubmatch(page)[1]}, "key": {platformKey}})
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m := csrfInput.FindStringSubmatch(string(body))
	require.NotNil(t, m, "the accounts page has the session's token")
	return c, m[1]
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// TestCSRFRefusesChanges: a session's POST without its token, or with another, is refused
// and changes nothing; with it, the webhook is created. The sign-in form has its own token.
func TestCSRFRefusesChanges(t *testing.T) {
	t.Parallel()
	hs, _ := setupHTTP(t)
	c, csrf := operator(t, hs.URL)
	form := url.Values{"name": {"forged"}, "url": {"https://example.com/hook"}, "events": {"survey.response.completed"}}
	noRedirect := *c
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, token := range []string{"", "wrong"} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if token != "" {
			f.Set("csrf", token)
		}
		resp, err := noRedirect.PostForm(hs.URL+"/console/a/acme/webhooks", f)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "token %q", token)
	}
	require.NotContains(t, get(t, c, hs.URL+"/console/a/acme/webhooks"), "forged")

	form.Set("csrf", csrf)
	resp, err := noRedirect.PostForm(hs.URL+"/console/a/acme/webhooks", form)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Contains(t, get(t, c, hs.URL+"/console/a/acme/webhooks"), "forged")

	resp, err = http.PostForm(hs.URL+"/console/signin", url.Values{"key": {platformKey}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a sign-in without the form's token")
}

// TestHeadersOnEveryAnswer: the CSP, nosniff and framing headers are on pages, assets,
// errors and refusals alike; the session cookie is HttpOnly and SameSite=Lax.
func TestHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	hs, _ := setupHTTP(t)
	for _, path := range []string{"/console/signin", "/console/assets/console.js", "/console/assets/htmx.min.js",
		"/console/brand.css", "/console/nothing", "/console/link/unknown", "/console/ended", "/console/a/acme/webhooks"} {
		resp, err := http.Get(hs.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'self'", path)
		require.Contains(t, csp, "frame-ancestors 'none'", path)
		require.NotContains(t, csp, "unsafe", path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := get(t, c, hs.URL+"/console/signin")
	resp, err := c.PostForm(hs.URL+"/console/signin", url.Values{"csrf": {csrfInput.FindStringSubmatch(page)[1]}, "key": {platformKey}})
	require.NoError(t, err)
	resp.Body.Close()
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "surveyhooks_console" {
			session = ck
		}
	}
	require.NotNil(t, session)
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, session.SameSite)
	require.False(t, session.Secure, "plain http here")
}

// TestFramedByPlatform: the frame-ancestors the platform names replace 'none'.
func TestFramedByPlatform(t *testing.T) {
	t.Parallel()
	hs, _ := setupHTTP(t, "https://app.example.com")
	resp, err := http.Get(hs.URL + "/console/signin")
	require.NoError(t, err)
	resp.Body.Close()
	require.True(t, strings.HasSuffix(resp.Header.Get("Content-Security-Policy"), "frame-ancestors https://app.example.com"))
	require.Empty(t, resp.Header.Get("X-Frame-Options"))
}

// TestBrandIsChecked: a brand the console cannot show safely stops it from starting.
func TestBrandIsChecked(t *testing.T) {
	t.Parallel()
	for _, b := range []console.Brand{
		{Accent: "red; background: url(https://evil.example)"},
		{Logo: []byte("<html><script>alert(1)</script></html>")},
		{Logo: make([]byte, console.MaxLogoBytes+1)},
	} {
		_, err := console.New(console.Config{Brand: b})
		require.Error(t, err)
	}
	_, err := console.New(console.Config{Brand: console.Brand{Accent: "#00aa00", Logo: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)}})
	require.NoError(t, err)
}

// TestEveryWebhookOfTheAccount: the console lists a survey's webhook beside the account-wide
// ones and edits it without a survey filter (its survey is fixed); the form sets and
// removes a rate limit, sets an account-wide webhook back to every survey, and shows the
// API's error next to a rate it refuses, changing nothing.
func TestEveryWebhookOfTheAccount(t *testing.T) {
	t.Parallel()
	hs, _ := setupHTTP(t)
	c, csrf := operator(t, hs.URL)
	status, out := callAPI(t, hs.URL, http.MethodPost, "/api/accounts/acme/surveys/s1/webhooks",
		map[string]any{"name": "Survey one's CRM", "url": "https://example.com/s1", "events": []string{"survey.response.completed"}})
	require.Equal(t, http.StatusCreated, status, out)
	scoped := out["id"].(string)
	status, out = callAPI(t, hs.URL, http.MethodPost, "/api/accounts/acme/webhooks",
		map[string]any{"name": "Warehouse", "url": "https://example.com/all", "events": []string{"*"}, "surveyIds": []string{"s2", "s3"}})
	require.Equal(t, http.StatusCreated, status, out)
	wide := out["id"].(string)

	list := get(t, c, hs.URL+"/console/a/acme/webhooks")
	require.Contains(t, list, "Survey one&#39;s CRM")
	require.Contains(t, list, "survey s1 (the survey&#39;s own webhook)")
	require.Contains(t, list, "s2, s3")
	require.Contains(t, get(t, c, hs.URL+"/console/a/acme/webhooks/"+scoped), "https://example.com/s1")

	edit := get(t, c, hs.URL+"/console/a/acme/webhooks/"+scoped+"/edit")
	require.NotContains(t, edit, `name="surveyIds"`, "a survey's webhook has no survey filter")
	require.Contains(t, edit, "belongs to survey <code>s1</code>")

	save := func(id string, fields url.Values) (int, string) {
		t.Helper()
		fields.Set("csrf", csrf)
		resp, err := c.PostForm(hs.URL+"/console/a/acme/webhooks/"+id, fields)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	hookOf := func(id string) map[string]any {
		t.Helper()
		status, out := callAPI(t, hs.URL, http.MethodGet, "/api/accounts/acme/webhooks/"+id, nil)
		require.Equal(t, http.StatusOK, status, out)
		return out
	}
	fields := func(name, rate, burst string) url.Values {
		return url.Values{"name": {name}, "url": {"https://example.com/s1"}, "events": {"survey.response.completed"},
			"surveyId": {"s1"}, "ratePerSecond": {rate}, "rateBurst": {burst}}
	}

	status, _ = save(scoped, fields("Survey one's CRM", "2.5", "4"))
	require.Equal(t, http.StatusOK, status)
	got := hookOf(scoped)
	require.Equal(t, map[string]any{"perSecond": 2.5, "burst": 4.0}, got["rateLimit"])
	require.Equal(t, "s1", got["surveyId"], "still the survey's")
	require.Contains(t, get(t, c, hs.URL+"/console/a/acme/webhooks/"+scoped), "2.5 requests a second, 4 at once")

	status, page := save(scoped, fields("Renamed", "fast", ""))
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Contains(t, page, `id="rate-error"`, "the API's error shows next to the rate limit")
	require.Equal(t, "Survey one's CRM", hookOf(scoped)["name"], "a refused form changes nothing")

	status, _ = save(scoped, fields("Survey one's CRM", "", ""))
	require.Equal(t, http.StatusOK, status)
	require.Nil(t, hookOf(scoped)["rateLimit"], "an empty rate removes the limit")

	status, _ = save(wide, url.Values{"name": {"Warehouse"}, "url": {"https://example.com/all"}, "events": {"*"}, "surveyIds": {""}})
	require.Equal(t, http.StatusOK, status)
	require.Nil(t, hookOf(wide)["surveyIds"], "an empty survey filter is every survey")
	require.Contains(t, get(t, c, hs.URL+"/console/a/acme/webhooks/"+wide), "every survey of the account")

	// A webhook made in the console gets its rate limit (burst 1 when none is typed).
	resp, err := c.PostForm(hs.URL+"/console/a/acme/webhooks", url.Values{"csrf": {csrf}, "name": {"Limited"},
		"url": {"https://example.com/limited"}, "events": {"*"}, "surveyIds": {"s4"}, "ratePerSecond": {"3"}, "isActive": {"on"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	made := strings.TrimPrefix(resp.Request.URL.Path, "/console/a/acme/webhooks/")
	got = hookOf(made)
	require.Equal(t, "Limited", got["name"])
	require.Equal(t, map[string]any{"perSecond": 3.0, "burst": 1.0}, got["rateLimit"])
	require.Equal(t, []any{"s4"}, got["surveyIds"])
}
