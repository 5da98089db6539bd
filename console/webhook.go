package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/surveyhooks/surveyhooks/client"
	"github.com/surveyhooks/surveyhooks/eventtype"
)

// webhookPage is a webhook's own page.
type webhookPage struct {
	Hook     client.Webhook
	Window   string
	Windows  []string
	Totals   client.WebhookStatsBucket
	Volume   template.HTML
	Latency  template.HTML
	HasStats bool
	Types    []typeExample
	Overlaps []overlapChoice
	// From is the first bucket's start; Step each bucket's length in words ("hour").
	From *time.Time
	Step string
}

// typeExample is an event type the webhook hears, with the body its receiver gets for it.
type typeExample struct {
	Name, Description, Example string
}

// overlapChoice is a rotation's overlap the form offers.
type overlapChoice struct {
	Seconds int
	Label   string
	Default bool
}

// overlaps are the rotation overlaps offered: the API's default (24 h) first.
var overlaps = []overlapChoice{
	{Seconds: 86400, Label: "24 hours", Default: true},
	{Seconds: 3600, Label: "1 hour"},
	{Seconds: 7 * 86400, Label: "7 days"},
	{Seconds: 0, Label: "none: the old secret stops at once"},
}

var statsWindows = []string{"24h", "7d", "30d"}

func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	window := r.URL.Query().Get("window")
	if !slices.Contains(statsWindows, window) {
		window = statsWindows[0]
	}
	wp := client.GetWebhookStatsInAccountParamsWindow(window)
	stats, err := result(c.api.GetWebhookStatsInAccountWithResponse(r.Context(), c.account, hook.ID,
		&client.GetWebhookStatsInAccountParams{Window: &wp}))
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	types, err := s.eventTypes(r, c)
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	buckets := stats.JSON200.Buckets
	page := webhookPage{Hook: hook, Window: window, Windows: statsWindows, Totals: stats.JSON200.Totals,
		Volume: volumeChart(buckets), Latency: latencyChart(buckets), HasStats: stats.JSON200.Totals.Attempts > 0,
		Types: heardTypes(types, hook.Events), Overlaps: overlaps}
	if len(buckets) > 0 {
		page.From, page.Step = buckets[0].Start, stepWords(stats.JSON200.Step)
	}
	s.render(w, r, c, "webhook", page)
}

// stepWords says a bucket's length as the API writes it (1h0m0s, 6h0m0s, 24h0m0s) in
// words: "hour", "6 hours", "day".
func stepWords(step string) string {
	d, err := time.ParseDuration(step)
	switch {
	case err != nil || d <= 0:
		return step
	case d == time.Hour:
		return "hour"
	case d == 24*time.Hour:
		return "day"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}

// heardTypes lists the types the webhook's patterns match (eventtype's rule), with their
// example payloads.
func heardTypes(types []client.EventType, patterns []string) []typeExample {
	var out []typeExample
	for _, t := range types {
		if !slices.ContainsFunc(patterns, func(p string) bool { return eventtype.Matches(p, t.Name) }) {
			continue
		}
		example, _ := json.MarshalIndent(t.ExamplePayload, "", "  ")
		out = append(out, typeExample{Name: t.Name, Description: t.Description, Example: string(example)})
	}
	return out
}

// secretView is the secret fragment: the secret (or public key) once revealed.
type secretView struct {
	Hook      client.Webhook
	Secret    string
	PublicKey string
	// PreviousUntil is when the previous secret or key stops signing, during an overlap.
	PreviousUntil *time.Time
	Rotated       bool
	Error         string
}

// handleSecretReveal shows the secret (recorded in the audit log by the API), or an
// ed25519 webhook's public key. It is a POST: revealing is an action, with a CSRF token.
func (s *Server) handleSecretReveal(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	v := secretView{Hook: hook}
	if hook.Signing == client.WebhookSigningEd25519 {
		resp, err := result(c.api.GetWebhookPublicKeyInAccountWithResponse(r.Context(), c.account, hook.ID))
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		v.PublicKey, v.PreviousUntil = resp.JSON200.PublicKey, resp.JSON200.PreviousKeyExpiresAt
	} else {
		resp, err := result(c.api.GetWebhookSecretInAccountWithResponse(r.Context(), c.account, hook.ID))
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		v.Secret, v.PreviousUntil = resp.JSON200.Secret, resp.JSON200.PreviousSecretExpiresAt
	}
	s.renderFragment(w, r, c, "webhook", "secret", v)
}

// handleSecretRotate makes a new secret (or key pair); the old one keeps signing for the
// chosen overlap, so that receivers can switch without refusing a delivery.
func (s *Server) handleSecretRotate(w http.ResponseWriter, r *http.Request, c *call) {
	hook, ok := s.getWebhook(w, r, c)
	if !ok {
		return
	}
	seconds, err := strconv.Atoi(r.PostFormValue("overlapSeconds"))
	if err != nil {
		seconds = overlaps[0].Seconds
	}
	resp, err := result(c.api.RotateWebhookSecretInAccountWithResponse(r.Context(), c.account, hook.ID,
		client.SecretRotate{OverlapSeconds: &seconds}))
	if statusOf(err) == http.StatusBadRequest || statusOf(err) == http.StatusConflict {
		s.renderFragment(w, r, c, "webhook", "secret", secretView{Hook: hook, Error: apiMessage(err)})
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	v := secretView{Hook: hook, Rotated: true}
	if hook.Signing == client.WebhookSigningEd25519 {
		key, err := resp.JSON200.AsPublicKey()
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		v.PublicKey, v.PreviousUntil = key.PublicKey, key.PreviousKeyExpiresAt
	} else {
		secret, err := resp.JSON200.AsSecret()
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		v.Secret, v.PreviousUntil = secret.Secret, secret.PreviousSecretExpiresAt
	}
	s.renderFragment(w, r, c, "webhook", "secret", v)
}

// testView is the test fragment: the attempt the test made.
type testView struct {
	Result client.TestResult
	Error  string
}

// handleWebhookTest sends a webhook.test event and shows its attempt when it is done.
func (s *Server) handleWebhookTest(w http.ResponseWriter, r *http.Request, c *call) {
	id, ok := s.pathWebhook(w, r, c)
	if !ok {
		return
	}
	resp, err := result(c.api.TestWebhookInAccountWithResponse(r.Context(), c.account, id))
	if st := statusOf(err); st == http.StatusConflict || st == http.StatusBadRequest || st == http.StatusServiceUnavailable {
		s.renderFragment(w, r, c, "webhook", "test_result", testView{Error: apiMessage(err)})
		return
	}
	if err != nil {
		s.fail(w, r, c, err)
		return
	}
	s.renderFragment(w, r, c, "webhook", "test_result", testView{Result: *resp.JSON200})
}
