package eventtype_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/eventtype"
)

func TestAll(t *testing.T) {
	t.Parallel()

	all := eventtype.All()
	names := make([]string, 0, len(all))
	for _, typ := range all {
		names = append(names, typ.Name)
		require.NotEmpty(t, typ.Description, typ.Name)
		var data map[string]any
		require.NoError(t, json.Unmarshal(typ.Example, &data), typ.Name)
		require.NotEmpty(t, data, typ.Name)
	}
	require.Equal(t, []string{
		eventtype.SurveyResponseCompleted,
		eventtype.SurveyResponseUpdated,
		eventtype.SurveyResponseDisqualified,
		eventtype.FormSubmissionCreated,
		eventtype.WebhookTest,
	}, names)

	// Changing the returned slice must not change the catalog.
	all[0].Name = "changed"
	require.Equal(t, eventtype.SurveyResponseCompleted, eventtype.All()[0].Name)
}

func TestSurveyExamplesFollowPayloadShape(t *testing.T) {
	t.Parallel()

	// The documented payload: data = {"survey":{"id","title"},"response":{"id","answers":[...],...}}.
	for _, typ := range eventtype.All()[:3] {
		var data struct {
			Survey struct {
				ID    string `json:"id"`
				Title string `json:"title"`
			} `json:"survey"`
			Response struct {
				ID      string `json:"id"`
				Answers []any  `json:"answers"`
			} `json:"response"`
		}
		require.NoError(t, json.Unmarshal(typ.Example, &data), typ.Name)
		require.NotEmpty(t, data.Survey.ID, typ.Name)
		require.NotEmpty(t, data.Survey.Title, typ.Name)
		require.NotEmpty(t, data.Response.ID, typ.Name)
		require.NotEmpty(t, data.Response.Answers, typ.Name)
	}
}

func TestIsKnown(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		want bool
	}{
		{eventtype.SurveyResponseCompleted, true},
		{eventtype.SurveyResponseUpdated, true},
		{eventtype.SurveyResponseDisqualified, true},
		{eventtype.FormSubmissionCreated, true},
		{eventtype.WebhookTest, true},
		{"survey.response_completed", false},
		{"survey.response.*", false},
		{"*", false},
		{"", false},
		{"SURVEY.RESPONSE.COMPLETED", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, eventtype.IsKnown(tt.name), tt.name)
	}
}

func TestValidPattern(t *testing.T) {
	t.Parallel()

	tests := []struct {
		pattern string
		valid   bool
	}{
		{eventtype.SurveyResponseCompleted, true},
		{eventtype.SurveyResponseUpdated, true},
		{eventtype.SurveyResponseDisqualified, true},
		{eventtype.FormSubmissionCreated, true},
		{"*", true},
		{"survey.*", true},
		{"survey.response.*", true},
		{"form.*", true},
		{"form.submission.*", true},
		{eventtype.WebhookTest, false},
		{"webhook.*", false}, // matches only webhook.test
		{"", false},
		{"survey.response_completed", false}, // seed 001's spelling is not ours
		{"survey.respnse.*", false},
		{"survey.response.completed.*", false},
		{"survey*", false},
		{"survey.", false},
		{".*", false},
		{"*.*", false},
		{"**", false},
		{"*.completed", false},
		{"survey.*.completed", false},
		{" survey.*", false},
	}
	for _, tt := range tests {
		err := eventtype.ValidPattern(tt.pattern)
		if tt.valid {
			require.NoError(t, err, tt.pattern)
		} else {
			require.Error(t, err, tt.pattern)
			require.True(t, errors.Is(err, eventtype.ErrInvalidPattern), tt.pattern)
		}
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()

	tests := []struct {
		pattern, eventType string
		want               bool
	}{
		{"*", eventtype.SurveyResponseCompleted, true},
		{"*", eventtype.FormSubmissionCreated, true},
		{"*", eventtype.WebhookTest, false},
		{"webhook.*", eventtype.WebhookTest, false},
		{eventtype.WebhookTest, eventtype.WebhookTest, false},
		{"survey.*", eventtype.SurveyResponseCompleted, true},
		{"survey.*", eventtype.FormSubmissionCreated, false},
		{"survey.response.*", eventtype.SurveyResponseDisqualified, true},
		{"survey.response.*", "survey.responses.x", false},
		{"survey.*", "surveys.response.completed", false},
		{"form.*", eventtype.FormSubmissionCreated, true},
		{eventtype.SurveyResponseCompleted, eventtype.SurveyResponseCompleted, true},
		{eventtype.SurveyResponseCompleted, eventtype.SurveyResponseUpdated, false},
		{"survey.response", eventtype.SurveyResponseCompleted, false},
		{".*", eventtype.SurveyResponseCompleted, false},
		{"*.*", eventtype.SurveyResponseCompleted, false},
		{"*", "", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, eventtype.Matches(tt.pattern, tt.eventType), "%s ~ %s", tt.pattern, tt.eventType)
	}
}

// matchesByList is Matches through MatchingPatterns.
func matchesByList(pattern, eventType string) bool {
	return slices.Contains(eventtype.MatchingPatterns(eventType), pattern)
}

func TestMatchingPatternsAgreeWithMatches(t *testing.T) {
	t.Parallel()

	patterns := []string{"*", ".*", "*.*", "survey.*", "survey.response.*", "survey.resp.*", "surveys.*",
		"survey.response", "survey.response.completed.*", "form.*", "form.submission.*", "webhook.*"}
	for _, typ := range eventtype.All() {
		patterns = append(patterns, typ.Name)
	}
	for _, typ := range append(eventtype.All(), eventtype.Type{Name: ""}, eventtype.Type{Name: "a.b"}) {
		for _, p := range patterns {
			require.Equal(t, eventtype.Matches(p, typ.Name), matchesByList(p, typ.Name), "%s ~ %s", p, typ.Name)
		}
	}
	require.Equal(t, []string{"*", "survey.*", "survey.response.*", "survey.response.completed"},
		eventtype.MatchingPatterns(eventtype.SurveyResponseCompleted))
	require.Nil(t, eventtype.MatchingPatterns(eventtype.WebhookTest))
}

// Event types never contain '*' (they come from the catalog); any pattern may be stored.
func FuzzMatchingPatterns(f *testing.F) {
	f.Add("survey.*", eventtype.SurveyResponseCompleted)
	f.Add("a..*", "a..b")
	f.Add("*", "x")
	f.Fuzz(func(t *testing.T, pattern, eventType string) {
		if strings.Contains(eventType, "*") {
			t.Skip()
		}
		if eventtype.Matches(pattern, eventType) != matchesByList(pattern, eventType) {
			t.Fatalf("%q ~ %q: Matches %v, MatchingPatterns %v", pattern, eventType,
				eventtype.Matches(pattern, eventType), eventtype.MatchingPatterns(eventType))
		}
	})
}
