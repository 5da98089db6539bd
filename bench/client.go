package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	apiclient "github.com/surveyhooks/surveyhooks/client"
)

// apiRaw sends one request to the REST API with the platform key and returns the status
// and body.
func (s *stack) apiRaw(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return s.apiAs(ctx, s.wiring.APIKey, method, path, body)
}

// apiAs sends one request to the REST API with key and returns the status and body.
func (s *stack) apiAs(ctx context.Context, key, method, path string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.apiURL+path, r)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.apiClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	return resp.StatusCode, raw, nil
}

// publish posts body, an encoded publish request, through the generated client and
// returns the status and the answer as it came. The publish path is what the bench
// measures: the body is encoded once by the caller, the answer is not decoded (that would
// spend the bench's CPU beside the server's), and the request goes over s.apiClient's
// pooled connections as a hand-written one would.
func (s *stack) publish(ctx context.Context, body []byte) (int, []byte, error) {
	resp, err := s.api.PublishEventWithBody(ctx, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("POST /api/events: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("POST /api/events: read response: %w", err)
	}
	return resp.StatusCode, raw, nil
}

// createWebhook creates a webhook through the API and returns its id and secret.
func (s *stack) createWebhook(ctx context.Context, survey, name, url string) (id, secret string, err error) {
	resp, err := s.api.CreateWebhookWithResponse(ctx, survey,
		apiclient.WebhookCreate{Name: name, URL: url, Events: []string{eventType}})
	if err != nil {
		return "", "", fmt.Errorf("create webhook: %w", err)
	}
	if resp.JSON201 == nil {
		return "", "", fmt.Errorf("create webhook: the API answered %d: %s (the API must accept http URLs on 127.0.0.0/8)", resp.StatusCode(), firstLine(resp.Body))
	}
	if resp.JSON201.Secret == nil {
		return "", "", fmt.Errorf("create webhook: the answer has no secret")
	}
	return resp.JSON201.ID.String(), *resp.JSON201.Secret, nil
}

// showProgress writes a progress line every half second until the returned function is
// called (which may be called more than once), then clears it.
func (s *stack) showProgress(name, label string, p *pass, published *atomic.Int64, count int, start time.Time) func() {
	w := s.opts.Progress
	if w == nil {
		return func() {}
	}
	if label != "" {
		name += " (" + label + ")"
	}
	total := fmt.Sprint(count)
	if s.opts.Duration > 0 {
		total = s.opts.Duration.String()
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(w, "\r%80s\r", "")
				return
			case <-tick.C:
			}
			received, expected, _ := p.counts()
			elapsed := time.Since(start)
			fmt.Fprintf(w, "\r%-12s published %d/%s  received %d/%d  %.0f deliveries/s  %s   ",
				name, published.Load(), total, received, expected,
				float64(received)/elapsed.Seconds(), elapsed.Round(time.Second))
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-stopped
		})
	}
}

// settling says on the progress line that the stack is finishing its work before a
// measurement starts or ends.
func (s *stack) settling(name, label string) {
	if s.opts.Progress == nil {
		return
	}
	if label != "" {
		name += " (" + label + ")"
	}
	fmt.Fprintf(s.opts.Progress, "\r%-12s waiting for the stack to be idle…%30s", name, "")
}

// progress replaces the progress line with the formatted one; an empty format clears it.
func (s *stack) progress(format string, args ...any) {
	if s.opts.Progress == nil {
		return
	}
	if format == "" {
		fmt.Fprintf(s.opts.Progress, "\r%80s\r", "")
		return
	}
	fmt.Fprintf(s.opts.Progress, "\r%-80s", fmt.Sprintf(format, args...))
}
