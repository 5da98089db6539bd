package netguard

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every test here talks only to servers on loopback. Refused dials are refused
// before connect, so they send nothing anywhere.

var allowLoopback = Policy{
	AllowHTTP: true,
	Allowed: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	},
}

func newServer(t *testing.T, hits *atomic.Int64) *httptest.Server {
	t.Helper()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, client *http.Client, rawURL string) (*http.Response, error) {
	t.Helper()

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	if err == nil {
		t.Cleanup(func() { _ = resp.Body.Close() })
	}
	return resp, err
}

func TestClientRefusesLoopback(t *testing.T) {
	t.Parallel()

	var hits atomic.Int64
	srv := newServer(t, &hits)

	_, err := get(t, Policy{AllowHTTP: true}.Client(), srv.URL)
	require.ErrorIs(t, err, ErrBlockedAddress)
	// The error travels through *url.Error and *net.OpError.
	var urlErr *url.Error
	require.ErrorAs(t, err, &urlErr)
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr)
	require.ErrorContains(t, err, "address 127.0.0.1 is blocked (loopback)")

	// The allowed request below is the first one the server sees.
	resp, err := get(t, allowLoopback.Client(), srv.URL)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int64(1), hits.Load())
}

func TestClientRefusesHostnameResolvingToLoopback(t *testing.T) {
	t.Parallel()

	var hits atomic.Int64
	srv := newServer(t, &hits)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)
	byName := "http://" + net.JoinHostPort("localhost", port) + "/"

	// CheckURL does not resolve names, so this URL passes validation ...
	policy := Policy{AllowHTTP: true}
	require.NoError(t, policy.CheckURL(byName))
	// ... and the dialer refuses it once the name has resolved to loopback.
	_, err = get(t, policy.Client(), byName)
	require.ErrorIs(t, err, ErrBlockedAddress)
	require.ErrorContains(t, err, "(loopback)")
	require.Zero(t, hits.Load())

	resp, err := get(t, allowLoopback.Client(), byName)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int64(1), hits.Load())
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()

	var targetHits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) {
		targetHits.Add(1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	resp, err := get(t, allowLoopback.Client(), srv.URL+"/start")
	require.NoError(t, err)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "/target", resp.Header.Get("Location"))
	require.Zero(t, targetHits.Load())
}

func TestClientTLSGoesThroughGuardedDialer(t *testing.T) {
	t.Parallel()

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	trust := func(client *http.Client) *http.Client {
		transport := client.Transport.(*http.Transport)
		transport.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
		return client
	}

	_, err := get(t, trust(Policy{}.Client()), srv.URL)
	require.ErrorIs(t, err, ErrBlockedAddress)

	resp, err := get(t, trust(allowLoopback.Client()), srv.URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "HTTP/2.0", string(body), "ForceAttemptHTTP2 with a custom TLS config")
	require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))
}

func TestDialerRefusesBeforeConnect(t *testing.T) {
	t.Parallel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })

	_, err = Policy{}.Dialer().DialContext(t.Context(), "tcp", ln.Addr().String())
	require.ErrorIs(t, err, ErrBlockedAddress)

	allowed, err := allowLoopback.Dialer().DialContext(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = allowed.Close() })

	// Connections queue in order. Had the refused dial connected, it would be
	// accepted first; the first connection is the allowed one.
	accepted, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { _ = accepted.Close() })
	require.Equal(t, allowed.LocalAddr().String(), accepted.RemoteAddr().String())
}

func TestDialerRefusesIPv6Loopback(t *testing.T) {
	t.Parallel()

	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })

	_, err = Policy{}.Dialer().DialContext(t.Context(), "tcp", ln.Addr().String())
	require.ErrorIs(t, err, ErrBlockedAddress)
	require.ErrorContains(t, err, "address ::1 is blocked (loopback)")

	conn, err := allowLoopback.Dialer().DialContext(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	require.NoError(t, conn.Close())
}

func TestDialerRefusesNonIPNetworks(t *testing.T) {
	t.Parallel()

	_, err := allowLoopback.Dialer().DialContext(t.Context(), "unix", t.TempDir()+"/sock")
	require.ErrorIs(t, err, ErrBlockedAddress)
}

func TestDialerKeepsItsOwnAllowList(t *testing.T) {
	t.Parallel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })

	allowed := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	dialer := Policy{Allowed: allowed}.Dialer()
	allowed[0] = netip.MustParsePrefix("127.0.0.0/8")

	_, err = dialer.DialContext(t.Context(), "tcp", ln.Addr().String())
	require.ErrorIs(t, err, ErrBlockedAddress)
}

func TestTransportSettings(t *testing.T) {
	t.Parallel()

	transport := Policy{}.Transport()
	require.Nil(t, transport.Proxy, "an environment proxy would bypass the dial check")
	require.Nil(t, transport.DialTLSContext, "TLS must dial through DialContext")
	require.NotNil(t, transport.DialContext)
	require.True(t, transport.ForceAttemptHTTP2)
	require.Equal(t, 1024, transport.MaxIdleConns)
	require.Equal(t, 256, transport.MaxIdleConnsPerHost)
	require.Equal(t, uint16(tls.VersionTLS12), transport.TLSClientConfig.MinVersion)
	require.Zero(t, transport.ResponseHeaderTimeout)

	client := Policy{}.Client()
	require.Zero(t, client.Timeout)
	require.True(t, errors.Is(client.CheckRedirect(nil, nil), http.ErrUseLastResponse))
}
