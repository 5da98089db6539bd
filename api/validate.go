package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/surveyhooks/surveyhooks/eventtype"
	"github.com/surveyhooks/surveyhooks/netguard"

	"github.com/surveyhooks/surveyhooks/store"
)

// Limits of webhook fields; the OpenAPI document states the same numbers.
const (
	maxNameLength        = 200
	maxDescriptionLength = 1000
	maxEvents            = 20
	maxEventLength       = eventtype.MaxNameLength
	// User-chosen secrets: long enough to resist guessing, printable ASCII without spaces
	// so that they survive copy and paste and configuration files unchanged.
	minSecretLength   = 16
	maxSecretLength   = 256
	maxSurveyIDLength = 128
	maxOverlapSeconds = 7 * 24 * 60 * 60
	// A webhook's rate limit: at most this many requests a second, and in a burst.
	maxRatePerSecond = 10000
	maxRateBurst     = 10000
)

// idPattern is what a publisher-chosen id (a survey id, an event id) may be: safe in a URL
// path, a header, a log line, a workflow id and a search attribute.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ValidID reports whether id may name an account, a survey or an event.
func ValidID(id string) bool {
	return idPattern.MatchString(id)
}

// checkSurveyID validates the {surveyId} path parameter.
func checkSurveyID(id string) error {
	if !idPattern.MatchString(id) {
		return invalidFields([]FieldError{{
			Field:   "surveyId",
			Message: fmt.Sprintf("must be 1 to %d characters among A-Z a-z 0-9 . _ : -", maxSurveyIDLength),
		}})
	}
	return nil
}

// webhookInput is a create or update body, member by member.
type webhookInput struct {
	SurveyID    optional[string]
	SurveyIDs   optional[[]string]
	Name        optional[string]
	URL         optional[string]
	Events      optional[[]string]
	Description optional[string]
	IsActive    optional[bool]
	Secret      optional[string]
	Signing     optional[string]
	RateLimit   optional[map[string]json.RawMessage]
}

// decodeWebhookInput takes the webhook members out of m; unknown members are reported.
func decodeWebhookInput(m *members) webhookInput {
	in := webhookInput{
		SurveyID:    member[string](m, "surveyId", "a string"),
		SurveyIDs:   member[[]string](m, "surveyIds", "an array of strings"),
		Name:        member[string](m, "name", "a string"),
		URL:         member[string](m, "url", "a string"),
		Events:      member[[]string](m, "events", "an array of strings"),
		Description: member[string](m, "description", "a string"),
		IsActive:    member[bool](m, "isActive", "true or false"),
		Secret:      member[string](m, "secret", "a string"),
		Signing:     member[string](m, "signing", `"hmac" or "ed25519"`),
		RateLimit:   member[map[string]json.RawMessage](m, "rateLimit", "an object {perSecond, burst}, or null for none"),
	}
	m.rejectUnknown()
	return in
}

// checkScopeMembers accepts a body's surveyId only when it repeats the scope's, and
// surveyIds only for an account-wide webhook: a webhook's scope is set when it is made, by
// the path it is made on, and never changes.
func checkScopeMembers(m *members, in webhookInput, scope store.Scope) {
	if in.SurveyID.Set && !in.SurveyID.Bad && (in.SurveyID.Null || in.SurveyID.Value != scope.SurveyID) {
		if scope.SurveyID == "" {
			m.fail("surveyId", "is not taken by an account-wide webhook: use surveyIds to limit it to some surveys")
		} else {
			m.fail("surveyId", fmt.Sprintf("must be the webhook's survey id, %q: a webhook's survey never changes", scope.SurveyID))
		}
	}
	if in.SurveyIDs.Set && scope.SurveyID != "" {
		m.fail("surveyIds", fmt.Sprintf("is taken by account-wide webhooks only: this webhook is survey %q's", scope.SurveyID))
	}
}

// maxSurveyIDs bounds an account-wide webhook's survey filter.
const maxSurveyIDs = 1000

// checkSurveyIDs checks an account-wide webhook's survey filter: each a survey id, none
// twice, at least one (null, not [], means every survey).
func checkSurveyIDs(m *members, ids []string) {
	switch {
	case len(ids) == 0:
		m.fail("surveyIds", "must list at least one survey id; send null for every survey of the account")
		return
	case len(ids) > maxSurveyIDs:
		m.fail("surveyIds", fmt.Sprintf("must list at most %d survey ids", maxSurveyIDs))
		return
	}
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		field := fmt.Sprintf("surveyIds[%d]", i)
		switch {
		case !idPattern.MatchString(id):
			m.fail(field, fmt.Sprintf("must be 1 to %d characters among A-Z a-z 0-9 . _ : -", maxSurveyIDLength))
		case seen[id]:
			m.fail(field, "repeats "+strconv.Quote(id))
		}
		seen[id] = true
	}
}

