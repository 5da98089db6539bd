package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

// registerEventTypeRoutes adds the event type registry to the authenticated /api router:
// every key reads it, platform keys change it.
func (s *Server) registerEventTypeRoutes(r *mux.Router) {
	const one = "/event-types/{name}"
	r.HandleFunc("/event-types", s.handleEventTypeList).Methods(http.MethodGet)
	r.HandleFunc("/event-types", s.platformOnly(s.handleEventTypeCreate)).Methods(http.MethodPost)
	r.HandleFunc(one, s.handleEventTypeGet).Methods(http.MethodGet)
	r.HandleFunc(one, s.platformOnly(s.handleEventTypeUpdate)).Methods(http.MethodPatch)
	r.HandleFunc(one+"/archive", s.platformOnly(s.handleEventTypeArchive)).Methods(http.MethodPost)
}

var errEventTypeNotFound = Errorf(CodeNotFound, "Event type not found.")

// errBuiltIn refuses changes to webhook.test.
var errBuiltIn = invalidFields([]FieldError{{Field: "name",
	Message: "webhook.test is built into surveyhooks: it cannot be changed or archived"}})

// eventTypeResponse is one event type as the API shows it.
type eventTypeResponse struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Subscribable says a webhook may newly subscribe to the type by name: false for
	// archived types and for webhook.test, which only the test endpoint sends.
	Subscribable bool `json:"subscribable"`
	// BuiltIn is true for webhook.test, which is part of surveyhooks, not of the registry.
	BuiltIn    bool       `json:"builtIn"`
	Archived   bool       `json:"archived"`
	ArchivedAt *time.Time `json:"archivedAt"`
	// Schema is the JSON Schema (draft 2020-12) every published event's data must match.
	Schema json.RawMessage `json:"schema"`
	// Example is an example of data; it matches Schema.
	Example json.RawMessage `json:"example"`
	// ExamplePayload is the whole example as a receiver gets it, envelope included.
	ExamplePayload json.RawMessage `json:"examplePayload"`
	// CreatedAt and UpdatedAt are null for webhook.test.
	CreatedAt *time.Time `json:"createdAt"`
	UpdatedAt *time.Time `json:"updatedAt"`
}

func newEventTypeResponse(t eventtype.Type, set *eventtype.Set) (eventTypeResponse, error) {
	payload, err := examplePayload(t)
	if err != nil {
		return eventTypeResponse{}, err
	}
	resp := eventTypeResponse{
		Name: t.Name, Description: t.Description,
		Subscribable: set.ValidPattern(t.Name) == nil, BuiltIn: t.BuiltIn(),
		Archived: t.Archived(), ArchivedAt: utcOrNil(t.ArchivedAt),
		Schema: t.Schema, Example: t.Example, ExamplePayload: payload,
	}
	if !t.BuiltIn() {
		resp.CreatedAt, resp.UpdatedAt = utcOrNil(&t.CreatedAt), utcOrNil(&t.UpdatedAt)
	}
	return resp, nil
}

// examplePayload wraps an event type's example data in the envelope that is delivered.
func examplePayload(t eventtype.Type) (json.RawMessage, error) {
	b, err := json.Marshal(signature.Event{
		EventID:   "evt_0190f5a27c1e7d3a",
		EventType: t.Name,
		Timestamp: time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC),
		Data:      t.Example,
	})
	if err != nil {
		return nil, fmt.Errorf("encode example of %s: %w", t.Name, err)
	}
	return b, nil
}

