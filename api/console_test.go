package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestConsoleLinks mints links with a platform key: the URL is the console's, on the
// request's host or Config.ConsoleURL, with an expiry in the allowed range; account keys
// and bad lengths are refused; revoking ends the links not yet opened.
func TestConsoleLinks(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *Config) { c.ConsoleURL = "https://hooks.example.com/" })

	resp := b.do(t, http.MethodPost, "/api/accounts/acme/console-links", "")
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	link := decode[consoleLinkResponse](t, resp)
	require.True(t, strings.HasPrefix(link.URL, "https://hooks.example.com"+ConsoleLinkPath), link.URL)
	require.WithinDuration(t, time.Now().Add(DefaultConsoleLinkTTL), link.ExpiresAt, 5*time.Second)

	resp = b.do(t, http.MethodPost, "/api/accounts/acme/console-links", `{"expiresIn":600}`)
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	require.WithinDuration(t, time.Now().Add(10*time.Minute), decode[consoleLinkResponse](t, resp).ExpiresAt, 5*time.Second)

	for _, body := range []string{`{"expiresIn":5}`, `{"expiresIn":43201}`, `{"expiresIn":null}`, `{"expiresIn":"1h"}`, `{"other":1}`} {
		resp = b.do(t, http.MethodPost, "/api/accounts/acme/console-links", body)
		require.Equal(t, http.StatusBadRequest, resp.status, body)
		require.NotEmpty(t, apiError(t, resp).Fields, body)
	}

	k := createKey(t, b, "acme", "acme key")
	resp = b.do(t, http.MethodPost, "/api/accounts/acme/console-links", "", withKey(k.Key))
	require.Equal(t, http.StatusForbidden, resp.status)
	resp = b.do(t, http.MethodDelete, "/api/accounts/acme/console-sessions", "", withKey(k.Key))
	require.Equal(t, http.StatusForbidden, resp.status)

	token := link.URL[strings.LastIndex(link.URL, "/")+1:]
	resp = b.do(t, http.MethodDelete, "/api/accounts/acme/console-sessions", "")
	require.Equal(t, http.StatusOK, resp.status, string(resp.body))
	require.Equal(t, int64(0), decode[consoleRevokeResponse](t, resp).Revoked, "no session was open")
	_, err := b.store.RedeemConsoleLink(t.Context(), HashToken(token), HashToken(NewToken()), NewToken(), NewSessionKey())
	require.Error(t, err, "a revoked link opens nothing")
}

// TestConsoleLinkHost: without Config.ConsoleURL the link is on the host the request came to.
func TestConsoleLinkHost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	resp := b.do(t, http.MethodPost, "/api/accounts/acme/console-links", "")
	require.Equal(t, http.StatusCreated, resp.status, string(resp.body))
	require.True(t, strings.HasPrefix(decode[consoleLinkResponse](t, resp).URL, b.http.URL+ConsoleLinkPath))
}
