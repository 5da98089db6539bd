package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/signature"
)

func TestEventTypeList(t *testing.T) {
	t.Parallel()
	b := setup(t)

	resp := b.do(t, http.MethodGet, "/api/event-types", "")
	require.Equal(t, http.StatusOK, resp.status)
	list := decode[struct {
		Data []eventTypeResponse `json:"data"`
	}](t, resp)

	var names []string
	for _, et := range list.Data {
		names = append(names, et.Name)
		require.NotEmpty(t, et.Description)
		require.Equal(t, et.Name != eventtype.WebhookTest, et.Subscribable, et.Name)

		// The example is a whole payload as receivers get it.
		var payload signature.Event
		dec := json.NewDecoder(bytes.NewReader(et.Example))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&payload), et.Name)
		require.Equal(t, et.Name, payload.EventType)
		require.NotEmpty(t, payload.EventID)
		require.False(t, payload.Timestamp.IsZero())
		var data map[string]any
		require.NoError(t, json.Unmarshal(payload.Data, &data))
		require.NotEmpty(t, data)
	}
	var want []string
	for _, et := range eventtype.All() {
		want = append(want, et.Name)
	}
	require.Equal(t, want, names)
}
