package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/client"
	"github.com/surveyhooks/surveyhooks/eventtype"
)

// The console manages every webhook of an account through the account's path
// (/api/accounts/{accountId}/webhooks), which reaches its surveys' webhooks too. It makes
// account-wide webhooks: every survey of the account, or those in surveyIds.

// accountsPage is the operator's account switcher.
type accountsPage struct {
	Accounts []string
	Next     string
	Error    string
}

// handleAccounts lists the accounts, for operators; an account's session has only its own.
func (s *Server) handleAccounts(w http.ResponseWriter, r *http.Request, c *call) {
	if !c.session.Operator() {
		http.Redirect(w, r, accountPath(c.session.AccountID, "webhooks"), http.StatusSeeOther)
		return
	}
	if to := strings.TrimSpace(r.URL.Query().Get("account")); to != "" {
		if !api.ValidID(to) {
			s.renderStatus(w, r, c, http.StatusBadRequest, "accounts", accountsPage{Error: "An account id is 1 to 128 characters among A-Z a-z 0-9 . _ : -"})
			return
		}
		http.Redirect(w, r, accountPath(to, "webhooks"), http.StatusSeeOther)
		return
	}
	limit := client.Limit(100)
	params := &client.ListAccountsParams{Limit: &limit}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		params.Cursor = &cur
	}
	resp, err := result(c.api.ListAccountsWithResponse(r.Context(), params))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	page := accountsPage{}
	for _, a := range resp.JSON200.Data {
		page.Accounts = append(page.Accounts, a.ID)
	}
	if resp.JSON200.NextCursor != nil {
		page.Next = *resp.JSON200.NextCursor
	}
	s.render(w, r, c, "accounts", page)
}

func (s *Server) handleAccountHome(w http.ResponseWriter, r *http.Request, c *call) {
	http.Redirect(w, r, accountPath(c.account, "webhooks"), http.StatusSeeOther)
}

// webhookRow is one line of the webhooks list.
type webhookRow struct {
	client.Webhook
	// FailureRate is the share of failed attempts in the last 24 h, "" with no attempt.
	FailureRate string
	LastAt      *time.Time
}

type webhooksPage struct {
	Webhooks []webhookRow
	Next     string
}

