// Package console is surveyhooks' web console, served at /console/: operators sign in with
// a platform key and move between accounts; an account's people arrive through a one-time
// link the platform mints (POST /api/accounts/{accountId}/console-links) and see that
// account only. Pages are rendered on the server with html/template; the vendored htmx
// does the partial updates (live tail, secret reveal, test, recovery progress).
//
// The console is a client of the REST API: every read and change goes through the API's
// handler, in-process, with the session's key, so that validation, URL policy, tenant
// isolation, the audit log and rate limits are the API's and nothing else's. Its own state is
// its sessions and links (store.ConsoleSession).
package console

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/surveyhooks/surveyhooks/store"
)

// Prefix is where the console is served; cmd mounts Handler there.
const Prefix = "/console/"

// OperatorSessionTTL is how long an operator's session lasts: a working day, after which
// the platform key must be typed again.
const OperatorSessionTTL = 8 * time.Hour

//go:embed assets templates
var files embed.FS

// Config holds the console's settings; cmd fills it from the environment.
type Config struct {
	// API is the REST API's handler (api.Server.Handler): the console calls it in-process.
	API http.Handler
	// Store keeps the console's sessions and links.
	Store *store.Store
	// FrameAncestors are the origins that may embed the console in a frame
	// (SURVEYHOOKS_CONSOLE_FRAME_ANCESTORS), as CSP sources; none means no framing.
	FrameAncestors []string
	// Brand is the product name, logo and accent colour the console shows.
	Brand Brand
	// TemporalUIURL is the Temporal Web UI's base URL (http://host:port), for operators'
	// links to a delivery's workflow; "" shows no link.
	TemporalUIURL string
	// TemporalNamespace is the namespace of the workflows the links open.
	TemporalNamespace string
	// Logger records what the console cannot show (unexpected API answers); nil discards.
	Logger *slog.Logger
}

// Server serves the console.
type Server struct {
	cfg   Config
	pages map[string]*template.Template
	api   *apiTransport
	csp   string
	mux   *http.ServeMux
	log   *slog.Logger
}

// New returns the console over cfg, or an error when its brand is unusable.
func New(cfg Config) (*Server, error) {
	if err := cfg.Brand.check(); err != nil {
		return nil, err
	}
	if cfg.Brand.Name == "" {
		cfg.Brand.Name = DefaultProductName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, pages: pages, api: &apiTransport{handler: cfg.API}, csp: contentSecurityPolicy(cfg.FrameAncestors),
		mux: http.NewServeMux(), log: cfg.Logger}
	s.routes()
	return s, nil
}

// Handler returns the console's handler, to be mounted at Prefix.
func (s *Server) Handler() http.Handler {
	return s.secureHeaders(s.mux)
}

// contentSecurityPolicy allows the console's own origin only: no inline script or style,
// no eval, images from itself or data: (the logo), frames by the configured ancestors.
func contentSecurityPolicy(ancestors []string) string {
	frame := "'none'"
	if len(ancestors) > 0 {
		frame = strings.Join(ancestors, " ")
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors " + frame
}

// secureHeaders sets the CSP and the other headers every console answer carries.
func (s *Server) secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", s.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if len(s.cfg.FrameAncestors) == 0 {
			h.Set("X-Frame-Options", "DENY")
		}
		next.ServeHTTP(w, r)
	})
}

// framedElsewhere reports whether another site may embed the console: its cookies must
// then be SameSite=None (and Secure, Partitioned) for the browser to send them in the frame.
func (s *Server) framedElsewhere() bool {
	for _, a := range s.cfg.FrameAncestors {
		if a != "'self'" && a != "'none'" {
			return true
		}
	}
	return false
}

func (s *Server) routes() {
	m := s.mux
	assets, _ := fs.Sub(files, "assets")
	m.Handle("GET /console/assets/", http.StripPrefix("/console/assets/", cacheAssets(http.FileServerFS(assets))))
	m.HandleFunc("GET /console/brand/logo", s.handleLogo)
	m.HandleFunc("GET /console/brand.css", s.handleBrandCSS)

	m.HandleFunc("GET /console/{$}", s.handleHome)
	m.HandleFunc("GET /console/signin", s.handleSignInForm)
	m.HandleFunc("POST /console/signin", s.handleSignIn)
	m.HandleFunc("POST /console/signout", s.withSession(s.handleSignOut))
	m.HandleFunc("GET /console/ended", s.handleEnded)
	m.HandleFunc("GET /console/link/{token}", s.handleLink)
	m.HandleFunc("GET /console/accounts", s.withSession(s.handleAccounts))

	const acc = "/console/a/{account}"
	const hook = acc + "/webhooks/{id}"
	page := func(pattern string, h handlerFunc) { m.HandleFunc(pattern, s.withSession(s.inAccount(h))) }
	page("GET "+acc+"/{$}", s.handleAccountHome)
	page("GET "+acc+"/webhooks", s.handleWebhooks)
	page("GET "+acc+"/webhooks/new", s.handleWebhookNew)
	page("POST "+acc+"/webhooks", s.handleWebhookCreate)
	page("GET "+hook, s.handleWebhook)
	page("GET "+hook+"/edit", s.handleWebhookEdit)
	page("POST "+hook, s.handleWebhookUpdate)
	page("POST "+hook+"/active", s.handleWebhookActive)
	page("GET "+hook+"/delete", s.handleWebhookDeleteConfirm)
	page("POST "+hook+"/delete", s.handleWebhookDelete)
	page("POST "+hook+"/secret", s.handleSecretReveal)
	page("POST "+hook+"/secret/rotate", s.handleSecretRotate)
	page("POST "+hook+"/test", s.handleWebhookTest)
	page("GET "+hook+"/recover", s.handleRecoverForm)
	page("POST "+hook+"/recover", s.handleRecover)
	page("GET "+hook+"/recoveries/{recovery}", s.handleRecovery)
	page("GET "+hook+"/deliveries/{delivery}", s.handleDelivery)
	page("POST "+hook+"/deliveries/{delivery}/retry", s.handleRetry)
	page("GET "+acc+"/deliveries", s.handleDeliveries)
	page("GET "+acc+"/event-types", s.handleCatalog)
	m.HandleFunc("/console/", s.handleNotFound)
}

// cacheAssets lets browsers keep the embedded assets for an hour: they change only with
// the binary.
func cacheAssets(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// parsePages parses each page template with the layout and the shared partials.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout").Funcs(templateFuncs).ParseFS(files, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, fmt.Errorf("parse console layout: %w", err)
	}
	names, err := fs.Glob(files, "templates/page_*.html")
	if err != nil {
		return nil, fmt.Errorf("list console pages: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		t, err := template.Must(base.Clone()).ParseFS(files, name)
		if err != nil {
			return nil, fmt.Errorf("parse console page %s: %w", name, err)
		}
		pages[strings.TrimSuffix(strings.TrimPrefix(name, "templates/page_"), ".html")] = t
	}
	return pages, nil
}
