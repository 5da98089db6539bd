package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/surveyhooks/surveyhooks/signature"
	"github.com/surveyhooks/surveyhooks/store"
)

// List limits.
const (
	defaultListLimit = 50
	maxListLimit     = 200
)

var errWebhookNotFound = Errorf(CodeNotFound, "Webhook not found.")

// An ed25519 webhook has no shared secret, and an HMAC webhook no public key: asking for the
// one it lacks is a conflict with how the webhook signs, which never changes.
var (
	errNoSecret = Errorf(CodeConflict, "This webhook signs with ed25519 and has no shared secret: "+
		"receivers verify its requests with its public key (GET .../public-key).")
	errNoPublicKey = Errorf(CodeConflict, "This webhook signs with a shared secret (HMAC) and has no public key: "+
		"receivers verify its requests with its secret (GET .../secret).")
)

// webhookBases are the three places webhooks live, each with the same routes below it:
// a survey's webhooks in the caller's account (seed 001's paths: the default account for a
// platform key), a survey's webhooks in a named account, and a named account's
// account-wide webhooks.
var webhookBases = []string{
	"/surveys/{surveyId}/webhooks",
	"/accounts/{accountId}/surveys/{surveyId}/webhooks",
	"/accounts/{accountId}/webhooks",
}

// registerWebhookRoutes adds the webhook management and delivery routes to the
// authenticated /api router, under each of webhookBases.
func (s *Server) registerWebhookRoutes(r *mux.Router) {
	for _, base := range webhookBases {
		hook := base + "/{id}"
		r.HandleFunc(base, s.handleWebhookCreate).Methods(http.MethodPost)
		r.HandleFunc(base, s.handleWebhookList).Methods(http.MethodGet)
		r.HandleFunc(hook, s.handleWebhookGet).Methods(http.MethodGet)
		r.HandleFunc(hook, s.handleWebhookUpdate).Methods(http.MethodPatch)
		r.HandleFunc(hook, s.handleWebhookDelete).Methods(http.MethodDelete)
		r.HandleFunc(hook+"/secret", s.handleWebhookSecretGet).Methods(http.MethodGet)
		r.HandleFunc(hook+"/secret/rotate", s.handleWebhookSecretRotate).Methods(http.MethodPost)
		r.HandleFunc(hook+"/public-key", s.handleWebhookPublicKey).Methods(http.MethodGet)
		r.HandleFunc(hook+"/stats", s.handleWebhookStats).Methods(http.MethodGet)
		r.HandleFunc(hook+"/recover", s.handleWebhookRecover).Methods(http.MethodPost)
		r.HandleFunc(hook+"/recoveries/{recoveryId}", s.handleRecoveryGet).Methods(http.MethodGet)
		r.HandleFunc(hook+"/recoveries/{recoveryId}", s.handleRecoveryCancel).Methods(http.MethodDelete)
		r.HandleFunc(hook+"/test", s.handleWebhookTest).Methods(http.MethodPost).Name(testRouteName)
		r.HandleFunc(hook+"/deliveries", s.handleDeliveryList).Methods(http.MethodGet)
		r.HandleFunc(hook+"/deliveries/{deliveryId}", s.handleDeliveryGet).Methods(http.MethodGet)
		r.HandleFunc(hook+"/deliveries/{deliveryId}/retry", s.handleDeliveryRetry).Methods(http.MethodPost)
	}
}

