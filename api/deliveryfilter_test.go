package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeliveryListFilters: the delivery lists take the events list's filters, and refuse
// bad ones field by field.
func TestDeliveryListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/api/accounts/acme/deliveries", "/api/surveys/s1/webhooks/" + createHookID(t, b) + "/deliveries"} {
		resp := b.do(t, http.MethodGet, path+"?type=survey.response.completed&surveyId=s1&since=2026-12-01T00:00:00Z&until=2026-12-02T00:00:00Z&status=failed", "")
		require.Equal(t, http.StatusOK, resp.status, string(resp.body))
		resp = b.do(t, http.MethodGet, path+"?since=yesterday&surveyId=a%20b&status=lost", "")
		require.Equal(t, http.StatusBadRequest, resp.status, string(resp.body))
		require.ElementsMatch(t, []string{"since", "surveyId", "status"}, fieldNames(apiError(t, resp)))
	}
}

func createHookID(t *testing.T, b *bundle) string {
	t.Helper()
	resp := b.do(t, http.MethodPost, "/api/surveys/s1/webhooks", `{"name":"h","url":"https://example.com/h","events":["*"]}`)
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	return decode[webhookResponse](t, resp).ID.String()
}