func (s *Server) handleWebhooks(w http.ResponseWriter, r *http.Request, c *call) {
	limit := client.Limit(50)
	params := &client.ListWebhooksInAccountParams{Limit: &limit}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		params.Cursor = &cur
	}
	resp, err := result(c.api.ListWebhooksInAccountWithResponse(r.Context(), c.account, params))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	page := webhooksPage{}
	if resp.JSON200.NextCursor != nil {
		page.Next = *resp.JSON200.NextCursor
	}
	// Each webhook's failure rate is its own stats request: they run a few at a time, so
	// that a page of 50 webhooks costs a few statements' time, not 50.
	window := client.GetWebhookStatsInAccountParamsWindowN24H
	page.Webhooks = make([]webhookRow, len(resp.JSON200.Data))
	g, ctx := errgroup.WithContext(r.Context())
	g.SetLimit(statsConcurrency)
	for i, hook := range resp.JSON200.Data {
		page.Webhooks[i] = webhookRow{Webhook: hook, LastAt: lastDelivery(hook.Health)}
		g.Go(func() error {
			stats, err := result(c.api.GetWebhookStatsInAccountWithResponse(ctx, c.account, hook.ID,
				&client.GetWebhookStatsInAccountParams{Window: &window}))
			if err != nil {
				return err
			}
			page.Webhooks[i].FailureRate = failureRate(stats.JSON200.Totals)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		s.fail(w, r, c, err)
		return
	}
	s.render(w, r, c, "webhooks", page)
}

// statsConcurrency bounds the stats requests one webhooks page makes at once: a few, so
// that one page does not take the whole connection pool.
const statsConcurrency = 4

// lastDelivery is the time of the webhook's latest attempt, successful or not.
func lastDelivery(h *client.WebhookHealth) *time.Time {
	if h == nil {
		return nil
	}
	last := h.LastSuccessAt
	if h.LastFailure != nil && (last == nil || h.LastFailure.At.After(*last)) {
		last = &h.LastFailure.At
	}
	return last
}

func failureRate(b client.WebhookStatsBucket) string {
	if b.Attempts == 0 {
		return ""
	}
	pct := float64(b.Failures) * 100 / float64(b.Attempts)
	if pct > 0 && pct < 1 {
		return "<1%"
	}
	return fmt.Sprintf("%.0f%%", pct)
}

// webhookForm is the create and edit form: what was typed, the catalog to pick from, and
// the API's errors by field.
type webhookForm struct {
	ID          string
	Name        string
	URL         string
	Description string
	Events      []string
	// SurveyID is the survey of a survey's webhook being edited: its scope is fixed, so
	// the form shows it instead of the account-wide webhook's survey filter (SurveyIDs).
	SurveyID  string
	SurveyIDs string
	// RatePerSecond and RateBurst are the rate limit as typed; no rate means none.
	RatePerSecond string
	RateBurst     string
	IsActive      bool
	Choices       []eventChoice
	Notices       []eventChoice
	Wildcards     []eventChoice
	Errors        map[string]string
}

// eventChoice is one event type or wildcard the form offers.
type eventChoice struct {
	Name, Description string
}

func (s *Server) handleWebhookNew(w http.ResponseWriter, r *http.Request, c *call) {
	s.renderWebhookForm(w, r, c, http.StatusOK, webhookForm{IsActive: true})
}

func (s *Server) renderWebhookForm(w http.ResponseWriter, r *http.Request, c *call, status int, form webhookForm) {
	types, err := s.eventTypes(r, c)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	form.Choices, form.Notices, form.Wildcards = eventChoices(types, form.Events)
	s.renderStatus(w, r, c, status, "webhook_form", form)
}

// eventChoices lists the subscribable types, surveyhooks' own notices apart (a webhook
// gets them only by naming them), and the wildcards the names allow ("*" and each prefix),
// plus whatever the webhook already has that is none of these (an archived type).
func eventChoices(types []client.EventType, have []string) (choices, notices, wildcards []eventChoice) {
	wildcards = []eventChoice{{Name: "*", Description: "Every event type, also those added later (not surveyhooks' notices)."}}
	seen := map[string]bool{"*": true}
	for _, t := range types {
		if !t.Subscribable && !slices.Contains(have, t.Name) {
			continue
		}
		c := eventChoice{Name: t.Name, Description: t.Description}
		if eventtype.IsNotice(t.Name) {
			notices = append(notices, c)
		} else {
			choices = append(choices, c)
		}
		seen[t.Name] = true
		parts := strings.Split(t.Name, ".")
		for i := len(parts) - 1; i >= 1; i-- {
			w := strings.Join(parts[:i], ".") + ".*"
			if !seen[w] {
				seen[w] = true
				wildcards = append(wildcards, eventChoice{Name: w, Description: "Every " + strings.TrimSuffix(w, "*") + "… type, also those added later."})
			}
		}
	}
	slices.SortFunc(wildcards[1:], func(a, b eventChoice) int { return strings.Compare(a.Name, b.Name) })
	for _, e := range have {
		if !seen[e] {
			choices = append(choices, eventChoice{Name: e, Description: "Kept from this webhook's subscription."})
		}
	}
	return choices, notices, wildcards
}

func (s *Server) eventTypes(r *http.Request, c *call) ([]client.EventType, error) {
	resp, err := result(c.api.ListEventTypesWithResponse(r.Context()))
	if err != nil {
		return nil, err
	}
	return resp.JSON200.Data, nil
}

// readWebhookForm reads the form's fields as typed.
func readWebhookForm(r *http.Request) webhookForm {
	_ = r.ParseForm()
	return webhookForm{
		Name:          strings.TrimSpace(r.PostFormValue("name")),
		URL:           strings.TrimSpace(r.PostFormValue("url")),
		Description:   strings.TrimSpace(r.PostFormValue("description")),
		Events:        r.PostForm["events"],
		SurveyIDs:     strings.TrimSpace(r.PostFormValue("surveyIds")),
		RatePerSecond: strings.TrimSpace(r.PostFormValue("ratePerSecond")),
		RateBurst:     strings.TrimSpace(r.PostFormValue("rateBurst")),
		IsActive:      r.PostFormValue("isActive") == "on",
	}
}

// body is the form as the API's JSON body, for a create and for an update. It is built
// as a map, not the generated client's types, because those leave out a nil member and
// the form needs to send null: for an account-wide webhook's survey filter (every survey)
// and for the rate limit (none). A survey's webhook takes no survey filter, so its form
// has no such field and the body no such member.
func (f webhookForm) body(filtered bool) map[string]any {
	events := f.Events
	if events == nil {
		events = []string{}
	}
	body := map[string]any{"name": f.Name, "url": f.URL, "description": f.Description, "events": events,
		"rateLimit": f.rateLimit()}
	if filtered {
		var ids any // null: every survey of the account
		if s := strings.FieldsFunc(f.SurveyIDs, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }); len(s) > 0 {
			ids = s
		}
		body["surveyIds"] = ids
	}
	return body
}

// rateLimit is the typed rate limit as the API takes it: null without a rate, and a
// number where one was typed. Anything else goes to the API as the text typed, so that
// its error (which names the member) shows next to the field.
func (f webhookForm) rateLimit() any {
	if f.RatePerSecond == "" && f.RateBurst == "" {
		return nil
	}
	limit := map[string]any{"perSecond": number(f.RatePerSecond)}
	if f.RateBurst != "" {
		limit["burst"] = number(f.RateBurst)
	}
	return limit
}

