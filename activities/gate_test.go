package activities

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The gate lets limit attempts in flight to one endpoint, one once an attempt timed out,
// and limit again once one got an answer; other endpoints are not counted with it.
func TestEndpointGate(t *testing.T) {
	t.Parallel()
	g := newEndpointGate(2)
	a := "https://a.example.com:443"
	leave1, ok := g.enter(a)
	require.True(t, ok)
	leave2, ok := g.enter(a)
	require.True(t, ok)
	_, ok = g.enter(a)
	require.False(t, ok, "a third attempt in flight")
	leaveB, ok := g.enter("https://b.example.com")
	require.True(t, ok, "another endpoint")
	leaveB(false)

	leave1(true) // timed out: the endpoint is probed, one attempt at a time
	_, ok = g.enter(a)
	require.False(t, ok, "one attempt is still in flight")
	leave2(true)
	probe, ok := g.enter(a)
	require.True(t, ok)
	_, ok = g.enter(a)
	require.False(t, ok, "probing: one at a time")
	probe(false) // answered in time
	leave1, ok = g.enter(a)
	require.True(t, ok)
	leave2, ok = g.enter(a)
	require.True(t, ok, "the limit again")
	leave1(false)
	leave2(false)
	require.Empty(t, g.hosts, "idle endpoints are forgotten")

	none := newEndpointGate(-1)
	for range 100 {
		_, ok := none.enter(a)
		require.True(t, ok)
	}
}

func TestEndpointOf(t *testing.T) {
	t.Parallel()
	require.Equal(t, "https://hooks.example.com", endpointOf("https://Hooks.Example.com/a/b?c=d"))
	require.Equal(t, "http://127.0.0.1:8080", endpointOf("http://127.0.0.1:8080/x"))
}
