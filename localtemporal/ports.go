package localtemporal

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// checkFree fails with a one-line message when addr cannot be listened on, so that a second
// dev process on the same ports stops before the server fails deep inside its start-up.
func checkFree(what, addr string) error {
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s address %s is in use", what, addr)
	}
	if err != nil {
		return fmt.Errorf("%s address %s: %w", what, addr, err)
	}
	return l.Close()
}

// freePort returns a TCP port on host that nothing listens on.
//
// It connects to the port and closes that connection from the listening side first, which
// leaves the port in TIME_WAIT: Linux then does not hand it to another bind(":0") for a
// while, yet the server can still bind it explicitly (Go sets SO_REUSEADDR). Without this,
// two dev servers starting at the same moment could be given the same port.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick free port: %w", err)
	}
	defer l.Close()
	addr := l.Addr().(*net.TCPAddr)

	client, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		return 0, fmt.Errorf("pick free port: %w", err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		return 0, fmt.Errorf("pick free port: %w", err)
	}
	if err := server.Close(); err != nil {
		return 0, fmt.Errorf("pick free port: %w", err)
	}
	return addr.Port, nil
}
