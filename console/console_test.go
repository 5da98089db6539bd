package console_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/api"
)

// TestConsole drives the console in Chromium over the whole product: one stack and one
// browser for every case (each in its own browser profile), which keeps the package fast.
func TestConsole(t *testing.T) {
	s := setup(t)
	t.Run("operator follows a delivery and retries it", func(t *testing.T) { testOperatorFlow(t, s) })
	t.Run("account link sees its account only", func(t *testing.T) { testAccountLink(t, s) })
	t.Run("form without CSRF token is refused", func(t *testing.T) { testCSRF(t, s) })
	t.Run("webhook created with the keyboard only", func(t *testing.T) { testKeyboard(t, s) })
	t.Run("every screen", func(t *testing.T) { testScreens(t, s) })
}

// testOperatorFlow: an operator signs in, creates a webhook to the receiver, sees a
// published event's delivery appear without reloading, reads the receiver's answer in the
// attempt, retries and sees the second attempt.
func testOperatorFlow(t *testing.T, s *stack) {
	ctx := s.tab(t)
	signIn(t, ctx, s)
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("account"), "acme\n"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/a/acme/webhooks/new"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/console/a/acme/webhooks/new"]`)),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "CRM sync"),
		chromedp.SendKeys(chromedp.ID("url"), s.receiver),
		chromedp.Click(chromedp.CSS(`input[name=events][value="survey.response.completed"]`)),
		chromedp.Click(chromedp.CSS(`form.stack button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("secret")),
	)
	require.Contains(t, text(t, ctx, "h1"), "CRM sync")

	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/acme/deliveries"),
		chromedp.WaitVisible(chromedp.ID("rows")),
		chromedp.Evaluate[chromedp.Void](`window.stillHere = true`),
	)
	require.Contains(t, text(t, ctx, "#rows"), "No deliveries")
	s.publish(t, "acme")
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`#rows a`)))
	still, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.stillHere === true`))
	require.NoError(t, err)
	require.True(t, still, "the delivery appeared without a reload")

	do(t, ctx,
		chromedp.Click(chromedp.CSS(`#rows a`)),
		chromedp.WaitVisible(chromedp.CSS(`#attempt-1 .response-body`)),
	)
	require.Contains(t, text(t, ctx, "#attempt-1 .response-body"), `"received": "hit-`)
	require.Contains(t, text(t, ctx, "#attempts h2"), "delivered")
	workflow, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`a[target=_blank]`), "href"))
	require.NoError(t, err)
	require.Contains(t, workflow.Value, "/workflows/event-", "operators get the workflow's link")

	do(t, ctx,
		chromedp.Click(chromedp.CSS(`form[action$="/retry"] button`)),
		chromedp.WaitVisible(chromedp.ID("attempt-2")),
	)
	require.Contains(t, text(t, ctx, "#attempt-2 h3"), "manual")
	require.Contains(t, text(t, ctx, "#attempt-2 .response-body"), `"received": "hit-`)
	shoot(t, ctx, "delivery-retried")
}

