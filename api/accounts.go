package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/surveyhooks/surveyhooks/store"
)

var (
	errAccountNotFound = Errorf(CodeNotFound, "Account not found.")
	errKeyNotFound     = Errorf(CodeNotFound, "Key not found.")
	errPlatformOnly    = Errorf(CodeForbidden, "This needs a platform key (SURVEYHOOKS_API_KEYS); account keys reach their own account's webhooks, events and audit log.")
)

// deleteMargin is the part of the request deadline an account delete leaves for its
// answer.
const deleteMargin = 2 * time.Second

func (s *Server) registerAccountRoutes(r *mux.Router) {
	const account = "/accounts/{accountId}"
	r.HandleFunc("/accounts", s.platformOnly(s.handleAccountList)).Methods(http.MethodGet)
	r.HandleFunc(account, s.platformOnly(s.handleAccountDelete)).Methods(http.MethodDelete)
	r.HandleFunc(account+"/keys", s.platformOnly(s.handleKeyCreate)).Methods(http.MethodPost)
	r.HandleFunc(account+"/keys", s.platformOnly(s.handleKeyList)).Methods(http.MethodGet)
	r.HandleFunc(account+"/keys/{keyId}", s.platformOnly(s.handleKeyRevoke)).Methods(http.MethodDelete)
	r.HandleFunc(account+"/audit", s.handleAuditList).Methods(http.MethodGet)
	r.HandleFunc(account+"/events", s.handleAccountEventList).Methods(http.MethodGet)
	r.HandleFunc(account+"/events/{eventId}", s.handleEventGet).Methods(http.MethodGet)
	r.HandleFunc(account+"/deliveries", s.handleAccountDeliveryList).Methods(http.MethodGet)
	r.HandleFunc(account+"/deliveries/retry", s.handleAccountRetry).Methods(http.MethodPost)
	r.HandleFunc(account+"/recoveries/{recoveryId}", s.handleAccountRecoveryGet).Methods(http.MethodGet)
	r.HandleFunc(account+"/recoveries/{recoveryId}", s.handleAccountRecoveryCancel).Methods(http.MethodDelete)
}

// platformOnly refuses account keys.
func (s *Server) platformOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !callerOf(r).platform() {
			s.writeError(w, r, errPlatformOnly)
			return
		}
		h(w, r)
	}
}

// pathAccount returns the validated {accountId} of the request when the caller may act in
// it. To an account key every other account answers 404, whether it exists or not.
func pathAccount(r *http.Request) (string, error) {
	id := mux.Vars(r)["accountId"]
	if !idPattern.MatchString(id) {
		return "", invalidFields([]FieldError{{Field: "accountId",
			Message: fmt.Sprintf("must be 1 to %d characters among A-Z a-z 0-9 . _ : -", maxSurveyIDLength)}})
	}
	if c := callerOf(r); !c.platform() && c.AccountID != id {
		return "", errAccountNotFound
	}
	return id, nil
}

// auditEntry starts the audit entry of a change the request makes; changes is encoded as
// JSON and must never hold a secret.
func (s *Server) auditEntry(r *http.Request, accountID, action, resource string, changes any) *store.AuditEntry {
	entry := &store.AuditEntry{AccountID: accountID, KeyPrefix: callerOf(r).KeyPrefix, Action: action, Resource: resource}
	if changes != nil {
		b, err := json.Marshal(changes)
		if err != nil {
			// Only maps and structs of plain values are passed in.
			panic(fmt.Sprintf("encode audit changes: %v", err))
		}
		entry.Changes = b
	}
	return entry
}

// recordAudit records an action that changed nothing in the database itself (a retry, a
// test): it has happened, so a failure to record it is logged, not answered.
func (s *Server) recordAudit(r *http.Request, accountID, action, resource string, changes any) {
	entry := s.auditEntry(r, accountID, action, resource, changes)
	if err := s.store.Audited(context.WithoutCancel(r.Context()), entry, func(*store.Store) error { return nil }); err != nil {
		s.logger.ErrorContext(r.Context(), "audit entry not recorded", "action", action, "resource", resource,
			"account_id", accountID, "key", entry.KeyPrefix, "err", err)
	}
}