// webhookResponse is a webhook as the API shows it. Secret (of an HMAC webhook) and
// PublicKey (of an ed25519 one) are only set in the create answer: lists and gets never show
// them. An account-wide webhook has no surveyId, and surveyIds (null: every survey of the
// account); a survey's webhook has no surveyIds.
type webhookResponse struct {
	ID          uuid.UUID `json:"id"`
	AccountID   string    `json:"accountId"`
	SurveyID    string    `json:"surveyId,omitempty"`
	SurveyIDs   *[]string `json:"surveyIds,omitempty"`
	Name        string    `json:"name"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	IsActive    bool      `json:"isActive"`
	// Disabled says when and why surveyhooks turned the webhook off; nil otherwise.
	Disabled *disabledResponse `json:"disabled"`
	// RateLimit bounds the requests sent to the webhook; nil for none.
	RateLimit *rateLimitResponse `json:"rateLimit"`
	Signing   string             `json:"signing"`
	Secret    string             `json:"secret,omitempty"`
	PublicKey string             `json:"publicKey,omitempty"`
	CreatedAt time.Time          `json:"createdAt"`
	UpdatedAt time.Time          `json:"updatedAt"`
	// Health is shown by GET and lists only.
	Health *healthResponse `json:"health,omitempty"`
}

func newWebhookResponse(w store.Webhook) webhookResponse {
	var surveyIDs *[]string
	if w.SurveyID == "" {
		ids := []string(w.SurveyIDs)
		surveyIDs = &ids
	}
	return webhookResponse{
		ID:          w.ID,
		AccountID:   w.AccountID,
		SurveyID:    w.SurveyID,
		SurveyIDs:   surveyIDs,
		Name:        w.Name,
		URL:         w.URL,
		Events:      w.Events,
		Description: w.Description,
		IsActive:    w.IsActive,
		Disabled:    newDisabledResponse(w),
		RateLimit:   newRateLimitResponse(w),
		Signing:     w.Signing,
		CreatedAt:   w.CreatedAt.UTC(),
		UpdatedAt:   w.UpdatedAt.UTC(),
	}
}

// rateLimitResponse is a webhook's rate limit.
type rateLimitResponse struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst"`
}

func newRateLimitResponse(w store.Webhook) *rateLimitResponse {
	limit := w.Limit()
	if limit == nil {
		return nil
	}
	return &rateLimitResponse{PerSecond: limit.PerSecond, Burst: limit.Burst}
}

// disabledResponse is why surveyhooks turned a webhook off (delivery.DisablePolicy).
type disabledResponse struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

func newDisabledResponse(w store.Webhook) *disabledResponse {
	if w.DisabledAt == nil {
		return nil
	}
	return &disabledResponse{At: w.DisabledAt.UTC(), Reason: w.DisabledReason}
}

// secretResponse shows a webhook's current secret and, during a rotation overlap, until
// when the previous one still signs requests.
type secretResponse struct {
	Secret                  string     `json:"secret"`
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt,omitempty"`
}

func newSecretResponse(w store.Webhook, now time.Time) secretResponse {
	resp := secretResponse{Secret: w.Secret}
	if w.PreviousSecretLive(now) {
		expires := w.PreviousSecretExpiresAt.UTC()
		resp.PreviousSecretExpiresAt = &expires
	}
	return resp
}

// publicKeyResponse shows an ed25519 webhook's public key and, during a rotation overlap,
// the previous one, which still signs until previousKeyExpiresAt.
type publicKeyResponse struct {
	PublicKey            string     `json:"publicKey"`
	PreviousPublicKey    string     `json:"previousPublicKey,omitempty"`
	PreviousKeyExpiresAt *time.Time `json:"previousKeyExpiresAt,omitempty"`
}

func newPublicKeyResponse(w store.Webhook, now time.Time) (publicKeyResponse, error) {
	var resp publicKeyResponse
	var err error
	if resp.PublicKey, err = signature.PublicKey(w.SigningKey); err != nil {
		return publicKeyResponse{}, fmt.Errorf("public key of webhook %s: %w", w.ID, err)
	}
	if w.PreviousSecretLive(now) && w.PreviousSigningKey != nil {
		if resp.PreviousPublicKey, err = signature.PublicKey(*w.PreviousSigningKey); err != nil {
			return publicKeyResponse{}, fmt.Errorf("previous public key of webhook %s: %w", w.ID, err)
		}
		expires := w.PreviousSecretExpiresAt.UTC()
		resp.PreviousKeyExpiresAt = &expires
	}
	return resp, nil
}

