package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/signature"
)

// registerEventTypeRoutes adds the event type catalog to the authenticated /api router.
func (s *Server) registerEventTypeRoutes(r *mux.Router) {
	r.HandleFunc("/event-types", s.handleEventTypeList).Methods(http.MethodGet)
}

// eventTypeResponse is one entry of the catalog.
type eventTypeResponse struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Subscribable is false for webhook.test, which only the test endpoint sends.
	Subscribable bool `json:"subscribable"`
	// Example is a whole example payload, envelope included, as a receiver gets it.
	Example json.RawMessage `json:"example"`
}

func (s *Server) handleEventTypeList(w http.ResponseWriter, r *http.Request) {
	types := eventtype.All()
	resp := struct {
		Data []eventTypeResponse `json:"data"`
	}{Data: make([]eventTypeResponse, 0, len(types))}
	for _, t := range types {
		example, err := examplePayload(t)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp.Data = append(resp.Data, eventTypeResponse{
			Name:         t.Name,
			Description:  t.Description,
			Subscribable: eventtype.ValidPattern(t.Name) == nil,
			Example:      example,
		})
	}
	s.writeJSON(w, r, http.StatusOK, resp)
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
