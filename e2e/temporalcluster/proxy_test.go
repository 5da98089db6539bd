package temporalcluster

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer answers each line with its name and the line.
func echoServer(t *testing.T, name string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, name+" "+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader) string {
	t.Helper()
	_, err := io.WriteString(c, "ping\n")
	require.NoError(t, err)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	return line
}

func TestProxyBalancesAndSkipsDeadBackends(t *testing.T) {
	t.Parallel()
	a, b := echoServer(t, "a"), echoServer(t, "b")
	p, err := NewProxy(a.Addr().String(), b.Addr().String())
	require.NoError(t, err)
	t.Cleanup(p.Close)

	seen := map[string]int{}
	for range 4 {
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		seen[roundTrip(t, c, bufio.NewReader(c))]++
		c.Close()
	}
	require.Equal(t, map[string]int{"a ping\n": 2, "b ping\n": 2}, seen, "round robin")

	// A connection to a backend that dies ends; new ones go to the live backend.
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	r := bufio.NewReader(c)
	first := roundTrip(t, c, r)
	dead, live := a, "b ping\n"
	if first == "b ping\n" {
		dead, live = b, "a ping\n"
	}
	dead.Close()
	for range 3 {
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		require.Equal(t, live, roundTrip(t, c, bufio.NewReader(c)))
		c.Close()
	}
}

func TestProxyPauseHoldsTraffic(t *testing.T) {
	t.Parallel()
	p, err := NewProxy(echoServer(t, "a").Addr().String())
	require.NoError(t, err)
	t.Cleanup(p.Close)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	require.Equal(t, "a ping\n", roundTrip(t, c, r))

	p.Pause()
	_, err = io.WriteString(c, "held\n")
	require.NoError(t, err)
	// Nothing comes back while paused: no answer, and no reset either.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = r.ReadString('\n')
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "read while paused: %v", err)
	// A new connection is accepted but gets no answer either.
	c2, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c2.Close()
	_, err = io.WriteString(c2, "new\n")
	require.NoError(t, err)

	p.Resume()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "a held\n", line, "what was held goes on")
	require.NoError(t, c2.SetReadDeadline(time.Now().Add(time.Minute)))
	line, err = bufio.NewReader(c2).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "a new\n", line)
}