// number is s as a JSON number when it is one, and as a string otherwise.
func number(s string) any {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return json.Number(s)
	}
	return s
}

var webhookInputs = []string{"name", "url", "description", "events", "surveyIds", "rateLimit", "isActive"}

func (s *Server) handleWebhookCreate(w http.ResponseWriter, r *http.Request, c *call) {
	form := readWebhookForm(r)
	fields := form.body(true)
	fields["isActive"] = form.IsActive
	s.saveWebhookForm(w, r, c, form, fields, func(body io.Reader) (uuid.UUID, error) {
		resp, err := result(c.api.CreateWebhookAccountWideWithBodyWithResponse(r.Context(), c.account, jsonType, body))
		if err != nil {
			return uuid.Nil, err
		}
		return resp.JSON201.ID, nil
	})
}

// saveWebhookForm sends the form's fields as the body of send (a create or an update).
// When the API refuses them, the form shows again with its errors next to their fields;
// when it takes them, the webhook's page follows.
func (s *Server) saveWebhookForm(w http.ResponseWriter, r *http.Request, c *call, form webhookForm, fields map[string]any,
	send func(body io.Reader) (uuid.UUID, error)) {
	raw, err := json.Marshal(fields)
	if err != nil {
		s.fail(w, r, c, fmt.Errorf("encode api request: %w", err))
		return
	}
	id, err := send(bytes.NewReader(raw))
	if statusOf(err) == http.StatusBadRequest {
		form.Errors = fieldErrors(err, webhookInputs...)
		s.renderWebhookForm(w, r, c, http.StatusUnprocessableEntity, form)
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	http.Redirect(w, r, accountPath(c.account, "webhooks", id.String()), http.StatusSeeOther)
}

// pathWebhook reads the webhook id of the path; anything but a UUID names nothing.
func (s *Server) pathWebhook(w http.ResponseWriter, r *http.Request, c *call) (uuid.UUID, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		s.renderNotFound(w, r, c)
		return uuid.Nil, false
	}
	return id, true
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, c *call) (client.Webhook, bool) {
	id, ok := s.pathWebhook(w, r, c)
	if !ok {
		return client.Webhook{}, false
	}
	resp, err := result(c.api.GetWebhookInAccountWithResponse(r.Context(), c.account, id))
	if err != nil {
		s.fail(w, r, c, err)
		return client.Webhook{}, false
	}
	return *resp.JSON200, true
}

func (s *Server) handleWebhookEdit(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	form := webhookForm{ID: hook.ID.String(), Name: hook.Name, URL: hook.URL, Description: hook.Description,
		Events: hook.Events, IsActive: hook.IsActive, SurveyID: deref(hook.SurveyID).(string)}
	if hook.SurveyIds != nil {
		form.SurveyIDs = strings.Join(*hook.SurveyIds, ", ")
	}
	if l := hook.RateLimit; l != nil {
		form.RatePerSecond = strconv.FormatFloat(float64(l.PerSecond), 'f', -1, 32)
		form.RateBurst = strconv.Itoa(deref(l.Burst).(int))
	}
	s.renderWebhookForm(w, r, c, http.StatusOK, form)
}

func (s *Server) handleWebhookUpdate(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := s.pathWebhook(w, r, c)
	if !ok {
		return
	}
	form := readWebhookForm(r)
	form.ID = id.String()
	// The form of a survey's webhook has no survey filter, and says whose it is.
	_, filtered := r.PostForm["surveyIds"]
	if !filtered {
		form.SurveyID = r.PostFormValue("surveyId")
	}
	s.saveWebhookForm(w, r, c, form, form.body(filtered), func(body io.Reader) (uuid.UUID, error) {
		_, err := result(c.api.UpdateWebhookInAccountWithBodyWithResponse(r.Context(), c.account, id, jsonType, body))
		return id, err
	})
}

// handleWebhookActive turns the webhook on or off (active=true|false).
func (s *Server) handleWebhookActive(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := s.pathWebhook(w, r, c)
	if !ok {
		return
	}
	active := r.PostFormValue("active") == "true"
	_, err := result(c.api.UpdateWebhookInAccountWithResponse(r.Context(), c.account, id, client.WebhookUpdate{IsActive: &active}))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	http.Redirect(w, r, accountPath(c.account, "webhooks", id.String()), http.StatusSeeOther)
}

func (s *Server) handleWebhookDeleteConfirm(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	s.render(w, r, c, "webhook_delete", hook)
}

func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := s.pathWebhook(w, r, c)
	if !ok {
		return
	}
	if _, err := result(c.api.DeleteWebhookInAccountWithResponse(r.Context(), c.account, id)); err != nil {
		s.fail(w, r, c, err)
		return
	}
	http.Redirect(w, r, accountPath(c.account, "webhooks"), http.StatusSeeOther)
}
