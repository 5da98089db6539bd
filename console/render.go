package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/surveyhooks/surveyhooks/client"
)

// view is what every page's template gets: the layout's data and the page's own.
type view struct {
	Product string
	HasLogo bool
	// Session is nil on pages shown without one (sign-in, ended, a refused link).
	Session *sessionView
	// Account is the account the page is in; "" outside one.
	Account string
	// Page names the page, for the navigation's current item.
	Page string
	Data any
}

type sessionView struct {
	Operator bool
	CSRF     string
	// HXHeaders is the hx-headers value that sends the CSRF token with every htmx request.
	HXHeaders string
}

// message is the data of a page that only says something.
type message struct {
	Title, Text    string
	Link, LinkText string
}

func (s *Server) newView(c *call, page string, data any) view {
	v := view{Product: s.cfg.Brand.Name, HasLogo: s.cfg.Brand.Logo != nil, Page: page, Data: data}
	if c != nil {
		headers, _ := json.Marshal(map[string]string{csrfHeader: c.session.CSRFToken})
		v.Session = &sessionView{Operator: c.session.Operator(), CSRF: c.session.CSRFToken, HXHeaders: string(headers)}
		v.Account = c.account
	}
	return v
}

// render writes page with status 200.
func (s *Server) render(w http.ResponseWriter, r *http.Request, c *call, page string, data any) {
	s.renderStatus(w, r, c, http.StatusOK, page, data)
}

// renderStatus writes a whole page (the layout around the page's "content").
func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, c *call, status int, page string, data any) {
	s.execute(w, r, status, page, "layout", s.newView(c, page, data))
}

// renderFragment writes one named template of a page alone, for htmx to swap in.
func (s *Server) renderFragment(w http.ResponseWriter, r *http.Request, c *call, page, name string, data any) {
	s.execute(w, r, http.StatusOK, page, name, s.newView(c, page, data))
}

func (s *Server) execute(w http.ResponseWriter, r *http.Request, status int, page, name string, v view) {
	t, ok := s.pages[page]
	if !ok {
		panic("console: no page " + page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, v); err != nil {
		s.log.ErrorContext(r.Context(), "console page not rendered", "page", page, "template", name, "err", err)
		http.Error(w, "The page could not be shown.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) renderNotFound(w http.ResponseWriter, r *http.Request, c *call) {
	s.renderStatus(w, r, c, http.StatusNotFound, "message", message{Title: "Not found",
		Text: "There is nothing here, or it belongs to another account. Check the address, or go back to the webhooks.",
		Link: homeOf(c), LinkText: "Webhooks"})
}

func homeOf(c *call) string {
	switch {
	case c == nil:
		return "/console/"
	case c.account != "":
		return accountPath(c.account, "webhooks")
	case !c.session.Operator():
		return accountPath(c.session.AccountID, "webhooks")
	}
	return "/console/accounts"
}

// handleNotFound answers console paths that name no page.
func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.renderStatus(w, r, nil, http.StatusNotFound, "message", message{Title: "Not found",
		Text: "This console page does not exist.", Link: "/console/", LinkText: "Console home"})
}

// fail shows an error that no form field explains: not found as such, an ended key as a
// signed-out session, the API's other refusals with its message, anything else as a
// generic error (logged, never shown).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, c *call, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		s.log.ErrorContext(r.Context(), "console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		s.renderStatus(w, r, c, http.StatusInternalServerError, "message", message{Title: "Something went wrong",
			Text: "The console could not finish this request. Try again in a moment.", Link: homeOf(c), LinkText: "Back"})
		return
	}
	switch ae.Status {
	case http.StatusNotFound:
		s.renderNotFound(w, r, c)
	case http.StatusUnauthorized:
		// The session's key was revoked or expired under it.
		s.signedOut(w, r, "/console/ended")
	default:
		if ae.Status >= 500 {
			s.log.ErrorContext(r.Context(), "api failed a console request", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		s.renderStatus(w, r, c, ae.Status, "message", message{Title: "Not done", Text: ae.Body.Message,
			Link: homeOf(c), LinkText: "Back"})
	}
}

// fieldErrors maps the API's field errors by field, for forms to show each next to its
// input; fields the form has no input for go under "".
func fieldErrors(err error, inputs ...string) map[string]string {
	var ae *apiError
	if !errors.As(err, &ae) {
		return nil
	}
	out := map[string]string{}
	for _, f := range ae.Body.Fields {
		field := f.Field
		if i := strings.IndexAny(field, "/[."); i >= 0 {
			field = field[:i]
		}
		if !slices.Contains(inputs, field) {
			out[""] = strings.TrimSpace(out[""] + " " + f.Field + ": " + f.Message + ".")
			continue
		}
		out[field] = strings.TrimSpace(out[field] + " " + f.Message)
	}
	if len(ae.Body.Fields) == 0 {
		out[""] = ae.Body.Message
	}
	return out
}

var templateFuncs = template.FuncMap{
	"when":    when,
	"pretty":  pretty,
	"headers": headerLines,
	"deref":   deref,
	"ms":      milliseconds,
	"join":    strings.Join,
	"path":    pathOf,
	"surveys": surveysOf,
	"tail":    func() string { return tailInterval },
	"contains": func(list []string, v string) bool {
		return slices.Contains(list, v)
	},
}

// when shows a time as a <time> element in UTC; console.js rewrites its text in the
// viewer's time zone (the datetime attribute stays exact).
func when(t any) template.HTML {
	var at time.Time
	switch v := t.(type) {
	case time.Time:
		at = v
	case *time.Time:
		if v == nil {
			return "—"
		}
		at = *v
	default:
		return ""
	}
	at = at.UTC()
	return template.HTML(`<time datetime="` + at.Format(time.RFC3339Nano) + `">` + at.Format("2006-01-02 15:04:05") + ` UTC</time>`)
}

// milliseconds shows a duration in ms, with a decimal below 10 ms (a local receiver
// answers in well under one).
func milliseconds(f float32) string {
	if f < 10 {
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

// pretty indents a JSON text; anything else is shown as it came.
func pretty(s string) string {
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(s), "", "  ") != nil {
		return s
	}
	return buf.String()
}

// headerLines lists headers as "Name: value" lines, sorted by name.
func headerLines(h *map[string][]string) []string {
	if h == nil {
		return nil
	}
	var lines []string
	for name, values := range *h {
		for _, v := range values {
			lines = append(lines, name+": "+v)
		}
	}
	slices.Sort(lines)
	return lines
}

// deref returns what a pointer points to, or its type's zero value when it is nil: the
// generated client's optional fields are pointers, which templates show by value.
func deref(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return v
	}
	if rv.IsNil() {
		return reflect.Zero(rv.Type().Elem()).Interface()
	}
	return rv.Elem().Interface()
}

// surveysOf says whose events a webhook hears: a survey's own webhook hears its survey,
// an account-wide one every survey of the account or those of its filter.
func surveysOf(h client.Webhook) string {
	switch {
	case h.SurveyID != nil && *h.SurveyID != "":
		return "survey " + *h.SurveyID + " (the survey's own webhook)"
	case h.SurveyIds == nil || len(*h.SurveyIds) == 0:
		return "every survey of the account"
	default:
		return strings.Join(*h.SurveyIds, ", ")
	}
}

// pathOf is accountPath for templates, whose ids are UUIDs and pointers to them.
func pathOf(account string, parts ...any) string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = fmt.Sprint(deref(p))
	}
	return accountPath(account, s...)
}