// handleEventTypeList lists every event type in name order, archived ones and
// webhook.test included, as the database has them now.
func (s *Server) handleEventTypeList(w http.ResponseWriter, r *http.Request) {
	set, err := s.types.Reload(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	types := set.All()
	resp := struct {
		Data []eventTypeResponse `json:"data"`
	}{Data: make([]eventTypeResponse, 0, len(types))}
	for _, t := range types {
		et, err := newEventTypeResponse(t, set)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp.Data = append(resp.Data, et)
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}

func (s *Server) handleEventTypeGet(w http.ResponseWriter, r *http.Request) {
	set, err := s.types.Reload(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, ok := set.Lookup(mux.Vars(r)["name"])
	if !ok {
		s.writeError(w, r, errEventTypeNotFound)
		return
	}
	s.writeEventType(w, r, http.StatusOK, t)
}

// writeEventType answers with t as the registry has it after a change.
func (s *Server) writeEventType(w http.ResponseWriter, r *http.Request, status int, t eventtype.Type) {
	set, err := s.types.Set(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := newEventTypeResponse(t, set)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, status, resp)
}

// eventTypeInput is a create or update body, member by member.
type eventTypeInput struct {
	Description optional[string]
	Schema      optional[json.RawMessage]
	Example     optional[json.RawMessage]
}

func decodeEventTypeInput(m *members) eventTypeInput {
	return eventTypeInput{
		Description: member[string](m, "description", "a string"),
		Schema:      member[json.RawMessage](m, "schema", "a JSON object"),
		Example:     member[json.RawMessage](m, "example", "a JSON object"),
	}
}

// apply checks the members of in that were sent and sets them on t, reporting problems on
// m: a member left out changes nothing. The schema and the example are checked together,
// as t has them after the change, so that a new schema is refused when the example no
// longer matches it.
func (in eventTypeInput) apply(m *members, t *eventtype.Type) error {
	if notNull(m, "description", in.Description) {
		checkDescription(m, in.Description.Value)
		t.Description = in.Description.Value
	}
	if notNull(m, "schema", in.Schema) {
		t.Schema = compactObject(m, "schema", in.Schema.Value)
	}
	if notNull(m, "example", in.Example) {
		t.Example = compactObject(m, "example", in.Example.Value)
	}
	if len(m.errs) > 0 {
		return nil
	}
	_, err := eventtype.CheckDefinition(t.Schema, t.Example)
	var def *eventtype.DefinitionError
	if errors.As(err, &def) {
		for _, f := range def.Fields {
			m.fail(f.Field, f.Message)
		}
		return nil
	}
	return err
}

// compactObject returns a member that must be a JSON object without its spaces, member
// order kept.
func compactObject(m *members, field string, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || raw[0] != '{' {
		m.fail(field, "must be a JSON object")
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		m.fail(field, "must be a JSON object")
		return nil
	}
	return b.Bytes()
}

// auditEventTypeChange lists what a create or update sets. Event types belong to the
// platform, not to one account: their changes go to the default account's audit log, the
// platform's own.
func auditEventTypeChange(in eventTypeInput) map[string]any {
	changes := map[string]any{}
	if in.Description.usable() {
		changes["description"] = in.Description.Value
	}
	if in.Schema.usable() {
		changes["schema"] = in.Schema.Value
	}
	if in.Example.usable() {
		changes["example"] = in.Example.Value
	}
	return changes
}

// handleEventTypeCreate registers a type: a new name, a description, a schema and an
// example that matches it.
func (s *Server) handleEventTypeCreate(w http.ResponseWriter, r *http.Request) {
	m, err := s.readObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name := member[string](m, "name", "a string")
	in := decodeEventTypeInput(m)
	m.rejectUnknown()
	var t eventtype.Type
	switch {
	case !name.Set || name.Null:
		m.fail("name", "is required")
	case name.Bad:
	default:
		var nameErr *eventtype.NameError
		if err := eventtype.CheckName(name.Value); errors.As(err, &nameErr) {
			m.fail("name", nameErr.Reason)
		}
		t.Name = name.Value
	}
	for _, f := range []struct {
		name string
		sent bool
	}{{"schema", in.Schema.Set}, {"example", in.Example.Set}} {
		if !f.sent {
			m.fail(f.name, "is required")
		}
	}
	if err := in.apply(m, &t); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(m.errs) > 0 {
		s.writeError(w, r, invalidFields(m.errs))
		return
	}

	var created eventtype.Type
	entry := s.auditEntry(r, store.DefaultAccount, "event_type.created", t.Name, auditEventTypeChange(in))
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		created, err = st.CreateEventType(r.Context(), t)
		return err
	})
	if errors.Is(err, store.ErrDuplicate) {
		err = Errorf(CodeConflict, "An event type named %s exists: change it with PATCH /api/event-types/%s.", t.Name, t.Name)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.types.Invalidate()
	w.Header().Set("Location", r.URL.Path+"/"+created.Name)
	s.writeEventType(w, r, http.StatusCreated, created)
}

// handleEventTypeUpdate changes a type's description, schema or example. The change is
// checked against the stored type under its row lock, so that two changes made at once
// cannot leave an example that does not match the schema. Events published before keep
// the data they were sent with; the next publish is checked against the new schema (in
// every API process within eventtype.DefaultRefresh).
func (s *Server) handleEventTypeUpdate(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if name == eventtype.WebhookTest {
		s.writeError(w, r, errBuiltIn)
		return
	}
	m, err := s.readObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in := decodeEventTypeInput(m)
	m.rejectUnknown()
	if len(m.errs) > 0 {
		s.writeError(w, r, invalidFields(m.errs))
		return
	}
	if !in.Description.Set && !in.Schema.Set && !in.Example.Set {
		s.writeError(w, r, Errorf(CodeInvalidRequest, "Send at least one of description, schema and example."))
		return
	}
	s.changeEventType(w, r, name, "event_type.updated", auditEventTypeChange(in), func(t *eventtype.Type) error {
		if err := in.apply(m, t); err != nil {
			return err
		}
		if len(m.errs) > 0 {
			return invalidFields(m.errs)
		}
		return nil
	})
}

// handleEventTypeArchive archives a type: webhooks can no longer subscribe to it by name;
// the ones that have stay subscribed and keep receiving it, and publishers may still send
// it. Archiving an archived type changes nothing.
func (s *Server) handleEventTypeArchive(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if name == eventtype.WebhookTest {
		s.writeError(w, r, errBuiltIn)
		return
	}
	if body, err := s.readBody(w, r); err != nil || body != nil {
		if err == nil {
			err = Errorf(CodeInvalidRequest, "The archive endpoint takes no request body.")
		}
		s.writeError(w, r, err)
		return
	}
	s.changeEventType(w, r, name, "event_type.archived", nil, func(t *eventtype.Type) error {
		if t.ArchivedAt == nil {
			now := time.Now()
			t.ArchivedAt = &now
		}
		return nil
	})
}

// changeEventType applies change to the stored type called name with its audit entry, and
// answers with the result.
func (s *Server) changeEventType(w http.ResponseWriter, r *http.Request, name, action string, changes map[string]any, change func(*eventtype.Type) error) {
	var updated eventtype.Type
	entry := s.auditEntry(r, store.DefaultAccount, action, name, changes)
	err := s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		updated, err = st.UpdateEventType(r.Context(), name, change)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		err = errEventTypeNotFound
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.types.Invalidate()
	s.writeEventType(w, r, http.StatusOK, updated)
}
