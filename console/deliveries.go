package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/surveyhooks/surveyhooks/client"
)

// tailInterval is how often the deliveries list and an unsettled delivery ask for news:
// htmx polls the rows, so the page follows attempts without a reload.
const tailInterval = "2s"

var deliveryStatuses = []string{"pending", "retrying", "delivered", "failed", "skipped"}

// deliveriesPage is the deliveries list with its filters. Since and Until are typed in
// the viewer's zone (datetime-local) and sent with its offset (console.js).
type deliveriesPage struct {
	Rows      []deliveryRow
	Statuses  []string
	Status    string
	Webhooks  []client.Webhook
	Webhook   string
	Types     []string
	EventType string
	Survey    string
	Since     string
	Until     string
	TZOffset  string
	Errors    map[string]string
	// Filtered is set when any filter is, for the empty state to say so.
	Filtered bool
	// Next is the next page's query; Tail is the rows' own URL while the list shows the
	// newest deliveries (the first page), which htmx polls.
	Next string
	Tail string
}

type deliveryRow struct {
	client.Delivery
	WebhookName string
}

func (s *Server) handleDeliveries(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	page := deliveriesPage{Statuses: deliveryStatuses, Status: q.Get("status"), Webhook: q.Get("webhook"),
		EventType: q.Get("type"), Survey: strings.TrimSpace(q.Get("surveyId")), Since: q.Get("since"), Until: q.Get("until"),
		TZOffset: q.Get("tz"), Errors: map[string]string{}}
	if !slices.Contains(deliveryStatuses, page.Status) {
		page.Status = ""
	}
	limit := client.Limit(25)
	// Every filter is passed to the API as typed; its answer says which one is wrong.
	var f client.ListAccountDeliveriesParams
	if page.Status != "" {
		st := client.DeliveryStatusFilter(page.Status)
		f.Status = &st
	}
	if page.EventType != "" {
		f.Type = &page.EventType
	}
	if page.Survey != "" {
		f.SurveyID = &page.Survey
	}
	offset, _ := strconv.Atoi(page.TZOffset)
	zone := time.FixedZone("viewer", -offset*60)
	for _, t := range []struct {
		name, value string
		to          **time.Time
	}{{"since", page.Since, &f.Since}, {"until", page.Until, &f.Until}} {
		if t.value == "" {
			continue
		}
		at, err := time.ParseInLocation(localInput, t.value, zone)
		if err != nil {
			page.Errors[t.name] = "Pick a date and time, or leave it empty."
			continue
		}
		*t.to = &at
	}
	var cursor *string
	if cur := q.Get("cursor"); cur != "" {
		cursor = &cur
	}
	types, err := s.eventTypes(r, c)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	for _, t := range types {
		page.Types = append(page.Types, t.Name)
	}

	hooksLimit := client.Limit(200)
	hooks, err := result(c.api.ListWebhooksInAccountWithResponse(r.Context(), c.account, &client.ListWebhooksInAccountParams{Limit: &hooksLimit}))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	page.Webhooks = hooks.JSON200.Data
	names := map[uuid.UUID]string{}
	for _, h := range page.Webhooks {
		names[h.ID] = h.Name
	}

	f.Limit, f.Cursor = &limit, cursor
	list := &client.DeliveryList{}
	if len(page.Errors) == 0 {
		list, err = s.listDeliveries(r, c, page.Webhook, f)
		if st := statusOf(err); st == http.StatusBadRequest {
			page.Errors = fieldErrors(err, "status", "type", "surveyId", "since", "until")
			list, err = &client.DeliveryList{}, nil
		}
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
	}
	for _, d := range list.Data {
		row := deliveryRow{Delivery: d}
		if d.WebhookID != nil {
			row.WebhookName = names[*d.WebhookID]
		}
		page.Rows = append(page.Rows, row)
	}
	filters := url.Values{}
	for name, v := range map[string]string{"status": page.Status, "webhook": page.Webhook, "type": page.EventType,
		"surveyId": page.Survey, "since": page.Since, "until": page.Until, "tz": page.TZOffset} {
		if v != "" {
			filters.Set(name, v)
		}
	}
	page.Filtered = len(filters) > 0
	if list.NextCursor != nil {
		next := url.Values{}
		for k, v := range filters {
			next[k] = v
		}
		next.Set("cursor", *list.NextCursor)
		page.Next = "?" + next.Encode()
	}
	if cursor == nil {
		tail := url.Values{"fragment": {"rows"}}
		for k, v := range filters {
			tail[k] = v
		}
		page.Tail = accountPath(c.account, "deliveries") + "?" + tail.Encode()
	}
	if q.Get("fragment") == "rows" {
		s.renderFragment(w, r, c, "deliveries", "rows", page)
		return
	}
	s.render(w, r, c, "deliveries", page)
}

