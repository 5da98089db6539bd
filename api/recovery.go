package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/store"
)

// recoveryResponse is a recovery as the API shows it.
type recoveryResponse struct {
	ID string `json:"id"`
	// Status is the workflow's: running, completed, failed, canceled or terminated; or
	// canceling in the answer to a DELETE.
	Status    string `json:"status"`
	Matched   int    `json:"matched"`
	Retried   int    `json:"retried"`
	Skipped   int    `json:"skipped"`
	Delivered int    `json:"delivered"`
	Failed    int    `json:"failed"`
	Finished  bool   `json:"finished"`
	Error     string `json:"error,omitempty"`
}

func newRecoveryResponse(rec delivery.Recovery) recoveryResponse {
	p := rec.Progress
	return recoveryResponse{ID: rec.ID, Status: rec.Status, Matched: p.Matched, Retried: p.Retried, Skipped: p.Skipped,
		Delivered: rec.Delivered, Failed: rec.Failed, Finished: p.Finished, Error: p.Error}
}

// handleWebhookRecover starts a recovery: {since, until?, statuses?}; with dryRun it counts
// the deliveries the recovery would pick, and starts nothing (an inactive webhook's too).
func (s *Server) handleWebhookRecover(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.readObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	window := readRecoveryWindow(m)
	dryRun := readDryRun(m)
	m.rejectUnknown()
	if len(m.errs) > 0 {
		s.writeError(w, r, invalidFields(m.errs))
		return
	}
	hook, err := s.store.GetWebhook(r.Context(), scope, id)
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	if dryRun {
		window.WebhookID = hook.ID
		s.writeCount(w, r, window)
		return
	}
	recoveryID, err := s.deliveries.Recover(r.Context(), hook, window.Since, window.Until, window.Statuses)
	if err != nil {
		s.writeError(w, r, recoveryError(err))
		return
	}
	s.recordAudit(r, hook.AccountID, "webhook.recovered", hook.ID.String(), map[string]any{
		"recoveryId": recoveryID, "since": window.Since, "until": nullTime(window.Until), "statuses": window.Statuses})
	// The answer does not wait for the workflow's first task: GET shows its progress.
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/recover")+"/recoveries/"+recoveryID)
	s.writeJSON(w, r, http.StatusAccepted, recoveryResponse{ID: recoveryID, Status: "running"})
}

