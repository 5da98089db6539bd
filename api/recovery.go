package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/surveyhooks/surveyhooks/delivery"
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

// handleWebhookRecover starts a recovery: {since, until?, statuses?}.
func (s *Server) handleWebhookRecover(w http.ResponseWriter, r *http.Request) {
	scope, id, err := pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.readObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sinceIn := member[string](m, "since", "a string")
	untilIn := member[string](m, "until", "a string")
	statusesIn := member[[]string](m, "statuses", "an array of strings")
	m.rejectUnknown()
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
	if len(m.errs) > 0 {
		s.writeError(w, r, invalidFields(m.errs))
		return
	}
	hook, err := s.store.GetWebhook(r.Context(), scope, id)
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	recoveryID, err := s.deliveries.Recover(r.Context(), hook, since, until, statuses)
	if err != nil {
		s.writeError(w, r, recoveryError(err))
		return
	}
	s.recordAudit(r, hook.AccountID, "webhook.recovered", hook.ID.String(), map[string]any{
		"recoveryId": recoveryID, "since": since, "until": nullTime(until), "statuses": statuses})
	// The answer does not wait for the workflow's first task: GET shows its progress.
	w.Header().Set("Location", strings.TrimSuffix(r.URL.Path, "/recover")+"/recoveries/"+recoveryID)
	s.writeJSON(w, r, http.StatusAccepted, recoveryResponse{ID: recoveryID, Status: "running"})
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func (s *Server) handleRecoveryGet(w http.ResponseWriter, r *http.Request) {
	scope, id, err := pathWebhook(r)
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
	scope, id, err := pathWebhook(r)
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

var errRecoveryNotFound = Errorf(CodeNotFound, "No recovery of this webhook has this id.")

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
