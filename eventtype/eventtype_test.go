package eventtype_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/eventtype"
)

// source is an in-memory eventtype.Source: the registry's own tests need no database (the
// store's tests read the real table).
type source struct {
	mu    sync.Mutex
	types []eventtype.Type
	reads int
	err   error
}

func (s *source) ListEventTypes(context.Context) ([]eventtype.Type, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return slices.Clone(s.types), s.err
}

// anyObject is a schema every object matches.
const anyObject = `{"type":"object"}`

func typeOf(name string) eventtype.Type {
	return eventtype.Type{Name: name, Description: name, Schema: json.RawMessage(anyObject), Example: json.RawMessage(`{}`)}
}

// surveyTypes are the names of migration 0005's defaults.
var surveyTypes = []string{
	eventtype.SurveyResponseCompleted,
	eventtype.SurveyResponseUpdated,
	eventtype.SurveyResponseDisqualified,
	eventtype.FormSubmissionCreated,
}

// defaults returns a Set of the survey types, one archived type (survey.legacy.done) and
// WebhookTest.
func defaults(t *testing.T) *eventtype.Set {
	t.Helper()
	var types []eventtype.Type
	for _, name := range surveyTypes {
		types = append(types, typeOf(name))
	}
	archived := typeOf("legacy.response.done")
	at := time.Now()
	archived.ArchivedAt = &at
	src := &source{types: append(types, archived)}
	set, err := eventtype.NewRegistry(src, 0).Set(t.Context())
	require.NoError(t, err)
	return set
}

func TestCheckName(t *testing.T) {
	t.Parallel()

	for _, name := range []string{
		"survey.response.created",
		"form.submission.created",
		"survey.response_completed", // seed 001's spelling
		"a.b",
		"a1.b_2.c3",
		"a.b.c.d.e.f.g.h.i.j",
		strings.Repeat("a", 63) + "." + strings.Repeat("b", 64),
	} {
		require.NoError(t, eventtype.CheckName(name), name)
	}
	for _, name := range []string{
		"",
		"survey",
		"survey.",
		".survey",
		"survey..response",
		"Survey.Response",
		"survey.response-created",
		"survey response.created",
		"survey.*",
		"*",
		"survey.response.*",
		"a.b.c.d.e.f.g.h.i.j.k",
		strings.Repeat("a", 64) + "." + strings.Repeat("b", 64),
		"webhook.test",
		"webhook.custom",
		"delivery.exhausted",
		"survey.réponse",
	} {
		err := eventtype.CheckName(name)
		require.Error(t, err, name)
		require.ErrorIs(t, err, eventtype.ErrInvalidName, name)
	}
}

func TestSetAll(t *testing.T) {
	t.Parallel()

	var names []string
	for _, typ := range defaults(t).All() {
		names = append(names, typ.Name)
	}
	require.Equal(t, []string{
		eventtype.DeliveryExhausted,
		eventtype.FormSubmissionCreated,
		"legacy.response.done",
		eventtype.SurveyResponseCompleted,
		eventtype.SurveyResponseDisqualified,
		eventtype.SurveyResponseUpdated,
		eventtype.WebhookDisabled,
		eventtype.WebhookFailing,
		eventtype.WebhookTest,
	}, names)

	for _, name := range []string{eventtype.WebhookTest, eventtype.WebhookDisabled, eventtype.WebhookFailing, eventtype.DeliveryExhausted} {
		builtIn, ok := defaults(t).Lookup(name)
		require.True(t, ok)
		require.True(t, builtIn.BuiltIn())
		_, err := eventtype.CheckDefinition(builtIn.Schema, builtIn.Example)
		require.NoError(t, err, "the example of %s matches its schema", name)
	}
}

func TestValidPattern(t *testing.T) {
	t.Parallel()
	set := defaults(t)

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
		{eventtype.WebhookDisabled, true},
		{"webhook.*", true}, // the notices
		{"legacy.response.done", false},
		{"legacy.*", false}, // matches only an archived type
		{"", false},
		{"survey.response_completed", false}, // seed 001's spelling is not registered here
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
		err := set.ValidPattern(tt.pattern)
		if tt.valid {
			require.NoError(t, err, tt.pattern)
		} else {
			require.Error(t, err, tt.pattern)
			require.ErrorIs(t, err, eventtype.ErrInvalidPattern, tt.pattern)
		}
	}
	require.ErrorIs(t, set.ValidPattern("legacy.response.done"), eventtype.ErrArchived)
	require.NotErrorIs(t, set.ValidPattern("legacy.*"), eventtype.ErrArchived)
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
		{"*", eventtype.WebhookDisabled, false},
		{"webhook.*", eventtype.WebhookDisabled, true},
		{eventtype.WebhookDisabled, eventtype.WebhookDisabled, true},
		{"*", eventtype.WebhookFailing, false},
		{"*", eventtype.DeliveryExhausted, false},
		{"delivery.*", eventtype.DeliveryExhausted, true},
		{"webhook.*", eventtype.WebhookFailing, true},
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
	patterns = append(patterns, surveyTypes...)
	patterns = append(patterns, eventtype.WebhookTest, eventtype.WebhookDisabled)
	for _, name := range append(slices.Clone(patterns), eventtype.WebhookTest, eventtype.WebhookDisabled, "", "a.b") {
		if strings.Contains(name, "*") {
			continue
		}
		for _, p := range patterns {
			require.Equal(t, eventtype.Matches(p, name), matchesByList(p, name), "%s ~ %s", p, name)
		}
	}
	require.Equal(t, []string{"*", "survey.*", "survey.response.*", "survey.response.completed"},
		eventtype.MatchingPatterns(eventtype.SurveyResponseCompleted))
	require.Nil(t, eventtype.MatchingPatterns(eventtype.WebhookTest))
	require.Equal(t, []string{"webhook.*", "webhook.disabled"}, eventtype.MatchingPatterns(eventtype.WebhookDisabled), "no wildcard for a notice")
}

// Event types never contain '*' (CheckName); any pattern may be stored.
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
