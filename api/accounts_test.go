package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/netguard"
)

// tenant is one account's fixtures: an account-wide webhook, a webhook of survey s1, a
// delivery to each, an event, and account keys (one to call with, one spare to revoke).
type tenant struct {
	account            string
	wide, scoped       string
	wideDel, scopedDel string
	event              string
	key, spareKey      string
	// marks are the strings of the tenant that no other account's answer may hold: ids,
	// names, URLs, key prefixes.
	marks []string
}

// newTenant creates an account's fixtures through the API with the platform key; the
// names and URLs carry tag, so that every fixture has its own.
func (e *engine) newTenant(t *testing.T, account, tag string, rc *receiver) tenant {
	t.Helper()
	tn := tenant{account: account}
	create := func(path, kind string) string {
		name := fmt.Sprintf("%s-%s-%s-hook", account, tag, kind)
		url := fmt.Sprintf("%s/%s-%s-%s-path", rc.URL, account, tag, kind)
		status, out := e.do(t, http.MethodPost, path, map[string]any{"name": name, "url": url, "events": []string{"*"}})
		require.Equal(t, http.StatusCreated, status, out)
		id := out["id"].(string)
		tn.marks = append(tn.marks, id, name, url[len(rc.URL):])
		return id
	}
	tn.wide = create("/api/accounts/"+account+"/webhooks", "wide")
	tn.scoped = create("/api/accounts/"+account+"/surveys/s1/webhooks", "scoped")
	tn.event = fmt.Sprintf("%s-%s-event", account, tag)
	status, out := e.do(t, http.MethodPost, "/api/events", map[string]any{"account_id": account, "event_id": tn.event,
		"event_type": "survey.response.completed", "survey_id": "s1", "data": map[string]any{}})
	require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status, out)
	tn.marks = append(tn.marks, tn.event)
	// The event also reaches the account-wide webhooks of the account's earlier fixtures.
	require.Eventually(t, func() bool {
		_, out := e.do(t, http.MethodGet, "/api/events/"+tn.event, nil)
		for _, d := range out["deliveries"].([]any) {
			d := d.(map[string]any)
			switch d["webhookId"] {
			case tn.wide:
				tn.wideDel = d["id"].(string)
			case tn.scoped:
				tn.scopedDel = d["id"].(string)
			}
		}
		return tn.wideDel != "" && tn.scopedDel != ""
	}, 10*time.Second, 20*time.Millisecond)
	tn.marks = append(tn.marks, tn.wideDel, tn.scopedDel)
	newKey := func(name string) (string, string) {
		status, out := e.do(t, http.MethodPost, "/api/accounts/"+account+"/keys", map[string]any{"name": name})
		require.Equal(t, http.StatusCreated, status, out)
		tn.marks = append(tn.marks, out["id"].(string), out["prefix"].(string))
		return out["key"].(string), out["id"].(string)
	}
	tn.key, _ = newKey("caller")
	_, tn.spareKey = newKey("spare")
	return tn
}

// leaks returns the marks of tn found in body.
func (tn tenant) leaks(body []byte) []string {
	var found []string
	for _, m := range tn.marks {
		if strings.Contains(string(body), m) {
			found = append(found, m)
		}
	}
	return found
}

// isolationRoute is one route of the table: its path with placeholders, and what
// success looks like.
type isolationRoute struct {
	method, path string
	body         any
	// ok is the status of success.
	ok int
	// platformOnly routes refuse account keys (403).
	platformOnly bool
	// collection routes name no resource of the tenant: in an account with nothing they
	// still succeed.
	collection bool
	// fresh routes destroy what they act on: each call gets new fixtures.
	fresh bool
}

