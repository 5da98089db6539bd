package api

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/store"
)

// TestParallelRotationsKeepTheOriginalSecret sends two rotations of one webhook at once:
// one is answered 200 with the secret that is now current, the other 409, and the original
// secret keeps signing through the overlap.
func TestParallelRotationsKeepTheOriginalSecret(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := createWebhook(t, b, "survey-1", validCreateBody)
	path := webhooksPath + "/" + created.ID.String() + "/secret/rotate"

	var wg sync.WaitGroup
	answers := make([]response, 2)
	for i := range answers {
		wg.Go(func() { answers[i] = b.do(t, http.MethodPost, path, "") })
	}
	wg.Wait()

	var statuses []int
	var current string
	for _, a := range answers {
		statuses = append(statuses, a.status)
		switch a.status {
		case http.StatusOK:
			current = decode[secretResponse](t, a).Secret
		case http.StatusConflict:
			require.Equal(t, CodeConflict, apiError(t, a).Code)
		}
	}
	require.ElementsMatch(t, []int{http.StatusOK, http.StatusConflict}, statuses)
	stored, err := b.store.GetWebhook(t.Context(), store.Scope{AccountID: store.DefaultAccount, SurveyID: "survey-1"}, created.ID)
	require.NoError(t, err)
	require.Equal(t, current, stored.Secret, "the 200 names the current secret")
	require.Equal(t, "your-webhook-secret", *stored.PreviousSecret, "the original secret still signs")
}
