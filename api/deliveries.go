package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/surveyhooks/surveyhooks/delivery"
	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/jsoncanon"
	"github.com/surveyhooks/surveyhooks/store"
)

var errDeliveryNotFound = Errorf(CodeNotFound, "Delivery not found.")

// deliveryResponse is a delivery as the API shows it; Attempts only on the single-delivery
// route.
type deliveryResponse struct {
	ID             uuid.UUID          `json:"id"`
	AccountID      string             `json:"accountId"`
	EventID        string             `json:"eventId"`
	EventType      string             `json:"eventType"`
	WebhookID      uuid.UUID          `json:"webhookId"`
	Status         string             `json:"status"`
	AttemptCount   int                `json:"attemptCount"`
	NextAttemptAt  *time.Time         `json:"nextAttemptAt"`
	LastStatusCode *int               `json:"lastStatusCode"`
	LastError      string             `json:"lastError"`
	CreatedAt      time.Time          `json:"createdAt"`
	UpdatedAt      time.Time          `json:"updatedAt"`
	DeliveredAt    *time.Time         `json:"deliveredAt"`
	Attempts       *[]attemptResponse `json:"attempts,omitempty"`
}

func newDeliveryResponse(d store.Delivery) deliveryResponse {
	return deliveryResponse{
		ID: d.ID, AccountID: d.AccountID, EventID: d.EventID, EventType: d.EventType, WebhookID: d.WebhookID,
		Status: d.Status, AttemptCount: d.AttemptCount, NextAttemptAt: utcOrNil(d.NextAttemptAt),
		LastStatusCode: d.LastStatusCode, LastError: d.LastError,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), DeliveredAt: utcOrNil(d.DeliveredAt),
	}
}

// utcOrNil returns t in UTC: the API writes every time in UTC, whatever the zone the
// database driver read it in (pgx reads timestamptz in the process's local zone).
func utcOrNil(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// attemptResponse is one attempt: what was sent and what came back.
type attemptResponse struct {
	Number     int              `json:"number"`
	Trigger    string           `json:"trigger"`
	StartedAt  time.Time        `json:"startedAt"`
	DurationMS float64          `json:"durationMs"`
	Request    attemptRequest   `json:"request"`
	Response   *attemptReceived `json:"response"`
	Error      string           `json:"error"`
}

type attemptRequest struct {
	URL     string          `json:"url"`
	Headers json.RawMessage `json:"headers"`
	Body    string          `json:"body"`
}

type attemptReceived struct {
	Status  int             `json:"status"`
	Headers json.RawMessage `json:"headers"`
	Body    string          `json:"body"`
}

func newAttemptResponse(a store.Attempt) attemptResponse {
	resp := attemptResponse{
		Number: a.Number, Trigger: a.Trigger, StartedAt: a.StartedAt.UTC(), DurationMS: a.DurationMS,
		Request: attemptRequest{URL: a.RequestURL, Headers: a.RequestHeaders, Body: a.RequestBody},
		Error:   a.Error,
	}
	if a.ResponseStatus != nil {
		headers := a.ResponseHeaders
		if len(headers) == 0 {
			headers = json.RawMessage("{}")
		}
		resp.Response = &attemptReceived{Status: *a.ResponseStatus, Headers: headers, Body: a.ResponseBody}
	}
	return resp
}

// pathDelivery returns the webhook (checked to belong to the path's scope) and the
// delivery id of the request.
func (s *Server) pathDelivery(r *http.Request) (store.Webhook, uuid.UUID, error) {
	hook, err := s.pathWebhookRecord(r)
	if err != nil {
		return store.Webhook{}, uuid.Nil, err
	}
	raw := mux.Vars(r)["deliveryId"]
	id, err := uuid.Parse(raw)
	if err != nil || !strings.EqualFold(id.String(), raw) {
		return store.Webhook{}, uuid.Nil, errDeliveryNotFound
	}
	return hook, id, nil
}

// pathWebhookRecord loads the webhook the path names, in its scope.
func (s *Server) pathWebhookRecord(r *http.Request) (store.Webhook, error) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		return store.Webhook{}, err
	}
	hook, err := s.store.GetWebhook(r.Context(), scope, id)
	if err != nil {
		return store.Webhook{}, webhookError(err)
	}
	return hook, nil
}