// checkRateLimit reads a rateLimit object: perSecond, a positive number of requests a
// second, and burst, how many may go at once (default 1).
func checkRateLimit(m *members, obj map[string]json.RawMessage) store.RateLimit {
	sub := &members{obj: obj}
	perSecond := member[float64](sub, "perSecond", "a number of requests a second")
	burst := member[int](sub, "burst", "an integer")
	sub.rejectUnknown()
	limit := store.RateLimit{Burst: 1}
	switch {
	case !perSecond.Set || perSecond.Null:
		sub.fail("perSecond", "is required")
	case perSecond.Bad:
	case perSecond.Value <= 0 || perSecond.Value > maxRatePerSecond:
		sub.fail("perSecond", fmt.Sprintf("must be more than 0 and at most %d requests a second", maxRatePerSecond))
	default:
		limit.PerSecond = perSecond.Value
	}
	if burst.usable() {
		if burst.Value < 1 || burst.Value > maxRateBurst {
			sub.fail("burst", fmt.Sprintf("must be 1 to %d requests", maxRateBurst))
		}
		limit.Burst = burst.Value
	} else if burst.Null {
		sub.fail("burst", "must be an integer; leave it out for 1")
	}
	for _, e := range sub.errs {
		m.fail("rateLimit."+e.Field, e.Message)
	}
	return limit
}

// checkName returns the trimmed name.
func checkName(m *members, name string) string {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		m.fail("name", "must not be empty")
	case utf8.RuneCountInString(name) > maxNameLength:
		m.fail("name", fmt.Sprintf("must be at most %d characters", maxNameLength))
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		m.fail("name", "must not contain control characters")
	case hasFormatCharacter(name):
		m.fail("name", formatCharacterMessage)
	}
	return name
}

// formatCharacterMessage refuses invisible Unicode format characters (category Cf).
const formatCharacterMessage = "must not contain invisible formatting characters such as bidi controls or zero-width characters"

// hasFormatCharacter reports whether s has a Unicode format character (category Cf): bidi
// controls such as U+202E reorder what a console or a page shows ("abc\u202eevil" reads
// "abclive"), and zero-width characters make two names that look the same differ.
func hasFormatCharacter(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Cf, r) }) >= 0
}

func checkURL(m *members, policy netguard.Policy, url string) {
	if err := policy.CheckURL(url); err != nil {
		var urlErr *netguard.URLError
		if errors.As(err, &urlErr) {
			m.fail("url", urlErr.Reason)
			return
		}
		m.fail("url", "must be a valid URL")
	}
}

// checkEvents checks a webhook's subscription patterns against the registered types
// (eventtype.Set.ValidPattern): a webhook may not newly subscribe to an archived type.
func checkEvents(m *members, types *eventtype.Set, events []string) {
	switch {
	case len(events) == 0:
		m.fail("events", "must not be empty")
		return
	case len(events) > maxEvents:
		m.fail("events", fmt.Sprintf("must have at most %d entries", maxEvents))
		return
	}
	seen := make(map[string]int, len(events))
	for i, p := range events {
		field := fmt.Sprintf("events[%d]", i)
		if len(p) > maxEventLength {
			m.fail(field, "is not a known event type or wildcard")
			continue
		}
		if j, dup := seen[p]; dup {
			m.fail(field, fmt.Sprintf("duplicates events[%d]", j))
			continue
		}
		seen[p] = i
		if err := types.ValidPattern(p); err != nil {
			m.fail(field, patternMessage(p, err))
		}
	}
}

// patternMessage explains why p is not a valid subscription pattern.
func patternMessage(p string, err error) string {
	switch {
	case p == eventtype.WebhookTest:
		return fmt.Sprintf("%q cannot be subscribed to: the test endpoint sends it", p)
	case errors.Is(err, eventtype.ErrArchived):
		return fmt.Sprintf("%q is archived: webhooks subscribed to it keep receiving it, but no webhook may newly subscribe to it", p)
	case strings.HasSuffix(p, ".*"):
		return fmt.Sprintf("%q matches no event type that can be subscribed to", p)
	default:
		return fmt.Sprintf("%q is not a known event type or wildcard (see GET /api/event-types)", p)
	}
}

func checkDescription(m *members, description string) {
	switch {
	case utf8.RuneCountInString(description) > maxDescriptionLength:
		m.fail("description", fmt.Sprintf("must be at most %d characters", maxDescriptionLength))
	case strings.IndexFunc(description, func(r rune) bool {
		return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t'
	}) >= 0:
		m.fail("description", "must not contain control characters other than line breaks and tabs")
	case hasFormatCharacter(description):
		m.fail("description", formatCharacterMessage)
	}
}

// checkSecret validates a secret chosen by the user.
func checkSecret(m *members, field, secret string) {
	if len(secret) < minSecretLength || len(secret) > maxSecretLength {
		m.fail(field, fmt.Sprintf("must be %d to %d characters", minSecretLength, maxSecretLength))
		return
	}
	for i := range len(secret) {
		if c := secret[i]; c < '!' || c > '~' {
			m.fail(field, "must be printable ASCII without spaces")
			return
		}
	}
}
