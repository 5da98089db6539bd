package console

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/surveyhooks/surveyhooks/client"
)

// recoverForm is the "recover failed deliveries since ..." form. Its times are typed in
// the viewer's zone (datetime-local) and sent with the browser's offset from UTC, which
// console.js fills in.
type recoverForm struct {
	Hook     client.Webhook
	Since    string
	Until    string
	Statuses []string
	Errors   map[string]string
	// Counted says the form was counted (a dry run): Matched deliveries match, shown
	// before the recovery starts.
	Counted bool
	Matched int
}

var recoverableStatuses = []string{"failed", "skipped"}

const localInput = "2006-01-02T15:04"

func (s *Server) handleRecoverForm(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	s.render(w, r, c, "recover", recoverForm{Hook: hook, Statuses: recoverableStatuses})
}

// handleRecover counts the deliveries the form picks (action "count", a dry run), or starts
// the recovery and shows its progress: the form counts first, and starting is the second
// step.
func (s *Server) handleRecover(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	form := recoverForm{Hook: hook, Since: r.PostFormValue("since"), Until: r.PostFormValue("until"),
		Statuses: r.PostForm["statuses"], Errors: map[string]string{}}
	offset, _ := strconv.Atoi(r.PostFormValue("tzOffset"))
	zone := time.FixedZone("viewer", -offset*60)
	body := client.RecoveryRequest{}
	since, err := time.ParseInLocation(localInput, form.Since, zone)
	if err != nil {
		form.Errors["since"] = "Pick the date and time to recover from."
	}
	body.Since = since
	if form.Until != "" {
		until, err := time.ParseInLocation(localInput, form.Until, zone)
		if err != nil {
			form.Errors["until"] = "Pick a date and time, or leave it empty for now."
		}
		body.Until = &until
	}
	if len(form.Statuses) == 0 {
		form.Errors["statuses"] = "Pick at least one status."
	}
	statuses := make([]client.RecoveryRequestStatuses, len(form.Statuses))
	for i, st := range form.Statuses {
		statuses[i] = client.RecoveryRequestStatuses(st)
	}
	body.Statuses = &statuses
	if len(form.Errors) > 0 {
		s.renderStatus(w, r, c, http.StatusUnprocessableEntity, "recover", form)
		return
	}
	counting := r.PostFormValue("action") != "start"
	body.DryRun = &counting
	resp, err := result(c.api.RecoverWebhookDeliveriesInAccountWithResponse(r.Context(), c.account, hook.ID, body))
	if st := statusOf(err); st == http.StatusBadRequest || st == http.StatusConflict {
		form.Errors = fieldErrors(err, "since", "until", "statuses")
		s.renderStatus(w, r, c, http.StatusUnprocessableEntity, "recover", form)
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	if counting {
		form.Counted, form.Matched = true, resp.JSON200.Matched
		s.render(w, r, c, "recover", form)
		return
	}
	http.Redirect(w, r, accountPath(c.account, "webhooks", hook.ID.String(), "recoveries", resp.JSON202.ID), http.StatusSeeOther)
}

// recoveryPage is a recovery's progress; Poll is set until it finishes.
type recoveryPage struct {
	Hook     client.Webhook
	Recovery client.Recovery
	Poll     string
}

func (s *Server) handleRecovery(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	resp, err := result(c.api.GetWebhookRecoveryInAccountWithResponse(r.Context(), c.account, hook.ID, r.PathValue("recovery")))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	page := recoveryPage{Hook: hook, Recovery: *resp.JSON200}
	if !page.Recovery.Finished {
		page.Poll = r.URL.Path + "?fragment=progress"
	}
	if r.URL.Query().Get("fragment") == "progress" {
		s.renderFragment(w, r, c, "recovery", "progress", page)
		return
	}
	s.render(w, r, c, "recovery", page)
}

// catalogEntry is one event type as the catalog shows it.
type catalogEntry struct {
	client.EventType
	SchemaText, ExampleText string
}

func (s *Server) handleCatalog(w http.ResponseWriter, r *http.Request, c *call) {
	types, err := s.eventTypes(r, c)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	entries := make([]catalogEntry, len(types))
	for i, t := range types {
		schema, _ := json.MarshalIndent(t.Schema, "", "  ")
		example, _ := json.MarshalIndent(t.ExamplePayload, "", "  ")
		entries[i] = catalogEntry{EventType: t, SchemaText: string(schema), ExampleText: string(example)}
	}
	s.render(w, r, c, "catalog", entries)
}
