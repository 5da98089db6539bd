package console

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/client"
)

// TestFieldErrors puts each of the API's field errors beside its input, and the ones no
// input shows (or a refusal without fields) at the top of the form.
func TestFieldErrors(t *testing.T) {
	err := &apiError{Status: 400, Body: client.Error{Message: "The request has invalid fields.", Fields: []client.FieldError{
		{Field: "url", Message: "must use https"},
		{Field: "events[1]", Message: "is not a known event type"},
		{Field: "secret", Message: "is too short"},
	}}}
	require.Equal(t, map[string]string{"url": "must use https", "events": "is not a known event type",
		"": "secret: is too short."}, fieldErrors(err, "url", "events"))
	require.Equal(t, map[string]string{"": "Webhook not found."},
		fieldErrors(&apiError{Status: 404, Body: client.Error{Message: "Webhook not found."}}, "url"))
	require.Nil(t, fieldErrors(errors.New("down"), "url"))
}

// TestEventChoices offers the subscribable types, the notices apart, the wildcards their
// names allow, and keeps what the webhook has that the catalog no longer offers.
func TestEventChoices(t *testing.T) {
	types := []client.EventType{
		{Name: "survey.response.completed", Subscribable: true},
		{Name: "webhook.disabled", Subscribable: true},
		{Name: "webhook.test"},
	}
	choices, notices, wildcards := eventChoices(types, []string{"survey.response.completed", "old.type"})
	names := func(cs []eventChoice) (out []string) {
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	require.Equal(t, []string{"survey.response.completed", "old.type"}, names(choices))
	require.Equal(t, []string{"webhook.disabled"}, names(notices))
	require.Equal(t, []string{"*", "survey.*", "survey.response.*", "webhook.*"}, names(wildcards))
}
