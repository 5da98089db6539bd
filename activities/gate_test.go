package activities

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The gate lets limit attempts in flight to one endpoint, one once an attempt timed out,
// and limit again once one got an answer; other endpoints are not counted with it. A
// refused attempt waits as long as the oldest attempt in flight has, or the attempt
// timeout while the endpoint is probed, doubled for each time it was refused before.
func TestEndpointGate(t *testing.T) {
	t.Parallel()
	g := newEndpointGate(2, 30*time.Second)
	a := "https://a.example.com:443"
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	enter := func(at time.Duration, held int) (func(bool), time.Duration) {
		return g.enter(a, t0.Add(at), held)
	}
	leave1, wait := enter(0, 0)
	require.NotNil(t, leave1)
	require.Zero(t, wait)
	leave2, _ := enter(0, 0)
	require.NotNil(t, leave2)
	leave, wait := enter(0, 0)
	require.Nil(t, leave, "a third attempt in flight")
	require.Equal(t, time.Second, wait, "at least a second")
	_, wait = enter(10*time.Second, 0)
	require.Equal(t, 10*time.Second, wait, "as long as the oldest attempt has waited")
	_, wait = enter(10*time.Second, 2)
	require.Equal(t, 40*time.Second, wait, "doubled for each hold before")
	_, wait = enter(10*time.Second, 20)
	require.Equal(t, maxBusyWait, wait)
	leaveB, _ := g.enter("https://b.example.com", t0, 0)
	require.NotNil(t, leaveB, "another endpoint")
	leaveB(false)

	leave1(true) // timed out: the endpoint is probed, one attempt at a time
	leave, _ = enter(30*time.Second, 0)
	require.Nil(t, leave, "one attempt is still in flight")
	leave2(true)
	probe, _ := enter(31*time.Second, 0)
	require.NotNil(t, probe)
	leave, wait = enter(32*time.Second, 0)
	require.Nil(t, leave, "probing: one at a time")
	require.Equal(t, 30*time.Second, wait, "a probe may hang for the attempt timeout")
	probe(false) // answered in time
	leave1, _ = enter(33*time.Second, 0)
	require.NotNil(t, leave1)
	leave2, _ = enter(33*time.Second, 0)
	require.NotNil(t, leave2, "the limit again")
	leave1(false)
	leave2(false)
	require.Empty(t, g.hosts, "idle endpoints are forgotten")

	none := newEndpointGate(-1, time.Second)
	for range 100 {
		leave, _ := none.enter(a, t0, 0)
		require.NotNil(t, leave)
	}
}

func TestEndpointOf(t *testing.T) {
	t.Parallel()
	require.Equal(t, "https://hooks.example.com", endpointOf("https://Hooks.Example.com/a/b?c=d"))
	require.Equal(t, "http://127.0.0.1:8080", endpointOf("http://127.0.0.1:8080/x"))
}