// isolationRoutes lists every route that acts in an account. {a} is the account in the
// path; {wide}, {scoped}, {wd}, {sd}, {ev}, {spare} are the tenant's fixtures.
func isolationRoutes() []isolationRoute {
	var routes []isolationRoute
	hookRoutes := func(base, hook, del string, collection bool) {
		h := base + "/" + hook
		if collection {
			routes = append(routes,
				isolationRoute{method: "GET", path: base, ok: 200, collection: true},
				isolationRoute{method: "POST", path: base, body: map[string]any{"name": "new", "url": "https://example.com/new", "events": []string{"survey.response.disqualified"}}, ok: 201, collection: true},
			)
		}
		routes = append(routes,
			isolationRoute{method: "GET", path: h, ok: 200},
			isolationRoute{method: "PATCH", path: h, body: map[string]any{"description": "changed"}, ok: 200},
			isolationRoute{method: "GET", path: h + "/secret", ok: 200},
			isolationRoute{method: "POST", path: h + "/secret/rotate", body: map[string]any{"overlapSeconds": 0}, ok: 200},
			isolationRoute{method: "POST", path: h + "/test", ok: 200},
			isolationRoute{method: "GET", path: h + "/deliveries", ok: 200},
			isolationRoute{method: "GET", path: h + "/deliveries/" + del, ok: 200},
			isolationRoute{method: "POST", path: h + "/deliveries/" + del + "/retry?force=true", ok: 202},
			isolationRoute{method: "DELETE", path: h, ok: 204, fresh: true},
		)
	}
	hookRoutes("/api/accounts/{a}/webhooks", "{wide}", "{wd}", true)
	hookRoutes("/api/accounts/{a}/surveys/s1/webhooks", "{scoped}", "{sd}", true)
	// The account's path reaches its surveys' webhooks too.
	hookRoutes("/api/accounts/{a}/webhooks", "{scoped}", "{sd}", false)
	routes = append(routes,
		isolationRoute{method: "GET", path: "/api/accounts/{a}/events", ok: 200, collection: true},
		isolationRoute{method: "GET", path: "/api/accounts/{a}/events?surveyId=s1&type=survey.response.completed", ok: 200, collection: true},
		isolationRoute{method: "GET", path: "/api/accounts/{a}/events/{ev}", ok: 200},
		isolationRoute{method: "GET", path: "/api/accounts/{a}/deliveries", ok: 200, collection: true},
		isolationRoute{method: "POST", path: "/api/accounts/{a}/deliveries/retry", body: map[string]any{"since": "2026-01-01T00:00:00Z", "dryRun": true}, ok: 200, collection: true},
		isolationRoute{method: "GET", path: "/api/accounts/{a}/audit", ok: 200, collection: true},
		isolationRoute{method: "GET", path: "/api/accounts/{a}/keys", ok: 200, collection: true, platformOnly: true},
		isolationRoute{method: "POST", path: "/api/accounts/{a}/keys", body: map[string]any{"name": "k"}, ok: 201, collection: true, platformOnly: true},
		isolationRoute{method: "DELETE", path: "/api/accounts/{a}/keys/{spare}", ok: 200, platformOnly: true},
		isolationRoute{method: "POST", path: "/api/accounts/{a}/console-links", ok: 201, collection: true, platformOnly: true},
		isolationRoute{method: "DELETE", path: "/api/accounts/{a}/console-sessions", ok: 200, collection: true, platformOnly: true},
	)
	return routes
}

// accountDelete removes acme with everything it has: the table runs it last, with the
// platform key's exact call last of all.
var accountDelete = isolationRoute{method: "DELETE", path: "/api/accounts/{a}", ok: 200, collection: true, platformOnly: true}

// accountFreeRoutes name no account in their path: seed 001's paths act in the caller's
// account, and events are found by id.
func accountFreeRoutes() []isolationRoute {
	var routes []isolationRoute
	h := "/api/surveys/s1/webhooks/{scoped}"
	routes = append(routes,
		isolationRoute{method: "GET", path: "/api/surveys/s1/webhooks", ok: 200, collection: true},
		isolationRoute{method: "GET", path: h, ok: 200},
		isolationRoute{method: "PATCH", path: h, body: map[string]any{"description": "changed"}, ok: 200},
		isolationRoute{method: "GET", path: h + "/secret", ok: 200},
		isolationRoute{method: "POST", path: h + "/secret/rotate", body: map[string]any{"overlapSeconds": 0}, ok: 200},
		isolationRoute{method: "POST", path: h + "/test", ok: 200},
		isolationRoute{method: "GET", path: h + "/deliveries", ok: 200},
		isolationRoute{method: "GET", path: h + "/deliveries/{sd}", ok: 200},
		isolationRoute{method: "POST", path: h + "/deliveries/{sd}/retry?force=true", ok: 202},
		isolationRoute{method: "DELETE", path: h, ok: 204, fresh: true},
		isolationRoute{method: "GET", path: "/api/events/{ev}", ok: 200},
	)
	return routes
}

func (r isolationRoute) fill(tn tenant, account string) string {
	return strings.NewReplacer("{a}", account, "{wide}", tn.wide, "{scoped}", tn.scoped, "{wd}", tn.wideDel,
		"{sd}", tn.scopedDel, "{ev}", tn.event, "{spare}", tn.spareKey).Replace(r.path)
}