// auditChanges lists what a webhook change sets. A URL is recorded without its query,
// fragment or user info, which may carry a receiver's token.
func auditChanges(u store.WebhookUpdate) map[string]any {
	changes := map[string]any{}
	if u.Name != nil {
		changes["name"] = *u.Name
	}
	if u.URL != nil {
		changes["url"] = redactURL(*u.URL)
	}
	if u.Events != nil {
		changes["events"] = *u.Events
	}
	if u.Description != nil {
		changes["description"] = *u.Description
	}
	if u.IsActive != nil {
		changes["isActive"] = *u.IsActive
	}
	if u.SurveyIDs != nil {
		changes["surveyIds"] = *u.SurveyIDs
	}
	return changes
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// accountListResponse is a page of account ids.
type accountListResponse struct {
	Data       []accountResponse `json:"data"`
	NextCursor *string           `json:"nextCursor"`
}

type accountResponse struct {
	ID string `json:"id"`
}

// handleAccountList lists the accounts that own webhooks or events, in id order.
func (s *Server) handleAccountList(w http.ResponseWriter, r *http.Request) {
	limit, after, err := parseStringPage(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ids, err := s.store.ListAccounts(r.Context(), after, limit+1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := accountListResponse{Data: []accountResponse{}}
	if len(ids) > limit {
		ids = ids[:limit]
		cursor := base64.RawURLEncoding.EncodeToString([]byte(ids[len(ids)-1]))
		resp.NextCursor = &cursor
	}
	for _, id := range ids {
		resp.Data = append(resp.Data, accountResponse{ID: id})
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}

// parseStringPage reads ?limit= and a ?cursor= holding the last string id of a page.
func parseStringPage(r *http.Request) (int, string, error) {
	limit, fields := parseLimit(r)
	var after string
	if q := r.URL.Query(); q.Has("cursor") {
		b, err := base64.RawURLEncoding.DecodeString(q.Get("cursor"))
		if err != nil || !idPattern.Match(b) {
			fields = append(fields, errBadCursor)
		}
		after = string(b)
	}
	if len(fields) > 0 {
		return 0, "", invalidFields(fields)
	}
	return limit, after, nil
}

// accountDeleteResponse says what a delete removed, and whether it is done.
type accountDeleteResponse struct {
	Status  string           `json:"status"`
	Deleted map[string]int64 `json:"deleted"`
}

// handleAccountDelete removes an account with everything it owns, in bounded batches.
// When the request deadline comes first it answers 202 with what it removed: the same
// request goes on from there.
func (s *Server) handleAccountDelete(w http.ResponseWriter, r *http.Request) {
	account, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-deleteMargin))
		defer cancel()
	}
	deleted, err := s.store.DeleteAccount(ctx, account)
	done := err == nil
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
		err = nil
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The record outlives the account: it says who removed it.
	s.recordAudit(r, account, "account.deleted", account, map[string]any{"deleted": deleted, "complete": done})
	if !done {
		s.writeJSON(w, r, http.StatusAccepted, accountDeleteResponse{Status: "in progress: send the same request again to go on", Deleted: deleted})
		return
	}
	s.writeJSON(w, r, http.StatusOK, accountDeleteResponse{Status: "deleted", Deleted: deleted})
}

// keyResponse is an account key as lists show it; Key only in the create answer.
type keyResponse struct {
	ID        uuid.UUID  `json:"id"`
	AccountID string     `json:"accountId"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Key       string     `json:"key,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt"`
	RevokedAt *time.Time `json:"revokedAt"`
}

func newKeyResponse(k store.APIKey) keyResponse {
	return keyResponse{ID: k.ID, AccountID: k.AccountID, Name: k.Name, Prefix: k.Prefix,
		CreatedAt: k.CreatedAt.UTC(), ExpiresAt: utcOrNil(k.ExpiresAt), RevokedAt: utcOrNil(k.RevokedAt)}
}

// handleKeyCreate makes an account key: {name, expiresAt?}. The key is in this answer
// only; the database keeps its hash.
func (s *Server) handleKeyCreate(w http.ResponseWriter, r *http.Request) {
	account, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.readObject(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name := member[string](m, "name", "a string")
	expires := member[string](m, "expiresAt", "a string (RFC 3339 time)")
	m.rejectUnknown()
	k := store.APIKey{AccountID: account}
	switch {
	case !name.Set || name.Null:
		m.fail("name", "is required")
	case name.Bad:
	default:
		k.Name = checkName(m, name.Value)
	}
	if expires.usable() {
		at, err := time.Parse(time.RFC3339, expires.Value)
		switch {
		case err != nil:
			m.fail("expiresAt", "must be an RFC 3339 time such as 2027-01-31T00:00:00Z")
		case !at.After(time.Now()):
			m.fail("expiresAt", "must be in the future")
		default:
			k.ExpiresAt = &at
		}
	}
	if len(m.errs) > 0 {
		s.writeError(w, r, invalidFields(m.errs))
		return
	}
	key, prefix, hash := newAccountKey()
	k.Prefix = prefix
	var created store.APIKey
	entry := s.auditEntry(r, account, "key.created", "", map[string]any{"name": k.Name, "prefix": prefix, "expiresAt": k.ExpiresAt})
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		created, err = st.CreateAPIKey(r.Context(), k, hash)
		entry.Resource = created.ID.String()
		return err
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := newKeyResponse(created)
	resp.Key = key
	w.Header().Set("Location", r.URL.Path+"/"+created.ID.String())
	s.writeJSON(w, r, http.StatusCreated, resp)
}

func (s *Server) handleKeyList(w http.ResponseWriter, r *http.Request) {
	account, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := parsePage(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writePage(s, w, r, page, func(ctx context.Context, p store.Page) ([]store.APIKey, error) {
		return s.store.ListAPIKeys(ctx, account, p)
	}, func(k store.APIKey) uuid.UUID { return k.ID }, newKeyResponse)
}

// handleKeyRevoke revokes a key for good: from this answer on it opens nothing.
func (s *Server) handleKeyRevoke(w http.ResponseWriter, r *http.Request) {
	account, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	raw := mux.Vars(r)["keyId"]
	id, err := uuid.Parse(raw)
	if err != nil || !strings.EqualFold(id.String(), raw) {
		s.writeError(w, r, errKeyNotFound)
		return
	}
	var revoked store.APIKey
	entry := s.auditEntry(r, account, "key.revoked", id.String(), nil)
	err = s.store.Audited(r.Context(), entry, func(st *store.Store) (err error) {
		revoked, err = st.RevokeAPIKey(r.Context(), account, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		err = errKeyNotFound
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, newKeyResponse(revoked))
}

// auditResponse is one audit log entry.
type auditResponse struct {
	ID        uuid.UUID       `json:"id"`
	AccountID string          `json:"accountId"`
	Key       string          `json:"key"`
	Action    string          `json:"action"`
	Resource  string          `json:"resource"`
	Changes   json.RawMessage `json:"changes"`
	At        time.Time       `json:"at"`
}

func newAuditResponse(e store.AuditEntry) auditResponse {
	return auditResponse{ID: e.ID, AccountID: e.AccountID, Key: e.KeyPrefix, Action: e.Action,
		Resource: e.Resource, Changes: e.Changes, At: e.At.UTC()}
}

// handleAuditList lists the account's audit log, newest first.
func (s *Server) handleAuditList(w http.ResponseWriter, r *http.Request) {
	account, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := parsePage(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writePage(s, w, r, page, func(ctx context.Context, p store.Page) ([]store.AuditEntry, error) {
		return s.store.ListAudit(ctx, account, p)
	}, func(e store.AuditEntry) uuid.UUID { return e.ID }, newAuditResponse)
}

// handleAccountDeliveryList lists the account's deliveries to all its webhooks, newest
// first, by ?status= and their event's ?type=, ?surveyId=, ?since= and ?until=.
func (s *Server) handleAccountDeliveryList(w http.ResponseWriter, r *http.Request) {
	account, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, filter, err := parseDeliveryFilter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writePage(s, w, r, page, func(ctx context.Context, p store.Page) ([]store.Delivery, error) {
		return s.store.ListAccountDeliveries(ctx, account, filter, p)
	}, deliveryID, newDeliveryResponse)
}

// parseEventFilter reads the filters on events, ?surveyId=, ?type=, ?since= and ?until=
// (RFC 3339), into f, and returns what is wrong with them.
func parseEventFilter(r *http.Request, f *store.EventFilter) []FieldError {
	q := r.URL.Query()
	var fields []FieldError
	f.SurveyID, f.EventType = q.Get("surveyId"), q.Get("type")
	if f.SurveyID != "" && !idPattern.MatchString(f.SurveyID) {
		fields = append(fields, FieldError{Field: "surveyId", Message: "is not a survey id"})
	}
	if len(f.EventType) > 200 {
		fields = append(fields, FieldError{Field: "type", Message: "is not an event type"})
	}
	for _, t := range []struct {
		name string
		to   *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				fields = append(fields, FieldError{Field: t.name, Message: "must be an RFC 3339 time such as 2026-12-01T00:00:00Z"})
			}
			*t.to = at
		}
	}
	return fields
}

// handleAccountEventList lists the account's events, newest first, by ?surveyId=, ?type=,
// ?since= and ?until= (RFC 3339).
func (s *Server) handleAccountEventList(w http.ResponseWriter, r *http.Request) {
	account, err := pathAccount(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	var f store.EventFilter
	fields := parseEventFilter(r, &f)
	limit, limitErrs := parseLimit(r)
	fields = append(fields, limitErrs...)
	f.Limit = limit + 1
	if q.Has("cursor") {
		b, err := base64.RawURLEncoding.DecodeString(q.Get("cursor"))
		if err != nil || len(b) != 8 || int64(binary.BigEndian.Uint64(b)) <= 0 {
			fields = append(fields, errBadCursor)
		} else {
			f.Before = int64(binary.BigEndian.Uint64(b))
		}
	}
	if len(fields) > 0 {
		s.writeError(w, r, invalidFields(fields))
		return
	}
	events, err := s.store.ListAccountEvents(r.Context(), account, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := listResponse[eventResponse]{Data: []eventResponse{}}
	if len(events) > limit {
		events = events[:limit]
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(events[len(events)-1].Seq))
		cursor := base64.RawURLEncoding.EncodeToString(b[:])
		resp.NextCursor = &cursor
	}
	for _, ev := range events {
		resp.Data = append(resp.Data, newEventResponse(ev, ev.DispatchedAt != nil))
	}
	s.writeJSON(w, r, http.StatusOK, resp)
}