// testAccountLink: a console link opens account A's console only; B's webhook typed in is
// not found; the link works once; an expired link is refused; revoking the account's
// sessions signs the open page out.
func testAccountLink(t *testing.T, s *stack) {
	aHook := s.createWebhook(t, "globex", "globex-orders")
	bHook := s.createWebhook(t, "initech", "initech-tps")
	status, link := s.api(t, http.MethodPost, "/api/accounts/globex/console-links", map[string]any{"expiresIn": 600})
	require.Equal(t, http.StatusCreated, status, link)
	url := link["url"].(string)
	require.True(t, strings.HasPrefix(url, s.url+"/console/link/"), url)

	ctx := s.tab(t)
	do(t, ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("table.list")))
	page := text(t, ctx, "main")
	require.Contains(t, page, "globex-orders")
	require.NotContains(t, page, "initech")
	nav := text(t, ctx, "header")
	require.NotContains(t, nav, "Accounts", "an account's session cannot switch accounts")
	shoot(t, ctx, "portal-webhooks")

	require.EqualValues(t, http.StatusNotFound, open(t, ctx, s.url+"/console/a/globex/webhooks/"+bHook))
	require.Equal(t, "Not found", text(t, ctx, "h1"))
	require.NotContains(t, text(t, ctx, "main"), "initech-tps")
	shoot(t, ctx, "not-found")
	require.EqualValues(t, http.StatusNotFound, open(t, ctx, s.url+"/console/a/initech/webhooks"))
	require.EqualValues(t, http.StatusOK, open(t, ctx, s.url+"/console/a/globex/webhooks/"+aHook))
	require.Contains(t, text(t, ctx, "h1"), "globex-orders")
	do(t, ctx, chromedp.Navigate(s.url+"/console/accounts"), chromedp.WaitVisible(chromedp.CSS("table.list")))
	waitPath(t, ctx, s, "/console/a/globex/webhooks")

	s.publish(t, "globex")
	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/globex/deliveries"),
		chromedp.WaitVisible(chromedp.CSS("#rows a")),
		chromedp.Click(chromedp.CSS("#rows a")),
		chromedp.WaitVisible(chromedp.CSS("#attempt-1")),
	)
	temporal, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('a[target=_blank]') !== null`))
	require.NoError(t, err)
	require.False(t, temporal, "the Temporal Web UI link is for operators only")

	other := s.tab(t)
	require.EqualValues(t, http.StatusGone, open(t, other, url), "a link opens once")
	require.Equal(t, "This link cannot be used", text(t, other, "h1"))
	shoot(t, other, "link-refused")
	expired := api.NewToken()
	require.NoError(t, s.st.CreateConsoleLink(t.Context(), "globex", api.HashToken(expired), time.Now().Add(-time.Second)))
	require.EqualValues(t, http.StatusGone, open(t, other, s.url+"/console/link/"+expired), "an expired link opens nothing")

	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/globex/deliveries"),
		chromedp.WaitVisible(chromedp.ID("rows")),
	)
	status, revoked := s.api(t, http.MethodDelete, "/api/accounts/globex/console-sessions", nil)
	require.Equal(t, http.StatusOK, status, revoked)
	require.EqualValues(t, 1, revoked["revoked"])
	waitPath(t, ctx, s, "/console/ended")
	require.Equal(t, "Your session has ended", text(t, ctx, "h1"))
	shoot(t, ctx, "session-ended")
	require.EqualValues(t, http.StatusOK, open(t, ctx, s.url+"/console/a/globex/webhooks"))
	require.Equal(t, "Your session has ended", text(t, ctx, "h1"), "the revoked session stays signed out")
}

// testCSRF: the create form sent without its CSRF token is refused and creates nothing.
func testCSRF(t *testing.T, s *stack) {
	ctx := s.tab(t)
	signIn(t, ctx, s)
	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/acme/webhooks/new"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('form.stack input[name=csrf]').remove()`),
		chromedp.SendKeys(chromedp.ID("name"), "forged"),
		chromedp.SendKeys(chromedp.ID("url"), s.receiver),
		chromedp.Click(chromedp.CSS(`input[name=events][value="survey.response.completed"]`)),
		chromedp.Click(chromedp.CSS(`form.stack button[type=submit]`)),
	)
	waitText(t, ctx, "h1", "Request refused")
	status, list := s.api(t, http.MethodGet, "/api/accounts/acme/webhooks", nil)
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, fmt.Sprint(list), "forged")
}

// testKeyboard creates a webhook with the keyboard alone: Tab to each control, type, Space
// to tick, Enter to submit.
func testKeyboard(t *testing.T, s *stack) {
	ctx := s.tab(t)
	signIn(t, ctx, s)
	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/keys/webhooks"),
		chromedp.WaitVisible(chromedp.CSS("main h1")),
	)
	tabTo(t, ctx, `a[href="/console/a/keys/webhooks/new"]`)
	do(t, ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("name")))
	tabTo(t, ctx, "#name")
	do(t, ctx, chromedp.KeyEvent("Keyboard hook"))
	tabTo(t, ctx, "#url")
	do(t, ctx, chromedp.KeyEvent(s.receiver))
	tabTo(t, ctx, `input[name=events][value="survey.response.completed"]`)
	do(t, ctx, chromedp.KeyEvent(" "))
	tabTo(t, ctx, `form.stack button[type=submit]`)
	do(t, ctx, chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.ID("secret")))
	require.Contains(t, text(t, ctx, "h1"), "Keyboard hook")
	require.Contains(t, text(t, ctx, "dl.facts"), "survey.response.completed")
}