// TestAccountIsolation calls every route that acts in an account with each kind of
// caller, on account A's fixtures, and with spellings of A's id that name another
// account (case), no valid account (trailing space) or no route (%2F). An account key of
// A succeeds in A; B's key gets 404 (403 on platform-only routes), exactly as for
// something missing; no key, a revoked key and an expired key get 401; a platform key
// reaches every account. No answer to an account key ever holds the other account's ids,
// names or URLs.
func TestAccountIsolation(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	rc := newReceiver(t)
	a := e.newTenant(t, "acme", "main", rc)
	b := e.newTenant(t, "globex", "main", rc)

	revoked := e.newTenant(t, "acme", "revoked", rc).key
	status, _ := e.request(t, a.key, http.MethodGet, "/api/accounts/acme/keys", nil)
	require.Equal(t, http.StatusForbidden, status, "account keys do not manage keys")
	revokeKey(t, e, "acme", revoked)
	expired := expiringKey(t, e, "acme")

	callers := []struct {
		name, key string
		own       bool // the key belongs to acme
		platform  bool
	}{
		{name: "own key", key: a.key, own: true},
		{name: "other account's key", key: b.key},
		{name: "no key"},
		{name: "revoked key", key: revoked},
		{name: "expired key", key: expired},
		{name: "platform key", key: engineKey, platform: true},
	}
	variants := []struct {
		name, account string
	}{
		{"exact", "acme"},
		{"other case", "ACME"},
		{"trailing space", "acme%20"},
		{"encoded slash", "acme%2Fx"},
	}
	type row struct {
		route   isolationRoute
		variant string
		account string
	}
	var rows []row
	for _, r := range accountFreeRoutes() {
		rows = append(rows, row{r, "exact", "acme"})
	}
	for _, r := range isolationRoutes() {
		for _, v := range variants {
			rows = append(rows, row{r, v.name, v.account})
		}
	}
	for _, v := range slices.Backward(variants) {
		rows = append(rows, row{accountDelete, v.name, v.account})
	}

	n := 0
	for _, rw := range rows {
		for _, c := range callers {
			want := expectedStatus(rw.route, rw.variant, c.key != "" && c.key != revoked && c.key != expired, c.own, c.platform,
				strings.HasPrefix(rw.route.path, "/api/surveys/"))
			tn := a
			if rw.route.fresh && slices.Contains(want, rw.route.ok) {
				tn = e.newTenant(t, "acme", fmt.Sprintf("fresh%d", n), rc)
				n++
			}
			path := rw.route.fill(tn, rw.account)
			label := fmt.Sprintf("%s %s (%s, %s)", rw.route.method, path, rw.variant, c.name)
			status, body := e.request(t, c.key, rw.route.method, path, rw.route.body)
			require.Contains(t, want, status, "%s: %s", label, body)
			if c.own {
				require.Empty(t, b.leaks(body), label)
			}
			if !c.own && !(c.platform && rw.variant == "exact") {
				require.Empty(t, tn.leaks(body), label)
			}
			if rw.route.fresh && !slices.Contains(want, rw.route.ok) {
				// Refused: the fixture is still there.
				st, _ := e.request(t, engineKey, http.MethodGet, "/api/accounts/acme/webhooks/"+tn.wide, nil)
				require.Equal(t, http.StatusOK, st, label)
			}
		}
	}

	// The platform key's delete of acme, last, took everything of acme and nothing else.
	status, raw := e.request(t, engineKey, http.MethodGet, "/api/accounts", nil)
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, a.leaks(raw))
	require.NotContains(t, string(raw), `"acme"`)
	require.Contains(t, string(raw), `"globex"`)
	status, _ = e.request(t, b.key, http.MethodGet, "/api/accounts/globex/webhooks/"+b.wide, nil)
	require.Equal(t, http.StatusOK, status)
	status, _ = e.request(t, a.key, http.MethodGet, "/api/accounts/acme/webhooks", nil)
	require.Equal(t, http.StatusUnauthorized, status, "the account's keys went with it")
}

