package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/store"
)

var errEventNotFound = Errorf(CodeNotFound, "Event not found.")

func (s *Server) registerEventRoutes(r *mux.Router) {
	r.HandleFunc("/events", s.handleEventPublish).Methods(http.MethodPost)
	r.HandleFunc("/events/{eventId}", s.handleEventGet).Methods(http.MethodGet)
}

// eventResponse is an event as the API shows it.
type eventResponse struct {
	EventID    string `json:"eventId"`
	AccountID  string `json:"accountId"`
	EventType  string `json:"eventType"`
	SurveyID   string `json:"surveyId"`
	WorkflowID string `json:"workflowId"`
	// Status is "dispatched" once the event's workflow started, "queued" while it waits
	// for Temporal.
	Status     string              `json:"status"`
	CreatedAt  time.Time           `json:"createdAt"`
	Payload    json.RawMessage     `json:"payload"`
	Deliveries *[]deliveryResponse `json:"deliveries,omitempty"`
}

func newEventResponse(ev store.Event, dispatched bool) eventResponse {
	status := "queued"
	if dispatched {
		status = "dispatched"
	}
	return eventResponse{
		EventID: ev.ID, AccountID: ev.AccountID, EventType: ev.EventType, SurveyID: ev.SurveyID,
		WorkflowID: delivery.WorkflowID(ev.ID), Status: status, CreatedAt: ev.CreatedAt.UTC(),
		Payload: json.RawMessage(ev.Body),
	}
}

// handleEventPublish stores an event with its deliveries and starts its workflow. The same
// event_id again is the same event: 200 with the stored one, and nothing new starts. When
// Temporal cannot take the workflow now, the event is kept and started later: 202.
func (s *Server) handleEventPublish(w http.ResponseWriter, r *http.Request) {
	m, err := s.readObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ev, err := decodeEvent(m, callerOf(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.deliveries.Publish(r.Context(), ev)
	if err != nil {
		s.writeError(w, r, deliveryError(err))
		return
	}
	status := http.StatusOK
	switch {
	case p.Created && p.Dispatched:
		status = http.StatusCreated
	case p.Created:
		status = http.StatusAccepted
	}
	s.writeJSON(w, r, status, newEventResponse(p.Event, p.Dispatched))
}

// decodeEvent validates a publish request of the caller: an event of the account it
// names (account_id), or else of the caller's own account (the default account for a
// platform key). An account key publishes for its own account only.
func decodeEvent(m *members, c caller) (delivery.NewEvent, error) {
	accountID := member[string](m, "account_id", "a string")
	eventID := member[string](m, "event_id", "a string")
	eventType := member[string](m, "event_type", "a string")
	surveyID := member[string](m, "survey_id", "a string")
	data := member[json.RawMessage](m, "data", "a JSON object")
	m.rejectUnknown()

	account := c.defaultAccount()
	switch {
	case accountID.Null:
		m.fail("account_id", "must be a string when given")
	case !accountID.usable():
	case !idPattern.MatchString(accountID.Value):
		m.fail("account_id", "must be 1 to 128 characters of letters, digits, '.', '_', ':' and '-'")
	case !c.platform() && accountID.Value != c.AccountID:
		return delivery.NewEvent{}, Errorf(CodeForbidden, "This key publishes events of its own account only.")
	default:
		account = accountID.Value
	}
	id := ""
	if eventID.usable() {
		if !idPattern.MatchString(eventID.Value) {
			m.fail("event_id", "must be 1 to 128 characters of letters, digits, '.', '_', ':' and '-'")
		}
		id = eventID.Value
	} else if eventID.Null {
		m.fail("event_id", "must be a string when given")
	}
	switch {
	case !eventType.Set || eventType.Null:
		m.fail("event_type", "is required")
	case eventType.Bad:
	case eventType.Value == eventtype.WebhookTest:
		m.fail("event_type", "webhook.test events come from the webhook test endpoint only")
	}
	switch {
	case !surveyID.Set || surveyID.Null:
		m.fail("survey_id", "is required")
	case surveyID.Bad:
	case checkSurveyID(surveyID.Value) != nil:
		m.fail("survey_id", "must be 1 to 128 characters of letters, digits, '.', '_', ':' and '-'")
	}
	switch {
	case !data.Set || data.Null:
		m.fail("data", "is required")
	case data.Bad:
	case len(data.Value) == 0 || data.Value[0] != '{':
		m.fail("data", "must be a JSON object")
	}
	if len(m.errs) > 0 {
		return delivery.NewEvent{}, invalidFields(m.errs)
	}
	return delivery.NewEvent{ID: id, AccountID: account, Type: eventType.Value, SurveyID: surveyID.Value, Data: data.Value}, nil
}

// handleEventGet shows an event with its deliveries: at /events/{eventId} any event to a
// platform key and the key's own account's to an account key, at
// /accounts/{accountId}/events/{eventId} that account's.
func (s *Server) handleEventGet(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["eventId"]
	account := callerOf(r).AccountID
	if _, ok := mux.Vars(r)["accountId"]; ok {
		var err error
		if account, err = pathAccount(r); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if !idPattern.MatchString(id) {
		s.writeError(w, r, errEventNotFound)
		return
	}
	ev, err := s.store.GetEvent(r.Context(), id)
	if err == nil && account != "" && ev.AccountID != account {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		err = errEventNotFound
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ds, err := s.store.ListEventDeliveries(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := newEventResponse(ev, ev.DispatchedAt != nil)
	deliveries := make([]deliveryResponse, 0, len(ds))
	for _, d := range ds {
		deliveries = append(deliveries, newDeliveryResponse(d))
	}
	resp.Deliveries = &deliveries
	s.writeJSON(w, r, http.StatusOK, resp)
}
