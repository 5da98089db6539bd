package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/surveyhooks/surveyhooks/client"
)

// apiBase is the base URL the console's API client is made with; requests never leave the
// process (apiTransport), so the host is only a placeholder.
const apiBase = "http://api.in-process"

// jsonType is the content type of the request bodies the console builds itself.
const jsonType = "application/json"

// apiTransport runs the console's API requests through the API's handler in this process:
// the same middleware (authentication, rate limit, deadline, logs, audit) as over the network,
// without a socket.
type apiTransport struct {
	handler http.Handler
}

// RoundTrip serves req with the API handler and returns its recorded answer.
func (t *apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	// A server's handlers get what net/http gives them: a body (empty when none was sent),
	// the request URI and a remote address.
	if req.Body == nil {
		req.Body = http.NoBody
	}
	req.RequestURI = req.URL.RequestURI()
	req.RemoteAddr = "console"
	t.handler.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// clientFor returns an API client acting with key.
func (s *Server) clientFor(key string) *client.ClientWithResponses {
	c, err := client.NewClientWithResponses(apiBase, client.WithHTTPClient(&http.Client{Transport: s.api}), client.WithKey(key))
	if err != nil {
		// Only a malformed base URL fails, and apiBase is a constant.
		panic(fmt.Sprintf("console api client: %v", err))
	}
	return c
}

// apiError is an API answer other than success: its status and the API's error body
// ({code, message, fields}), which the console shows as it is, next to the fields it names.
type apiError struct {
	Status int
	Body   client.Error
}

func (e *apiError) Error() string {
	return fmt.Sprintf("api answered %d %s: %s", e.Status, e.Body.Code, e.Body.Message)
}

// FieldMessage returns the API's message about field, or "".
func (e *apiError) FieldMessage(field string) string {
	for _, f := range e.Body.Fields {
		if f.Field == field {
			return f.Message
		}
	}
	return ""
}

// answered is what every generated response has: its status and raw body.
type answered interface {
	StatusCode() int
	GetBody() []byte
}

// result passes a generated response through when the API answered 2xx, and otherwise
// returns the API's error (or the transport's).
func result[R answered](resp R, err error) (R, error) {
	if err != nil {
		return resp, fmt.Errorf("call api: %w", err)
	}
	status := resp.StatusCode()
	if status >= 200 && status < 300 {
		return resp, nil
	}
	e := &apiError{Status: status}
	if json.Unmarshal(resp.GetBody(), &e.Body) != nil || e.Body.Message == "" {
		e.Body.Message = http.StatusText(status)
	}
	return resp, e
}

// statusOf returns the API status of err, or 0 when err is not an API answer.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// apiMessage is the API's message of err, for the page to show; "" when err is no API
// answer.
func apiMessage(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Body.Message
	}
	return ""
}