// expectedStatus is the table's rule: the statuses a caller may get on a route.
func expectedStatus(r isolationRoute, variant string, authenticated, own, platform, seed001 bool) []int {
	switch {
	case variant == "encoded slash":
		return []int{http.StatusNotFound} // no route matches, before any key is read
	case !authenticated:
		return []int{http.StatusUnauthorized}
	case r.platformOnly && !platform:
		return []int{http.StatusForbidden}
	case variant == "trailing space":
		return []int{http.StatusBadRequest}
	case seed001:
		// Seed 001's paths act in the caller's account: the platform key's is the
		// default account, where acme's webhooks are not.
		if own || r.collection || (r.path == "/api/events/{ev}" && platform) {
			return okStatuses(r)
		}
		return []int{http.StatusNotFound}
	case variant == "other case":
		if platform && r.collection {
			return okStatuses(r)
		}
		return []int{http.StatusNotFound}
	case own || platform:
		return okStatuses(r)
	}
	return []int{http.StatusNotFound}
}

func okStatuses(r isolationRoute) []int {
	if r.ok == http.StatusCreated && r.method == http.MethodPost && strings.HasSuffix(r.path, "/events") {
		return []int{http.StatusCreated, http.StatusAccepted}
	}
	return []int{r.ok}
}

// revokeKey revokes an account key, found by the prefix it starts with.
func revokeKey(t *testing.T, e *engine, account, key string) {
	t.Helper()
	status, out := e.do(t, http.MethodGet, "/api/accounts/"+account+"/keys?limit=200", nil)
	require.Equal(t, http.StatusOK, status)
	for _, k := range out["data"].([]any) {
		k := k.(map[string]any)
		if strings.HasPrefix(key, k["prefix"].(string)+"_") {
			status, out := e.do(t, http.MethodDelete, "/api/accounts/"+account+"/keys/"+k["id"].(string), nil)
			require.Equal(t, http.StatusOK, status, out)
			require.NotNil(t, out["revokedAt"])
			return
		}
	}
	t.Fatalf("key not listed")
}

// expiringKey makes a key that expires in a second and waits until it has.
func expiringKey(t *testing.T, e *engine, account string) string {
	t.Helper()
	expires := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	status, out := e.do(t, http.MethodPost, "/api/accounts/"+account+"/keys", map[string]any{"name": "short", "expiresAt": expires})
	require.Equal(t, http.StatusCreated, status, out)
	key := out["key"].(string)
	st, _ := e.request(t, key, http.MethodGet, "/api/accounts/"+account+"/webhooks", nil)
	require.Equal(t, http.StatusOK, st, "the key works before it expires")
	time.Sleep(time.Until(time.Now().Add(1600 * time.Millisecond)))
	return key
}

// decodeJSON decodes a raw answer.
func decodeJSON(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return out
}

