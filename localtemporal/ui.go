package localtemporal

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
)

// startUI serves the Temporal Web UI embedded in the ui-server module on addr, talking to the
// frontend at frontendAddr, and returns once it accepts connections.
func startUI(ctx context.Context, addr, frontendAddr, namespace string) (*uiserver.Server, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("temporal UI address %s: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("temporal UI address %s: port is not a number", addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	uiHost := host
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		uiHost = "[" + host + "]" // the UI server joins host and port with a plain ":"
	}

	srv := uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                uiHost,
		Port:                port,
		TemporalGRPCAddress: frontendAddr,
		DefaultNamespace:    namespace,
		EnableUI:            true,
		// The browser loads the app and calls the API from the same origin; plain http on
		// loopback, so the CSRF cookie cannot be "Secure".
		CORS: uiconfig.CORS{
			AllowOrigins:   []string{"http://" + net.JoinHostPort(connectHost(host), portText)},
			CookieInsecure: true,
		},
		HideLogs: true,
		// No network: the release check would call GitHub.
		DisableNewsFetch: true,
	}))

	// Start blocks while serving. It exits the process on a listen error (echo's Fatal),
	// which is why Start checked that the port is free just before.
	go func() { _ = srv.Start() }()

	dialAddr := net.JoinHostPort(connectHost(host), portText)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := net.DialTimeout("tcp", dialAddr, time.Second)
		if err == nil {
			_ = conn.Close()
			return srv, nil
		}
		select {
		case <-ctx.Done():
			srv.Stop()
			return nil, fmt.Errorf("wait for temporal UI on %s: %w", addr, ctx.Err())
		case <-tick.C:
		}
	}
}

// connectHost is where a local client reaches a server bound on host: a wildcard address
// is not something to connect to.
func connectHost(host string) string {
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return host
}
