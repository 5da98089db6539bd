package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A publish whose event_id is taken by another event is refused with 409 naming what
// differs, and changes nothing; the same event again (a publisher's retry, whitespace
// aside) is answered with the stored one.
func TestRepublishWithOtherContentConflicts(t *testing.T) {
	t.Parallel()
	b := setupPublish(t)
	first := `{"event_id":"e-1","event_type":"survey.response.completed","survey_id":"survey-1","data":{"a":1}}`
	resp := b.do(t, http.MethodPost, eventsPath, first)
	require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, resp.status, string(resp.body))
	stored := resp.body

	retry := `{"event_id":"e-1", "event_type":"survey.response.completed", "survey_id":"survey-1", "data":{ "a": 1 }}`
	resp = b.do(t, http.MethodPost, eventsPath, retry)
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	var again, original map[string]any
	require.NoError(t, json.Unmarshal(resp.body, &again))
	require.NoError(t, json.Unmarshal(stored, &original))
	require.Equal(t, original["payload"], again["payload"])

	for _, tc := range []struct {
		body   string
		fields []string
	}{
		{`{"event_id":"e-1","event_type":"survey.response.completed","survey_id":"other-survey","data":{"a":1}}`, []string{"survey_id"}},
		{`{"event_id":"e-1","event_type":"survey.response.updated","survey_id":"survey-1","data":{"a":1}}`, []string{"event_type"}},
		{`{"event_id":"e-1","event_type":"survey.response.completed","survey_id":"survey-1","data":{"a":2}}`, []string{"data"}},
		{`{"event_id":"e-1","event_type":"survey.response.updated","survey_id":"s-2","data":{}}`, []string{"event_type", "survey_id", "data"}},
	} {
		resp := b.do(t, http.MethodPost, eventsPath, tc.body)
		require.Equal(t, http.StatusConflict, resp.status, string(resp.body))
		var e Error
		require.NoError(t, json.Unmarshal(resp.body, &e))
		require.Equal(t, CodeConflict, e.Code)
		var fields []string
		for _, f := range e.Fields {
			fields = append(fields, f.Field)
		}
		require.Equal(t, tc.fields, fields)
		require.NotContains(t, string(resp.body), `"a":1`, "the stored event is not shown")
	}
	require.Equal(t, 1, countEvents(t, b))
	var survey string
	require.NoError(t, b.db.GetContext(t.Context(), &survey, `SELECT survey_id FROM events WHERE id = 'e-1'`))
	require.Equal(t, "survey-1", survey)
}