// TestAccountWideWebhooks delivers events of two accounts that share a survey id: account
// A's webhook with no filter gets A's events of surveys s1 and s2 and nothing of B's s1;
// limited to s2 (by PATCH) it gets only s2's, and a survey's webhook only its survey's.
// The account's list and path also hold the survey's webhook, with its own rules.
func TestAccountWideWebhooks(t *testing.T) {
	t.Parallel()
	e := setupEngine(t, netguard.Policy{AllowHTTP: true, Allowed: loopback})
	wideRc, filteredRc, scopedRc, otherRc := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	hook := func(path string, rc *receiver) string {
		status, out := e.do(t, http.MethodPost, path, map[string]any{"name": "h", "url": rc.URL, "events": []string{"survey.response.*"}})
		require.Equal(t, http.StatusCreated, status, out)
		return out["id"].(string)
	}
	wide := hook("/api/accounts/acme/webhooks", wideRc)
	filtered := hook("/api/accounts/acme/webhooks", filteredRc)

	scoped := hook("/api/accounts/acme/surveys/s1/webhooks", scopedRc)
	hook("/api/accounts/globex/webhooks", otherRc)

	status, out := e.do(t, http.MethodPatch, "/api/accounts/acme/webhooks/"+filtered, map[string]any{"surveyIds": []string{"s2"}})
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, []any{"s2"}, out["surveyIds"])

	// The account's list and path hold its survey's webhook too, with that webhook's rules:
	// it takes no survey filter, and keeps its survey.
	status, out = e.do(t, http.MethodGet, "/api/accounts/acme/webhooks", nil)
	require.Equal(t, http.StatusOK, status, out)
	var listed []string
	for _, h := range out["data"].([]any) {
		h := h.(map[string]any)
		listed = append(listed, fmt.Sprint(h["id"], " ", h["surveyId"]))
	}
	require.Equal(t, []string{wide + " <nil>", filtered + " <nil>", scoped + " s1"}, listed, "in creation order")
	status, out = e.do(t, http.MethodPatch, "/api/accounts/acme/webhooks/"+scoped, map[string]any{"surveyIds": []string{"s2"}, "name": "moved"})
	require.Equal(t, http.StatusBadRequest, status, out)
	require.Equal(t, []any{map[string]any{"field": "surveyIds", "message": `is taken by account-wide webhooks only: this webhook is survey "s1"'s`}}, out["fields"])
	status, out = e.do(t, http.MethodPatch, "/api/accounts/acme/webhooks/"+scoped, map[string]any{"surveyId": "s2"})
	require.Equal(t, http.StatusBadRequest, status, out)
	status, out = e.do(t, http.MethodPatch, "/api/accounts/acme/webhooks/"+scoped, map[string]any{"description": "by the account's path"})
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, "s1", out["surveyId"])
	require.Equal(t, "h", out["name"], "the refused changes changed nothing")
	status, out = e.do(t, http.MethodGet, "/api/accounts/acme/surveys/s1/webhooks/"+scoped, nil)
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, "by the account's path", out["description"])
	status, _ = e.do(t, http.MethodGet, "/api/accounts/globex/webhooks/"+scoped, nil)
	require.Equal(t, http.StatusNotFound, status, "another account's path does not reach it")

	publish := func(account, survey, id string) {
		status, out := e.do(t, http.MethodPost, "/api/events", map[string]any{"account_id": account, "event_id": id,
			"event_type": "survey.response.completed", "survey_id": survey, "data": map[string]any{"survey": map[string]any{"id": survey}}})
		require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status, out)
	}
	publish("acme", "s1", "a-s1")
	publish("acme", "s2", "a-s2")
	publish("globex", "s1", "b-s1")
	e.deliveriesOf(t, "a-s1", 2)
	e.deliveriesOf(t, "a-s2", 2)
	e.deliveriesOf(t, "b-s1", 1)

	eventIDs := func(rc *receiver) []string {
		var ids []string
		for _, r := range rc.got() {
			ids = append(ids, decodeJSON(t, r.body)["event_id"].(string))
		}
		slices.Sort(ids)
		return ids
	}
	require.Equal(t, []string{"a-s1", "a-s2"}, eventIDs(wideRc))
	require.Equal(t, []string{"a-s2"}, eventIDs(filteredRc))
	require.Equal(t, []string{"a-s1"}, eventIDs(scopedRc))
	require.Equal(t, []string{"b-s1"}, eventIDs(otherRc))

	// The account's event list, by survey, and an account key that sees only its own.
	status, out = e.do(t, http.MethodGet, "/api/accounts/acme/events?surveyId=s2", nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, out["data"], 1)
	require.Equal(t, "a-s2", out["data"].([]any)[0].(map[string]any)["eventId"])
	status, out = e.do(t, http.MethodPost, "/api/accounts/globex/keys", map[string]any{"name": "globex"})
	require.Equal(t, http.StatusCreated, status)
	key := out["key"].(string)
	status, _ = e.request(t, key, http.MethodGet, "/api/events/a-s1", nil)
	require.Equal(t, http.StatusNotFound, status)
	status, raw := e.request(t, key, http.MethodPost, "/api/events", map[string]any{"account_id": "acme",
		"event_type": "survey.response.completed", "survey_id": "s1", "data": map[string]any{}})
	require.Equal(t, http.StatusForbidden, status, "an account key publishes for its own account only")
	require.NotContains(t, string(raw), "a-s1")
	status, raw = e.request(t, key, http.MethodPost, "/api/events", map[string]any{
		"event_type": "survey.response.completed", "survey_id": "s1", "data": map[string]any{}})
	require.Contains(t, []int{http.StatusCreated, http.StatusAccepted}, status)
	require.Equal(t, "globex", decodeJSON(t, raw)["accountId"], "an account key's events are its account's")
	status, raw = e.request(t, key, http.MethodPost, "/api/events", map[string]any{"event_id": "a-s1",
		"event_type": "survey.response.completed", "survey_id": "s1", "data": map[string]any{"survey": map[string]any{"id": "s1"}}})
	require.Equal(t, http.StatusConflict, status, "another account's event id is taken")
	require.Equal(t, []any{map[string]any{"field": "event_id", "message": "differs from the stored event with this event_id"}},
		decodeJSON(t, raw)["fields"], "and nothing of that event shows")
}
