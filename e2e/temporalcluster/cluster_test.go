package temporalcluster

import (
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFreePortsAreBelowTheEphemeralRangeAndNeverTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		ports, err := FreePorts(4)
		require.NoError(t, err)
		require.Len(t, ports, 4)
		for _, p := range ports {
			require.GreaterOrEqual(t, p, minServerPort)
			require.Less(t, p, maxServerPort)
			require.False(t, seen[p], "port %d handed out twice", p)
			seen[p] = true
		}
	}
}

func TestFreePortsSkipsAPortInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port

	_, err = freePortsIn(port, port+1, 1)
	require.ErrorContains(t, err, fmt.Sprintf("no free ports from %d to %d", port, port))
}