// testScreens opens every screen, with a screenshot of each; the tab's recorder checks that
// none loads anything from another origin.
func testScreens(t *testing.T, s *stack) {
	ctx := s.tab(t)
	do(t, ctx, chromedp.Navigate(s.url+"/console/signin"), chromedp.WaitVisible(chromedp.ID("key")))
	shoot(t, ctx, "signin")
	signIn(t, ctx, s)
	shoot(t, ctx, "accounts")
	do(t, ctx, chromedp.Navigate(s.url+"/console/a/empty/webhooks"), chromedp.WaitVisible(chromedp.CSS(".empty")))
	shoot(t, ctx, "webhooks-empty")

	hook := s.createWebhook(t, "screens", "Orders CRM")
	s.createWebhook(t, "screens", "Data warehouse")
	status, out := s.api(t, http.MethodPost, "/api/accounts/screens/surveys/survey-1/webhooks", map[string]any{"name": "NPS alerts",
		"url": s.receiver + "/nps", "events": []string{"survey.response.completed"}, "rateLimit": map[string]any{"perSecond": 5, "burst": 10}})
	require.Equal(t, http.StatusCreated, status, out)
	surveyHook := out["id"].(string)
	s.publish(t, "screens")
	do(t, ctx, chromedp.Navigate(s.url+"/console/a/screens/webhooks"), chromedp.WaitVisible(chromedp.CSS("table.list")))
	require.Contains(t, text(t, ctx, "table.list"), "survey survey-1 (the survey's own webhook)", "a survey's webhook is listed with its survey")
	shoot(t, ctx, "webhooks")

	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/screens/webhooks/new"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("url"), "ftp://example.com/x"),
		chromedp.Click(chromedp.CSS(`form.stack button[type=submit]`)),
		chromedp.WaitVisible(chromedp.ID("url-error")),
	)
	require.NotEmpty(t, text(t, ctx, "#url-error"), "the API's error shows next to its field")
	shoot(t, ctx, "webhook-form-errors")

	page := s.url + "/console/a/screens/webhooks/" + hook
	do(t, ctx,
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.ID("secret")),
		chromedp.Click(chromedp.CSS(`#secret button`)),
		chromedp.WaitVisible(chromedp.ID("secret-value")),
		chromedp.Click(chromedp.CSS(`button[hx-post$="/test"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#test-result .attempt`)),
	)
	secret, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("secret-value")))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(secret, "whsec_"), secret)
	require.Contains(t, text(t, ctx, "#test-result"), "webhook.test")
	shoot(t, ctx, "webhook-secret-and-test")
	do(t, ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("svg.chart")))
	shoot(t, ctx, "webhook")
	do(t, ctx,
		chromedp.Click(chromedp.CSS(`form.rotate button`)),
		chromedp.WaitVisible(chromedp.ID("secret-value")),
	)
	require.Contains(t, text(t, ctx, "#secret"), "also signs until")

	for _, screen := range []struct{ name, path, wait string }{
		{"webhook-edit", "/webhooks/" + hook + "/edit", "#name"},
		{"webhook-survey-edit", "/webhooks/" + surveyHook + "/edit", "#ratePerSecond"},
		{"webhook-delete", "/webhooks/" + hook + "/delete", "button.danger"},
		{"deliveries", "/deliveries", "#rows a"},
		{"recover", "/webhooks/" + hook + "/recover", "#since"},
		{"catalog", "/event-types", "article.card"},
	} {
		do(t, ctx,
			chromedp.Navigate(s.url+"/console/a/screens"+screen.path),
			chromedp.WaitVisible(chromedp.CSS(screen.wait)),
		)
		shoot(t, ctx, screen.name)
	}

	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/screens/deliveries"),
		chromedp.WaitVisible(chromedp.CSS("#rows a")),
		chromedp.SetValue(chromedp.ID("f-type"), "form.submission.created"),
		chromedp.Click(chromedp.CSS(`form.filters button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS("#rows td.empty")),
	)
	require.Contains(t, text(t, ctx, "#rows"), "No delivery matches these filters")
	shoot(t, ctx, "deliveries-filtered")
	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/screens/deliveries?surveyId=survey-1&type=survey.response.completed"),
		chromedp.WaitVisible(chromedp.CSS("#rows a")),
	)
	require.NotContains(t, text(t, ctx, "#rows"), "webhook.test", "the filters reach the API")

	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/screens/deliveries?webhook="+hook),
		chromedp.WaitVisible(chromedp.CSS("#rows a")),
		chromedp.Click(chromedp.CSS("#rows a")),
		chromedp.WaitVisible(chromedp.CSS("#attempt-1")),
	)
	shoot(t, ctx, "delivery")
	do(t, ctx,
		chromedp.Navigate(s.url+"/console/a/screens/deliveries?webhook="+surveyHook),
		chromedp.WaitVisible(chromedp.CSS("#rows a")),
		chromedp.Click(chromedp.CSS("#rows a")),
		chromedp.WaitVisible(chromedp.CSS("#attempt-1")),
	)
	require.Contains(t, text(t, ctx, "#attempt-1"), "/hooks/nps", "a survey's webhook's delivery opens with its attempt")

	do(t, ctx,
		chromedp.Navigate(page+"/recover"),
		chromedp.WaitVisible(chromedp.ID("since")),
		chromedp.SetValue(chromedp.ID("since"), time.Now().Add(-24*time.Hour).Format("2006-01-02T15:04")),
		chromedp.Click(chromedp.CSS(`form.stack button[value=count]`)),
		chromedp.WaitVisible(chromedp.ID("matched")),
	)
	require.Contains(t, text(t, ctx, "#matched"), "0 deliveries match", "counted before it starts: the screen's deliveries were delivered")
	shoot(t, ctx, "recover-counted")
	do(t, ctx,
		chromedp.Click(chromedp.CSS(`form.stack button[value=start]`)),
		chromedp.WaitVisible(chromedp.ID("progress")),
	)
	shoot(t, ctx, "recovery")

	do(t, ctx,
		chromedp.Navigate(page+"/delete"),
		chromedp.WaitVisible(chromedp.CSS("button.danger")),
		chromedp.Click(chromedp.CSS("button.danger")),
		chromedp.WaitVisible(chromedp.CSS("table.list")),
	)
	require.NotContains(t, text(t, ctx, "table.list"), "Orders CRM", "deleted after confirming")
}