// checkSigning reads a create request's signing member: "hmac" (the default) or "ed25519".
func checkSigning(m *members, in optional[string]) string {
	if !notNull(m, "signing", in) {
		return store.SigningHMAC
	}
	switch in.Value {
	case store.SigningHMAC, store.SigningEd25519:
		return in.Value
	default:
		m.fail("signing", `must be "hmac" or "ed25519"`)
		return store.SigningHMAC
	}
}

// listResponse is one page of a list.
type listResponse[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"nextCursor"`
}

// pathScope returns the validated scope the request's path names: its account ({accountId},
// or the caller's own when the path names none) and its survey ({surveyId}, or "" for the
// account-wide webhooks).
func pathScope(r *http.Request) (store.Scope, error) {
	vars := mux.Vars(r)
	scope := store.Scope{AccountID: callerOf(r).defaultAccount()}
	if _, ok := vars["accountId"]; ok {
		account, err := pathAccount(r)
		if err != nil {
			return store.Scope{}, err
		}
		scope.AccountID = account
	}
	if surveyID, ok := vars["surveyId"]; ok {
		if err := checkSurveyID(surveyID); err != nil {
			return store.Scope{}, err
		}
		scope.SurveyID = surveyID
	}
	return scope, nil
}

// pathWebhook returns the scope and {id} of the webhook the request's path names. An id
// that is not a UUID cannot name a webhook: it is a 404, like any other unknown id. The
// account's path (its scope names no survey) reaches every webhook of the account, its
// surveys' too: the scope returned is then the webhook's own, so that every rule that
// depends on the scope (which members an update takes) is the webhook's.
func (s *Server) pathWebhook(r *http.Request) (store.Scope, uuid.UUID, error) {
	scope, err := pathScope(r)
	if err != nil {
		return store.Scope{}, uuid.Nil, err
	}
	raw := mux.Vars(r)["id"]
	id, err := uuid.Parse(raw)
	// uuid.Parse also takes braces, urn: and hex without dashes; one spelling per webhook.
	if err != nil || !strings.EqualFold(id.String(), raw) {
		return store.Scope{}, uuid.Nil, errWebhookNotFound
	}
	if scope.SurveyID != "" {
		return scope, id, nil
	}
	scope, err = s.store.WebhookScope(r.Context(), scope.AccountID, id)
	if err != nil {
		return store.Scope{}, uuid.Nil, webhookError(err)
	}
	return scope, id, nil
}

// webhookError names the webhook in a not-found error from the store.
func webhookError(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errWebhookNotFound
	}
	return err
}

// readObject reads a required JSON object body.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request) (*members, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if body == nil {
		return nil, Errorf(CodeInvalidRequest, "The request body must be a JSON object.")
	}
	obj, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	return &members{obj: obj}, nil
}

func (s *Server) handleWebhookCreate(w http.ResponseWriter, r *http.Request) {
	scope, err := pathScope(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.readObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in := decodeWebhookInput(m)
	checkScopeMembers(m, in, scope)
	change, err := s.checkWebhookChange(r.Context(), m, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, f := range []struct {
		name string
		sent bool
	}{{"name", in.Name.Set}, {"url", in.URL.Set}, {"events", in.Events.Set}} {
		if !f.sent {
			m.fail(f.name, "is required")
		}
	}
	hook := store.Webhook{AccountID: scope.AccountID, SurveyID: scope.SurveyID, IsActive: true,
		Signing: checkSigning(m, in.Signing)}
	change.Apply(&hook)
	if in.Secret.usable() {
		if hook.Signing == store.SigningEd25519 {
			m.fail("secret", "is not taken by an ed25519 webhook: surveyhooks makes its key pair, and receivers verify with its public key")
		} else {
			hook.Secret = in.Secret.Value
			checkSecret(m, "secret", hook.Secret)
		}
	}
	if len(m.errs) > 0 {
		s.writeError(w, r, invalidFields(m.errs))
		return
	}
	switch {
	case hook.Signing == store.SigningEd25519:
		if hook.SigningKey, err = signature.GenerateSigningKey(); err != nil {
			s.writeError(w, r, fmt.Errorf("generate signing key: %w", err))
			return
		}
	case hook.Secret == "":
		if hook.Secret, err = signature.GenerateSecret(); err != nil {
			s.writeError(w, r, fmt.Errorf("generate secret: %w", err))
			return
		}
	}

	var created store.Webhook
	changes := auditChanges(change)
	changes["signing"] = hook.Signing
	entry := s.auditEntry(r, scope.AccountID, "webhook.created", "", changes)
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		created, err = st.CreateWebhook(r.Context(), hook)
		entry.Resource = created.ID.String()
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := newWebhookResponse(created)
	resp.Secret = created.Secret
	if created.Signing == store.SigningEd25519 {
		keys, err := newPublicKeyResponse(created, time.Now())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp.PublicKey = keys.PublicKey
	}
	w.Header().Set("Location", r.URL.Path+"/"+created.ID.String())
	s.writeJSON(w, r, http.StatusCreated, resp)
}

// checkWebhookChange checks the webhook's members of a create or update request, each by
// the one rule of its field, and returns the change they ask for: a member left out
// changes nothing, null clears the description and is refused elsewhere.
func (s *Server) checkWebhookChange(ctx context.Context, m *members, in webhookInput) (store.WebhookUpdate, error) {
	var u store.WebhookUpdate
	if notNull(m, "name", in.Name) {
		name := checkName(m, in.Name.Value)
		u.Name = &name
	}
	if notNull(m, "url", in.URL) {
		checkURL(m, s.cfg.URLPolicy, in.URL.Value)
		u.URL = &in.URL.Value
	}
	if notNull(m, "events", in.Events) {
		types, err := s.types.Set(ctx)
		if err != nil {
			return store.WebhookUpdate{}, err
		}
		checkEvents(m, types, in.Events.Value)
		u.Events = &in.Events.Value
	}
	if in.SurveyIDs.Null {
		var every []string
		u.SurveyIDs = &every
	} else if in.SurveyIDs.usable() {
		checkSurveyIDs(m, in.SurveyIDs.Value)
		u.SurveyIDs = &in.SurveyIDs.Value
	}
	if in.Description.Null {
		empty := ""
		u.Description = &empty
	} else if in.Description.usable() {
		checkDescription(m, in.Description.Value)
		u.Description = &in.Description.Value
	}
	if notNull(m, "isActive", in.IsActive) {
		u.IsActive = &in.IsActive.Value
	}
	if in.RateLimit.Null {
		u.RateLimit = &store.RateLimit{}
	} else if in.RateLimit.usable() {
		limit := checkRateLimit(m, in.RateLimit.Value)
		u.RateLimit = &limit
	}
	return u, nil
}

func (s *Server) handleWebhookList(w http.ResponseWriter, r *http.Request) {
	scope, err := pathScope(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := parsePage(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var hooks []store.Webhook
	if scope.SurveyID != "" {
		hooks, err = s.store.ListWebhooks(r.Context(), scope, oneMore(page))
	} else {
		// The account's list is every webhook of the account, as its path reaches each.
		hooks, err = s.store.ListAccountWebhooks(r.Context(), scope.AccountID, oneMore(page))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	shown, err := s.withHealth(r.Context(), hooks)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, listPage(shown, page.Limit, func(h webhookResponse) uuid.UUID { return h.ID },
		func(h webhookResponse) webhookResponse { return h }))
}

// writePage answers one page of a list: list reads the rows of the page asked for
// (oneMore), and they become the answer's items with the next page's cursor.
func writePage[T, R any](s *Server, w http.ResponseWriter, r *http.Request, page store.Page,
	list func(context.Context, store.Page) ([]T, error), id func(T) uuid.UUID, view func(T) R) {
	rows, err := list(r.Context(), oneMore(page))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, listPage(rows, page.Limit, id, view))
}

// oneMore asks for one row more than the page holds: its presence tells whether another
// page follows.
func oneMore(p store.Page) store.Page {
	return store.Page{After: p.After, Limit: p.Limit + 1}
}

// listPage turns rows fetched with oneMore into a page of at most limit items, with the
// cursor of the next page when there is one.
func listPage[T, R any](rows []T, limit int, id func(T) uuid.UUID, view func(T) R) listResponse[R] {
	resp := listResponse[R]{Data: make([]R, 0, min(len(rows), limit))}
	if len(rows) > limit {
		rows = rows[:limit]
		cursor := encodeCursor(id(rows[len(rows)-1]))
		resp.NextCursor = &cursor
	}
	for _, row := range rows {
		resp.Data = append(resp.Data, view(row))
	}
	return resp
}

// parsePage reads ?limit= (1..200, default 50) and ?cursor= (from a previous page).
func parsePage(r *http.Request) (store.Page, error) {
	limit, fields := parseLimit(r)
	page := store.Page{Limit: limit}
	if q := r.URL.Query(); q.Has("cursor") {
		id, err := decodeCursor(q.Get("cursor"))
		if err != nil {
			fields = append(fields, errBadCursor)
		}
		page.After = &id
	}
	if len(fields) > 0 {
		return store.Page{}, invalidFields(fields)
	}
	return page, nil
}

var errBadCursor = FieldError{Field: "cursor", Message: "is not a cursor from a previous page"}

// parseLimit reads ?limit= (1..200, default 50), for every list.
func parseLimit(r *http.Request) (int, []FieldError) {
	q := r.URL.Query()
	if !q.Has("limit") {
		return defaultListLimit, nil
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 || n > maxListLimit {
		return 0, []FieldError{{Field: "limit", Message: fmt.Sprintf("must be an integer from 1 to %d", maxListLimit)}}
	}
	return n, nil
}

// encodeCursor makes an opaque cursor of the last id of a page.
func encodeCursor(id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func decodeCursor(cursor string) (uuid.UUID, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return uuid.Nil, fmt.Errorf("decode cursor: %w", err)
	}
	id, err := uuid.FromBytes(b)
	if err != nil {
		return uuid.Nil, fmt.Errorf("decode cursor: %w", err)
	}
	return id, nil
}

func (s *Server) handleWebhookGet(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	hook, err := s.store.GetWebhook(r.Context(), scope, id)
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	shown, err := s.withHealth(r.Context(), []store.Webhook{hook})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, shown[0])
}

func (s *Server) handleWebhookUpdate(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.readObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in := decodeWebhookInput(m)
	checkScopeMembers(m, in, scope)

	u, err := s.checkWebhookChange(r.Context(), m, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Secret.Set {
		// Changing the secret in place would break every receiver at once; rotation
		// keeps the old one valid for an overlap.
		m.fail("secret", "cannot be changed by PATCH: use POST .../secret/rotate")
	}
	if in.Signing.Set {
		// Receivers hold a secret or a public key: switching would break every one at once.
		m.fail("signing", "cannot be changed: create a new webhook that signs the other way and move receivers to it")
	}
	if len(m.errs) > 0 {
		s.writeError(w, r, invalidFields(m.errs))
		return
	}

	var hook store.Webhook
	entry := s.auditEntry(r, scope.AccountID, "webhook.updated", id.String(), auditChanges(u))
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		hook, err = st.UpdateWebhook(r.Context(), scope, id, u)
		return err
	})
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, newWebhookResponse(hook))
}

// notNull reports whether a member that may be omitted but not cleared has a usable value,
// reporting an explicit null.
func notNull[T any](m *members, field string, o optional[T]) bool {
	if o.Null {
		m.fail(field, "must not be null")
		return false
	}
	return o.usable()
}

// handleWebhookDelete deletes a webhook with its delivery history: the schema cascades
// the delete to its deliveries, their attempts and its test events, and the delivery
// engine, finding the webhook gone, stops sending to it. Keeping the history of a webhook
// nobody can reach through the API any more would only keep payloads (personal data from
// survey answers) around with no way to read or remove them.
func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	entry := s.auditEntry(r, scope.AccountID, "webhook.deleted", id.String(), nil)
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) error {
		return st.DeleteWebhook(r.Context(), scope, id)
	})
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleWebhookSecretGet(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Showing a secret is recorded like a change: who saw it matters after a leak.
	var hook store.Webhook
	entry := s.auditEntry(r, scope.AccountID, "webhook.secret_shown", id.String(), nil)
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		hook, err = st.GetWebhook(r.Context(), scope, id)
		if err == nil && hook.Signing == store.SigningEd25519 {
			return errNoSecret // nothing shown, nothing recorded
		}
		return err
	})
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, newSecretResponse(hook, time.Now()))
}

// handleWebhookPublicKey shows an ed25519 webhook's public key (and the previous one during
// a rotation overlap), for receivers to verify with. It is not secret, so showing it is not
// audited.
func (s *Server) handleWebhookPublicKey(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	hook, err := s.store.GetWebhook(r.Context(), scope, id)
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	if hook.Signing != store.SigningEd25519 {
		s.writeError(w, r, errNoPublicKey)
		return
	}
	resp, err := newPublicKeyResponse(hook, time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}

// handleWebhookSecretRotate replaces the secret of an HMAC webhook, or the key pair of an
// ed25519 one. The body is optional: {"secret": own secret (HMAC only), "overlapSeconds": how
// long the old secret or key keeps signing}.
func (s *Server) handleWebhookSecretRotate(w http.ResponseWriter, r *http.Request) {
	scope, id, err := s.pathWebhook(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// How the webhook signs never changes, so reading it before the rotation is safe.
	current, err := s.store.GetWebhook(r.Context(), scope, id)
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	ed25519 := current.Signing == store.SigningEd25519
	var secret string
	overlap := s.cfg.SecretOverlap
	if body != nil {
		obj, err := decodeObject(body)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		m := &members{obj: obj}
		in := member[string](m, "secret", "a string")
		seconds := member[int64](m, "overlapSeconds", "an integer")
		m.rejectUnknown()
		if in.usable() && ed25519 {
			m.fail("secret", "is not taken by an ed25519 webhook: a rotation makes a new key pair")
		} else if in.usable() {
			secret = in.Value
			checkSecret(m, "secret", secret)
		}
		if seconds.Null {
			m.fail("overlapSeconds", "must not be null")
		} else if seconds.usable() {
			if seconds.Value < 0 || seconds.Value > maxOverlapSeconds {
				m.fail("overlapSeconds", fmt.Sprintf("must be from 0 to %d", maxOverlapSeconds))
			} else {
				overlap = time.Duration(seconds.Value) * time.Second
			}
		}
		if len(m.errs) > 0 {
			s.writeError(w, r, invalidFields(m.errs))
			return
		}
	}
	if ed25519 {
		s.rotateSigningKey(w, r, scope, id, overlap)
		return
	}
	own := secret != ""
	if secret == "" {
		if secret, err = signature.GenerateSecret(); err != nil {
			s.writeError(w, r, fmt.Errorf("generate secret: %w", err))
			return
		}
	}
	var hook store.Webhook
	entry := s.auditEntry(r, scope.AccountID, "webhook.secret_rotated", id.String(),
		map[string]any{"overlapSeconds": int64(overlap / time.Second), "ownSecret": own})
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		hook, err = st.RotateWebhookSecret(r.Context(), scope, id, secret, overlap)
		return err
	})
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	s.writeJSON(w, r, http.StatusOK, newSecretResponse(hook, time.Now()))
}

// rotateSigningKey gives an ed25519 webhook a new key pair; the old key keeps signing for
// overlap. The answer shows the public keys, as GET .../public-key does.
func (s *Server) rotateSigningKey(w http.ResponseWriter, r *http.Request, scope store.Scope, id uuid.UUID, overlap time.Duration) {
	key, err := signature.GenerateSigningKey()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("generate signing key: %w", err))
		return
	}
	var hook store.Webhook
	entry := s.auditEntry(r, scope.AccountID, "webhook.secret_rotated", id.String(),
		map[string]any{"overlapSeconds": int64(overlap / time.Second), "signing": store.SigningEd25519})
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		hook, err = st.RotateWebhookSigningKey(r.Context(), scope, id, key, overlap)
		return err
	})
	if err != nil {
		s.writeError(w, r, webhookError(err))
		return
	}
	resp, err := newPublicKeyResponse(hook, time.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}
