package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/surveyhooks/surveyhooks/store"
)

// Console links: how long the session a link starts may last. A link must be opened
// before its expiry, and its session ends then, so the platform mints one per visit.
const (
	DefaultConsoleLinkTTL = time.Hour
	MaxConsoleLinkTTL     = 12 * time.Hour
	minConsoleLinkTTL     = time.Minute
)

// ConsoleLinkPath is the console's path that opens a one-time link; the link's token
// follows it. The console serves it, the API only mints the token.
const ConsoleLinkPath = "/console/link/"

func (s *Server) registerConsoleRoutes(r *mux.Router) {
	const account = "/accounts/{accountId}"
	r.HandleFunc(account+"/console-links", s.platformOnly(s.handleConsoleLinkCreate)).Methods(http.MethodPost)
	r.HandleFunc(account+"/console-sessions", s.platformOnly(s.handleConsoleSessionsRevoke)).Methods(http.MethodDelete)
}

// consoleLinkResponse is a minted one-time link.
type consoleLinkResponse struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// HashToken is how console link and session tokens are stored: their SHA-256. A token
// holds 256 random bits, so a fast hash is enough.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// NewToken returns a random token for a console link, session or CSRF check.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewSessionKey makes the account key a console link's session acts with, in the format
// the API authenticates.
func NewSessionKey() store.ConsoleLinkKey {
	key, prefix, hash := newAccountKey()
	return store.ConsoleLinkKey{Key: key, Prefix: prefix, Hash: hash}
}

// handleConsoleLinkCreate mints a one-time link into the account's console:
// {expiresIn?} in seconds. The link's token is in this answer only.
func (s *Server) handleConsoleLinkCreate(w http.ResponseWriter, r *http.Request) {
	account, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ttl := DefaultConsoleLinkTTL
	if body != nil {
		obj, err := decodeObject(body)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		m := &members{obj: obj}
		seconds := member[int64](m, "expiresIn", "an integer (seconds)")
		m.rejectUnknown()
		if seconds.Null {
			m.fail("expiresIn", "must not be null")
		} else if seconds.usable() {
			d := time.Duration(seconds.Value) * time.Second
			if d < minConsoleLinkTTL || d > MaxConsoleLinkTTL {
				m.fail("expiresIn", fmt.Sprintf("must be from %d to %d seconds", int(minConsoleLinkTTL.Seconds()), int(MaxConsoleLinkTTL.Seconds())))
			}
			ttl = d
		}
		if len(m.errs) > 0 {
			s.writeError(w, r, invalidFields(m.errs))
			return
		}
	}
	token := NewToken()
	expires := time.Now().Add(ttl).UTC().Truncate(time.Second)
	entry := s.auditEntry(r, account, "console.link.created", "", map[string]any{"expiresAt": expires})
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) error {
		return st.CreateConsoleLink(r.Context(), account, HashToken(token), expires)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, consoleLinkResponse{URL: s.consoleBase(r) + ConsoleLinkPath + token, ExpiresAt: expires})
}

// consoleBase is the scheme and host the console is reached at: Config.ConsoleURL, or else
// the host this request came to (behind a proxy that terminates TLS, set ConsoleURL).
func (s *Server) consoleBase(r *http.Request) string {
	if s.cfg.ConsoleURL != "" {
		return strings.TrimSuffix(s.cfg.ConsoleURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// consoleRevokeResponse says how many live sessions a revocation ended.
type consoleRevokeResponse struct {
	Revoked int64 `json:"revoked"`
}

// handleConsoleSessionsRevoke signs every console session of the account out, revokes the
// keys they act with and the links not yet opened.
func (s *Server) handleConsoleSessionsRevoke(w http.ResponseWriter, r *http.Request) {
	account, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var n int64
	entry := s.auditEntry(r, account, "console.sessions.revoked", account, nil)
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		n, err = st.RevokeConsoleSessions(r.Context(), account)
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, consoleRevokeResponse{Revoked: n})
}
