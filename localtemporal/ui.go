package localtemporal

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	uiapi "github.com/temporalio/ui-server/v2/server/api"
	uiauth "github.com/temporalio/ui-server/v2/server/auth"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uicors "github.com/temporalio/ui-server/v2/server/cors"
	uicsrf "github.com/temporalio/ui-server/v2/server/csrf"
	uiheaders "github.com/temporalio/ui-server/v2/server/headers"
	uiroute "github.com/temporalio/ui-server/v2/server/route"
	"github.com/temporalio/ui-server/v2/ui"
)

// uiServer serves the Temporal Web UI.
type uiServer struct {
	srv *http.Server
}

// Stop closes the listener and every connection.
func (u *uiServer) Stop() {
	_ = u.srv.Close()
}

// startUI serves the Temporal Web UI embedded in the ui-server module on addr, talking to
// the frontend at frontendAddr. It returns once the port is bound, so the UI accepts
// connections from then on.
//
// The UI needs no login and can terminate workflows, so it answers only requests whose
// Host names this machine (see allowHosts): a web page the developer opens elsewhere cannot
// reach it through DNS rebinding.
func startUI(_ context.Context, addr, frontendAddr, namespace string) (*uiServer, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("temporal UI address %s: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("temporal UI address %s: port is not a number", addr)
	}
	cfg := &uiconfig.Config{
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
	}
	handler, err := newUIHandler(cfg)
	if err != nil {
		return nil, fmt.Errorf("temporal UI: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("temporal UI: %w", err)
	}
	srv := &http.Server{
		Handler:           allowHosts(host, handler),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	// Serve returns http.ErrServerClosed after Stop; a failing listener ends the UI only,
	// and the frontend goes on serving.
	go func() { _ = srv.Serve(l) }()
	return &uiServer{srv: srv}, nil
}

// newUIHandler builds the UI server's routes and middleware the way ui-server's NewServer
// does (v2.55.0, server/server.go), on an Echo instance of our own: NewServer keeps its Echo
// to itself and binds it with a process exit on a listen error, which leaves no way to put
// allowHosts in front of it. Check this function against NewServer when upgrading ui-server.
func newUIHandler(cfg *uiconfig.Config) (http.Handler, error) {
	cfgProvider, err := uiconfig.NewConfigProviderWithRefresh(cfg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Use(middleware.Recover())
	e.Use(middleware.Gzip())
	e.Use(uicors.CORSMiddleware(uicors.CORSConfig{
		AllowHeaders: []string{
			echo.HeaderOrigin, echo.HeaderContentType, echo.HeaderAccept,
			echo.HeaderXCSRFToken, echo.HeaderAuthorization, uiauth.AuthorizationExtrasHeader,
			"Caller-Type",
		},
		AllowCredentials: true,
		ConfigProvider:   cfgProvider,
	}))
	e.Use(middleware.Secure())
	cookieSecure := !cfg.CORS.CookieInsecure
	e.Use(uicsrf.EnsureTokenCookie(cookieSecure))
	e.Use(middleware.CSRFWithConfig(uicsrf.MiddlewareConfig(cfgProvider, cookieSecure)))

	e.Pre(uiroute.PublicPath(cfg.PublicPath))
	uiroute.SetHealthRoute(e)
	apiMiddleware := []uiapi.Middleware{
		uiheaders.WithForwardHeaders([]string{uiauth.AuthorizationExtrasHeader, "Caller-Type"}),
	}
	if err := uiroute.SetAPIRoutes(e, cfgProvider, apiMiddleware); err != nil {
		return nil, fmt.Errorf("API routes: %w", err)
	}
	uiroute.SetAuthRoutes(e, cfgProvider)
	assets, err := ui.Assets()
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	assets, err = fs.Sub(assets, "local")
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	if err := uiroute.SetUIRoutes(e, cfg.PublicPath, assets, cfgProvider); err != nil {
		return nil, fmt.Errorf("UI routes: %w", err)
	}
	uiroute.SetRenderRoute(e, "/")
	return e, nil
}

// allowHosts answers 421 Misdirected Request to a request whose Host is not this machine:
// an IP address, localhost, or listenHost (the host the UI was told to listen on). A page
// that reaches the UI through DNS rebinding always comes with its own domain name in Host,
// so it is refused, and with it the CSRF cookie it would need to change anything. The port
// is not compared: a tunnel (ssh -L) may forward another port to this one.
func allowHosts(listenHost string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !localHost(r.Host, listenHost) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusMisdirectedRequest)
			_, _ = fmt.Fprintln(w, "This Temporal UI answers only requests for localhost or an IP address of this machine.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// localHost reports whether hostport, a request's Host, names an IP address, localhost or
// listenHost.
func localHost(hostport, listenHost string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return true
	}
	return host == "localhost" || (listenHost != "" && strings.EqualFold(host, strings.TrimSuffix(listenHost, ".")))
}

// connectHost is where a local client reaches a server bound on host: a wildcard address
// is not something to connect to.
func connectHost(host string) string {
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return host
}