// readRecoveryWindow reads the members every recovery takes: since (required), until and
// statuses (of delivery.RecoverableStatuses), reporting each bad one in m.
func readRecoveryWindow(m *members) store.RecoveryFilter {
	sinceIn := member[string](m, "since", "a string")
	untilIn := member[string](m, "until", "a string")
	statusesIn := member[[]string](m, "statuses", "an array of strings")
	at := func(field string, in optional[string]) time.Time {
		if !in.usable() {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, in.Value)
		if err != nil {
			m.fail(field, "must be an RFC 3339 time such as 2026-12-01T00:00:00Z")
		}
		return t
	}
	since, until := at("since", sinceIn), at("until", untilIn)
	if !sinceIn.Set || sinceIn.Null {
		m.fail("since", "is required")
	}
	if untilIn.Null {
		m.fail("until", "must not be null: leave it out to recover until now")
	}
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		m.fail("until", "must be after since")
	}
	var statuses []string
	if statusesIn.usable() {
		statuses = statusesIn.Value
		if len(statuses) == 0 {
			m.fail("statuses", "must not be empty: leave it out for failed and skipped")
		}
		for _, st := range statuses {
			if !slices.Contains(delivery.RecoverableStatuses, st) {
				m.fail("statuses", "may hold only "+strings.Join(delivery.RecoverableStatuses, " and ")+
					": pending and retrying deliveries are still on their schedule, delivered ones need no recovery")
				break
			}
		}
	} else if statusesIn.Null {
		m.fail("statuses", "must not be null")
	}
	return store.RecoveryFilter{Since: since, Until: until, Statuses: statuses}
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func (s *Server) handleRecoveryGet(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.store.GetWebhook(r.Context(), scope, id); err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	rec, err := s.deliveries.Recovery(r.Context(), id, mux.Vars(r)["recoveryId"])
	if err != nil {
		s.writeError(w, r, recoveryError(err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, newRecoveryResponse(rec))
}

func (s *Server) handleRecoveryCancel(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	hook, err := s.store.GetWebhook(r.Context(), scope, id)
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	recoveryID := mux.Vars(r)["recoveryId"]
	if err := s.deliveries.CancelRecovery(r.Context(), id, recoveryID); err != nil {
		s.writeError(w, r, recoveryError(err))
		return
	}
	s.recordAudit(r, hook.AccountID, "recovery.cancelled", hook.ID.String(), map[string]any{"recoveryId": recoveryID})
	// The workflow stops at its next step; GET shows where it stopped.
	s.writeJSON(w, r, http.StatusAccepted, recoveryResponse{ID: recoveryID, Status: "canceling"})
}

var errRecoveryNotFound = Errorf(CodeNotFound, "No recovery here has this id.")

func recoveryError(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errRecoveryNotFound
	case errors.Is(err, delivery.ErrInactive):
		return Errorf(CodeConflict, "The webhook is inactive: activate it (PATCH isActive true) before recovering its deliveries.")
	case errors.Is(err, delivery.ErrRecoveryFinished):
		return Errorf(CodeConflict, "The recovery has finished: there is nothing to stop.")
	}
	return deliveryError(err)
}

// handleAccountRetry retries the account's deliveries a filter picks, as a recovery:
// {since, until?, statuses?, surveyId?, eventType?, dryRun?}. A dry run answers how many
// it picks now and starts nothing.
func (s *Server) handleAccountRetry(w http.ResponseWriter, r *http.Request) {
	accountID, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.readObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f := readRecoveryWindow(m)
	f.AccountID = accountID
	surveyIn := member[string](m, "surveyId", "a string")
	typeIn := member[string](m, "eventType", "a string")
	dryRun := readDryRun(m)
	m.rejectUnknown()
	if surveyIn.usable() {
		if !idPattern.MatchString(surveyIn.Value) {
			m.fail("surveyId", fmt.Sprintf("must be 1 to %d characters among A-Z a-z 0-9 . _ : -", maxSurveyIDLength))
		}
		f.SurveyID = surveyIn.Value
	}
	if typeIn.usable() {
		if err := eventtype.CheckName(typeIn.Value); err != nil {
			m.fail("eventType", "must be an event type name (no wildcard): "+err.Error())
		}
		f.EventType = typeIn.Value
	}
	for _, in := range []struct {
		name string
		null bool
	}{{"surveyId", surveyIn.Null}, {"eventType", typeIn.Null}} {
		if in.null {
			m.fail(in.name, "must not be null: leave it out")
		}
	}
	if len(m.errs) > 0 {
		s.writeError(w, r, invalidFields(m.errs))
		return
	}
	if dryRun {
		s.writeCount(w, r, f)
		return
	}
	recoveryID, err := s.deliveries.RetryMatching(r.Context(), f)
	if err != nil {
		s.writeError(w, r, recoveryError(err))
		return
	}
	s.recordAudit(r, accountID, "deliveries.retried", accountID, map[string]any{
		"recoveryId": recoveryID, "since": f.Since, "until": nullTime(f.Until), "statuses": f.Statuses,
		"surveyId": f.SurveyID, "eventType": f.EventType})
	w.Header().Set("Location", "/api/accounts/"+accountID+"/recoveries/"+recoveryID)
	s.writeJSON(w, r, http.StatusAccepted, recoveryResponse{ID: recoveryID, Status: "running"})
}

// readDryRun reads the dryRun member of a recovery or retry: true counts what it picks and
// starts nothing.
func readDryRun(m *members) bool {
	in := member[bool](m, "dryRun", "true or false")
	if in.Null {
		m.fail("dryRun", "must not be null: leave it out")
	}
	return in.usable() && in.Value
}

// writeCount answers a dry run: how many deliveries f picks now.
func (s *Server) writeCount(w http.ResponseWriter, r *http.Request, f store.RecoveryFilter) {
	n, err := s.deliveries.CountMatching(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, retryCountResponse{Matched: n, DryRun: true})
}

// retryCountResponse answers a dry run.
type retryCountResponse struct {
	Matched int  `json:"matched"`
	DryRun  bool `json:"dryRun"`
}

func (s *Server) handleAccountRecoveryGet(w http.ResponseWriter, r *http.Request) {
	accountID, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.deliveries.AccountRecovery(r.Context(), accountID, mux.Vars(r)["recoveryId"])
	if err != nil {
		s.writeError(w, r, recoveryError(err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, newRecoveryResponse(rec))
}

func (s *Server) handleAccountRecoveryCancel(w http.ResponseWriter, r *http.Request) {
	accountID, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	recoveryID := mux.Vars(r)["recoveryId"]
	if err := s.deliveries.CancelAccountRecovery(r.Context(), accountID, recoveryID); err != nil {
		s.writeError(w, r, recoveryError(err))
		return
	}
	s.recordAudit(r, accountID, "recovery.cancelled", accountID, map[string]any{"recoveryId": recoveryID})
	s.writeJSON(w, r, http.StatusAccepted, recoveryResponse{ID: recoveryID, Status: "canceling"})
}