// listDeliveries asks the API for a page of the account's deliveries, or of one webhook's
// when webhook names one.
func (s *Server) listDeliveries(r *http.Request, c *call, webhook string, f client.ListAccountDeliveriesParams) (*client.DeliveryList, error) {
	if webhook == "" {
		resp, err := result(c.api.ListAccountDeliveriesWithResponse(r.Context(), c.account, &f))
		if err != nil {
			return nil, err
		}
		return resp.JSON200, nil
	}
	id, err := uuid.Parse(webhook)
	if err != nil {
		return nil, &apiError{Status: http.StatusNotFound}
	}
	resp, err := result(c.api.ListDeliveriesInAccountWithResponse(r.Context(), c.account, id,
		&client.ListDeliveriesInAccountParams{Status: f.Status, Type: f.Type, SurveyID: f.SurveyID, Since: f.Since,
			Until: f.Until, Limit: f.Limit, Cursor: f.Cursor}))
	if err != nil {
		return nil, err
	}
	return resp.JSON200, nil
}

// deliveryPage is one delivery with every attempt.
type deliveryPage struct {
	D        client.Delivery
	Hook     client.Webhook
	Attempts []client.Attempt
	// Poll is the attempts' own URL while more attempts are expected: the delivery is
	// waiting for one, or a retry asked for one that has not been recorded yet.
	Poll string
	// WorkflowURL opens the delivery's workflow in the Temporal Web UI (operators only).
	WorkflowURL string
	Retried     bool
	Error       string
}

func (s *Server) handleDelivery(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	id, err := uuid.Parse(r.PathValue("delivery"))
	if err != nil {
		s.renderNotFound(w, r, c)
		return
	}
	resp, err := result(c.api.GetDeliveryInAccountWithResponse(r.Context(), c.account, hook.ID, id))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	d := *resp.JSON200
	page := deliveryPage{D: d, Hook: hook}
	if d.Attempts != nil {
		page.Attempts = *d.Attempts
	}
	// Newest first: the attempt a person just asked for is at the top.
	for i, j := 0, len(page.Attempts)-1; i < j; i, j = i+1, j-1 {
		page.Attempts[i], page.Attempts[j] = page.Attempts[j], page.Attempts[i]
	}
	count := deref(d.AttemptCount).(int)
	waiting := d.Status != nil && (*d.Status == client.DeliveryStatusPending || *d.Status == client.DeliveryStatusRetrying)
	after, err := strconv.Atoi(r.URL.Query().Get("after"))
	page.Retried = err == nil
	if waiting || (page.Retried && count <= after) {
		page.Poll = accountPath(c.account, "webhooks", hook.ID.String(), "deliveries", id.String()) + "?" +
			url.Values{"fragment": {"attempts"}, "after": {r.URL.Query().Get("after")}}.Encode()
	}
	if c.session.Operator() && s.cfg.TemporalUIURL != "" && d.EventID != nil {
		page.WorkflowURL = s.cfg.TemporalUIURL + "/namespaces/" + url.PathEscape(s.cfg.TemporalNamespace) +
			"/workflows/" + url.PathEscape("event-"+*d.EventID)
	}
	if r.URL.Query().Get("fragment") == "attempts" {
		s.renderFragment(w, r, c, "delivery", "attempts", page)
		return
	}
	s.render(w, r, c, "delivery", page)
}

// handleRetry asks for an attempt now (force=true sends a delivered one again), then shows
// the delivery, which follows until the new attempt is recorded.
func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	id, err := uuid.Parse(r.PathValue("delivery"))
	if err != nil {
		s.renderNotFound(w, r, c)
		return
	}
	force := r.PostFormValue("force") == "true"
	back := accountPath(c.account, "webhooks", hook.ID.String(), "deliveries", id.String())
	before, err := result(c.api.GetDeliveryInAccountWithResponse(r.Context(), c.account, hook.ID, id))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	_, err = result(c.api.RetryDeliveryInAccountWithResponse(r.Context(), c.account, hook.ID, id,
		&client.RetryDeliveryInAccountParams{Force: &force}))
	if statusOf(err) == http.StatusConflict {
		s.renderStatus(w, r, c, http.StatusConflict, "message", message{Title: "Not retried", Text: apiMessage(err),
			Link: back, LinkText: "Back to the delivery"})
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	after := strconv.Itoa(deref(before.JSON200.AttemptCount).(int))
	http.Redirect(w, r, back+"?after="+after, http.StatusSeeOther)
}