// handleDeliveryList lists a webhook's deliveries, newest first, filtered as the account's are.
func (s *Server) handleDeliveryList(w http.ResponseWriter, r *http.Request) {
	hook, err := s.pathWebhookRecord(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, filter, err := parseDeliveryFilter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writePage(s, w, r, page, func(ctx context.Context, p store.Page) ([]store.Delivery, error) {
		return s.store.ListWebhookDeliveries(ctx, hook.ID, filter, p)
	}, deliveryID, newDeliveryResponse)
}

func deliveryID(d store.Delivery) uuid.UUID { return d.ID }

// parseDeliveryFilter reads a delivery list's page, ?status= and its event's filters
// (?type=, ?surveyId=, ?since=, ?until=, as the events list reads them).
func parseDeliveryFilter(r *http.Request) (store.Page, store.DeliveryFilter, error) {
	page, err := parsePage(r)
	if err != nil {
		return store.Page{}, store.DeliveryFilter{}, err
	}
	f := store.DeliveryFilter{Status: r.URL.Query().Get("status")}
	var fields []FieldError
	if f.Status != "" && !slices.Contains(delivery.Statuses, f.Status) {
		fields = append(fields, FieldError{Field: "status", Message: "must be one of " + strings.Join(delivery.Statuses, ", ")})
	}
	var ev store.EventFilter
	fields = append(fields, parseEventFilter(r, &ev)...)
	f.EventType, f.SurveyID, f.Since, f.Until = ev.EventType, ev.SurveyID, ev.Since, ev.Until
	if len(fields) > 0 {
		return store.Page{}, store.DeliveryFilter{}, invalidFields(fields)
	}
	return page, f, nil
}

// handleDeliveryGet shows one delivery with every attempt.
func (s *Server) handleDeliveryGet(w http.ResponseWriter, r *http.Request) {
	hook, id, err := s.pathDelivery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.deliveryWithAttempts(r.Context(), hook.ID, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}

func (s *Server) deliveryWithAttempts(ctx context.Context, webhookID, deliveryID uuid.UUID) (deliveryResponse, error) {
	d, err := s.store.GetDelivery(ctx, webhookID, deliveryID)
	if errors.Is(err, store.ErrNotFound) {
		return deliveryResponse{}, errDeliveryNotFound
	}
	if err != nil {
		return deliveryResponse{}, err
	}
	as, err := s.store.ListAttempts(ctx, deliveryID)
	if err != nil {
		return deliveryResponse{}, err
	}
	resp := newDeliveryResponse(d)
	attempts := make([]attemptResponse, 0, len(as))
	for _, a := range as {
		attempts = append(attempts, newAttemptResponse(a))
	}
	resp.Attempts = &attempts
	return resp, nil
}

// retryResponse acknowledges a retry request.
type retryResponse struct {
	DeliveryID uuid.UUID `json:"deliveryId"`
	WorkflowID string    `json:"workflowId"`
	Status     string    `json:"status"`
}

// handleDeliveryRetry asks for the delivery to be attempted now: a delivery waiting for its
// next attempt is attempted at once and its schedule goes on; a failed one gets one more
// attempt; a delivered one only with ?force=true.
func (s *Server) handleDeliveryRetry(w http.ResponseWriter, r *http.Request) {
	hook, id, err := s.pathDelivery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		if v != "true" && v != "false" {
			s.writeError(w, r, invalidFields([]FieldError{{Field: "force", Message: "must be true or false"}}))
			return
		}
		force = v == "true"
	}
	workflowID, err := s.deliveries.Retry(r.Context(), hook.ID, id, force)
	if err != nil {
		s.writeError(w, r, deliveryError(err))
		return
	}
	s.recordAudit(r, hook.AccountID, "delivery.retried", id.String(), map[string]any{"webhookId": hook.ID, "force": force})
	s.writeJSON(w, r, http.StatusAccepted, retryResponse{DeliveryID: id, WorkflowID: workflowID, Status: "retry requested"})
}

// deliveryError turns the delivery service's refusals into API errors.
func deliveryError(err error) error {
	var conflict *delivery.ConflictError
	var unknown *eventtype.UnknownError
	var invalid *eventtype.DataError
	var number *jsoncanon.NumberError
	switch {
	case errors.As(err, &number):
		// The envelope's pointer is the request's: data is a top-level member of both.
		return &Error{Code: CodeInvalidRequest, Fields: []FieldError{numberField(number.Pointer, number.Number, number.Read)},
			Message: fmt.Sprintf("The number at %s changes when read as a 64-bit float, as JavaScript and most JSON parsers read numbers: send it as a string, or with no more digits than a 64-bit float keeps.", truncate(number.Pointer, 256))}
	case errors.As(err, &conflict):
		fields := make([]FieldError, 0, len(conflict.Fields))
		for _, f := range conflict.Fields {
			fields = append(fields, FieldError{Field: f, Message: "differs from the stored event with this event_id"})
		}
		return &Error{Code: CodeConflict, Fields: fields,
			Message: "An event with this event_id exists with other content: send a new event_id for a new event."}
	case errors.As(err, &unknown):
		return invalidFields([]FieldError{{Field: "event_type", Message: "must be a registered event type (see GET /api/event-types)"}})
	case errors.As(err, &invalid):
		// Each field is the failing value's JSON pointer in the request, without its "/".
		fields := make([]FieldError, 0, len(invalid.Problems))
		for _, p := range invalid.Problems {
			fields = append(fields, FieldError{Field: truncate("data"+p.Pointer, 256), Message: truncate(p.Message, 512)})
		}
		return &Error{Code: CodeInvalidRequest, Fields: fields,
			Message: fmt.Sprintf("data does not match the schema of %s (see GET /api/event-types/%s).", invalid.Type, invalid.Type)}
	case errors.Is(err, store.ErrNotFound):
		return errDeliveryNotFound
	case errors.Is(err, delivery.ErrInactive):
		return Errorf(CodeConflict, "The webhook is inactive: activate it before retrying its deliveries.")
	case errors.Is(err, delivery.ErrDelivered):
		return Errorf(CodeConflict, "The delivery was delivered: add ?force=true to send it again.")
	case errors.Is(err, delivery.ErrUnavailable):
		return Errorf(CodeUnavailable, "The delivery engine is not reachable; try again shortly.")
	case errors.Is(err, delivery.ErrTestUnfinished):
		return Errorf(CodeUnavailable, "The test attempt did not finish in time; see the webhook's deliveries.")
	}
	return err
}

// testResponse is the outcome of a webhook test: the test delivery and its attempt.
type testResponse struct {
	Delivered bool             `json:"delivered"`
	EventID   string           `json:"eventId"`
	Delivery  deliveryResponse `json:"delivery"`
	Attempt   *attemptResponse `json:"attempt"`
}

// handleWebhookTest sends a webhook.test event to one webhook through the same path as
// any event, waits for its single attempt and returns it.
func (s *Server) handleWebhookTest(w http.ResponseWriter, r *http.Request) {
	hook, err := s.pathWebhookRecord(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if body, err := s.readBody(w, r); err != nil || body != nil {
		if err == nil {
			err = Errorf(CodeInvalidRequest, "The test endpoint takes no request body.")
		}
		s.writeError(w, r, err)
		return
	}
	tested, err := s.deliveries.Test(r.Context(), hook)
	if errors.Is(err, store.ErrNotFound) {
		err = errWebhookNotFound
	}
	if tested.EventID != "" {
		// The test event went out (even if its attempt did not end in time).
		s.recordAudit(r, hook.AccountID, "webhook.tested", hook.ID.String(), map[string]any{"eventId": tested.EventID})
	}
	if err != nil {
		s.writeError(w, r, deliveryError(err))
		return
	}
	d, err := s.deliveryWithAttempts(r.Context(), hook.ID, tested.DeliveryID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := testResponse{Delivered: d.Status == delivery.StatusDelivered, EventID: tested.EventID, Delivery: d}
	if n := len(*d.Attempts); n > 0 {
		resp.Attempt = &(*d.Attempts)[n-1]
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}
