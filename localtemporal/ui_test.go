package localtemporal

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestUIRefusesForeignHosts sends the UI requests as a page reached through DNS rebinding
// would, with its own domain in Host: the app, its API and the CSRF cookie are all refused.
// Requests for this machine's names and addresses are served.
func TestUIRefusesForeignHosts(t *testing.T) {
	t.Parallel()
	opts := setup(t, true)
	s := start(t, opts)
	_, port, err := net.SplitHostPort(opts.UIAddr)
	require.NoError(t, err)

	get := func(t *testing.T, path, host string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.UIURL()+path, nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		return resp
	}

	for _, host := range []string{"attacker.example:" + port, "attacker.example", "127.0.0.1.attacker.example:" + port, "localhost.attacker.example:" + port} {
		for _, path := range []string{"/", "/api/v1/namespaces/" + opts.Namespace + "/workflows"} {
			resp := get(t, path, host)
			require.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode, "%s %s", host, path)
			require.Empty(t, resp.Cookies(), "no CSRF cookie for %s", host)
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port, "localhost:9000"} {
		resp := get(t, "/", host)
		require.Equal(t, http.StatusOK, resp.StatusCode, host)
	}
}

func TestLocalHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host, listen string
		want         bool
	}{
		{"127.0.0.1:8233", "127.0.0.1", true},
		{"192.168.1.20:8233", "0.0.0.0", true},
		{"[::1]:8233", "", true},
		{"localhost", "", true},
		{"localhost.:8233", "", true},
		{"devbox.lan:8233", "devbox.lan", true},
		{"DEVBOX.lan:8233", "devbox.lan", true},
		{"devbox.lan:8233", "0.0.0.0", false},
		{"attacker.example:8233", "127.0.0.1", false},
		{"sub.localhost:8233", "", false},
		{"", "", false},
		{":8233", "", false},
	} {
		require.Equal(t, tc.want, localHost(tc.host, tc.listen), "%q listening on %q", tc.host, tc.listen)
	}
}
