package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/surveyhooks/surveyhooks/api"
	"github.com/surveyhooks/surveyhooks/client"
	"github.com/surveyhooks/surveyhooks/store"
)

const (
	// sessionCookie holds the session's token; the database keeps its hash.
	sessionCookie = "surveyhooks_console"
	// signInCookie holds the sign-in form's CSRF token until a session exists
	// (double submit: a cross-site form cannot read it to send it back).
	signInCookie = "surveyhooks_console_signin"
	// csrfField and csrfHeader carry the session's CSRF token in forms and htmx requests.
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// call is one request of a signed-in session: the session, the account its path names and
// the API client acting with the session's key.
type call struct {
	session store.ConsoleSession
	account string
	api     *client.ClientWithResponses
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call)

// withSession lets a request through when its cookie names a live session and, when it
// may change something (any method but GET and HEAD), it carries the session's CSRF
// token. A request without a session is sent to sign in; one whose session is over is
// told so.
func (s *Server) withSession(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cookie, err := r.Cookie(sessionCookie)
		if err != nil || cookie.Value == "" {
			s.signedOut(w, r, "/console/signin")
			return
		}
		session, credential, err := s.cfg.Store.FindConsoleSession(r.Context(), api.HashToken(cookie.Value))
		if errors.Is(err, store.ErrNotFound) {
			// The cookie stays until it expires with its session, so that every later visit
			// says the session ended rather than asking a portal user for a platform key.
			s.signedOut(w, r, "/console/ended")
			return
		}
		if err != nil {
			s.fail(w, r, nil, err)
			return
		}
		c := &call{session: session, api: s.clientFor(credential)}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !validCSRF(r, session.CSRFToken) {
			s.renderStatus(w, r, c, http.StatusForbidden, "message", message{Title: "Request refused",
				Text: "This form was not sent from this console page (its security token is missing or wrong). Reload the page and try again."})
			return
		}
		h(w, r, c)
	}
}

// signedOut sends a request without a session to to: htmx requests (the live tail, say)
// are told to load it as a page.
func (s *Server) signedOut(w http.ResponseWriter, r *http.Request, to string) {
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// validCSRF compares the request's token, from the form or the htmx header, with want.
func validCSRF(r *http.Request, want string) bool {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// inAccount reads the account the path names (an id the API can take). Whether the session may see it is the API's
// decision: an account session's key gets 404 for every other account, which the console
// shows as not found.
func (s *Server) inAccount(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		c.account = r.PathValue("account")
		if !api.ValidID(c.account) {
			s.renderNotFound(w, r, c)
			return
		}
		h(w, r, c)
	}
}

// setSessionCookie starts the browser's session. It is HttpOnly, Secure over https, and
// SameSite=Lax, or SameSite=None and Partitioned when another site frames the console
// over https (browsers send nothing else in a third-party frame).
func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	c := &http.Cookie{Name: sessionCookie, Value: token, Path: Prefix, Expires: expires, HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteLaxMode}
	if c.Secure && s.framedElsewhere() {
		c.SameSite = http.SameSiteNoneMode
		c.Partitioned = true
	}
	http.SetCookie(w, c)
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteLaxMode})
}

// secure reports whether the console is served over https: directly, or behind a proxy that
// says so.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// handleHome sends a session to its start page, and anyone else to sign in.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	s.withSession(func(w http.ResponseWriter, r *http.Request, c *call) {
		if c.session.Operator() {
			http.Redirect(w, r, "/console/accounts", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, accountPath(c.session.AccountID, "webhooks"), http.StatusSeeOther)
	})(w, r)
}

// signInForm is the sign-in page's data.
type signInForm struct {
	CSRF  string
	Error string
}

func (s *Server) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	s.renderSignIn(w, r, http.StatusOK, "")
}

func (s *Server) renderSignIn(w http.ResponseWriter, r *http.Request, status int, problem string) {
	token := api.NewToken()
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: token, Path: Prefix, HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	s.renderStatus(w, r, nil, status, "signin", signInForm{CSRF: token, Error: problem})
}

// handleSignIn starts an operator's session with a platform key. The API itself says
// whether the key is one: GET /api/accounts answers platform keys only.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	cookie, err := r.Cookie(signInCookie)
	if err != nil || !validCSRF(r, cookie.Value) {
		s.renderStatus(w, r, nil, http.StatusForbidden, "message", message{Title: "Request refused",
			Text: "This sign-in form was not sent from this console page. Reload the page and try again."})
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	if key == "" {
		s.renderSignIn(w, r, http.StatusUnprocessableEntity, "Type the platform API key (one of SURVEYHOOKS_API_KEYS).")
		return
	}
	limit := client.Limit(1)
	_, err = result(s.clientFor(key).ListAccountsWithResponse(r.Context(), &client.ListAccountsParams{Limit: &limit}))
	switch statusOf(err) {
	case 0:
	case http.StatusUnauthorized:
		s.renderSignIn(w, r, http.StatusUnprocessableEntity, "This key is not valid.")
		return
	case http.StatusForbidden:
		s.renderSignIn(w, r, http.StatusUnprocessableEntity,
			"This is an account key. The console takes a platform key; accounts open it through a console link.")
		return
	}
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	token, csrf := api.NewToken(), api.NewToken()
	expires := time.Now().Add(OperatorSessionTTL)
	if _, err := s.cfg.Store.CreateConsoleSession(r.Context(), api.HashToken(token), csrf, key, expires); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	s.clearCookie(w, r, signInCookie)
	s.setSessionCookie(w, r, token, expires)
	http.Redirect(w, r, "/console/accounts", http.StatusSeeOther)
}

// handleSignOut ends the session and revokes its key.
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request, c *call) {
	if err := s.cfg.Store.RevokeConsoleSession(context.WithoutCancel(r.Context()), c.session.ID); err != nil {
		s.fail(w, r, c, err)
		return
	}
	s.clearCookie(w, r, sessionCookie)
	if c.session.Operator() {
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/console/ended", http.StatusSeeOther)
}

// handleEnded tells a browser whose session is over how to get back in.
func (s *Server) handleEnded(w http.ResponseWriter, r *http.Request) {
	s.renderStatus(w, r, nil, http.StatusOK, "message", message{Title: "Your session has ended",
		Text: "Open the webhooks console again from " + s.cfg.Brand.Name + " to start a new session. Operators sign in with a platform key.",
		Link: "/console/signin", LinkText: "Operator sign-in"})
}

// handleLink opens a one-time console link: a session for the link's account, with an
// account key minted for it and expiring with it. The token is spent at once, so a link
// forwarded or opened twice opens nothing.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	token, csrf := api.NewToken(), api.NewToken()
	session, err := s.cfg.Store.RedeemConsoleLink(r.Context(), api.HashToken(r.PathValue("token")), api.HashToken(token),
		csrf, api.NewSessionKey())
	if errors.Is(err, store.ErrNotFound) {
		s.renderStatus(w, r, nil, http.StatusGone, "message", message{Title: "This link cannot be used",
			Text: "Console links open once and expire. This one has been used already, has expired or was revoked. " +
				"Open the webhooks console again from " + s.cfg.Brand.Name + " to get a new link."})
		return
	}
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	s.setSessionCookie(w, r, token, session.ExpiresAt)
	// The link's page is not kept in history or sent as a referrer: its token is spent.
	http.Redirect(w, r, accountPath(session.AccountID, "webhooks"), http.StatusSeeOther)
}

// accountPath is the console path of an account's page.
func accountPath(account string, rest ...string) string {
	p := "/console/a/" + account
	for _, part := range rest {
		p += "/" + part
	}
	return p
}
