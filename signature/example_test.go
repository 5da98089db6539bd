package signature_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/surveyhooks/surveyhooks/signature"
)

func ExampleSign() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"event_id":"evt_1","event_type":"webhook.test","timestamp":"2025-01-15T10:30:00Z","data":{}}`)

	header := signature.Sign(secret, body)
	fmt.Println(header)

	// The receiver checks the X-Webhook-Signature value against the raw body.
	fmt.Println(signature.Verify(secret, header, body))
	fmt.Println(signature.Verify(secret, header, append(body, ' ')))
	// Output:
	// sha256=24520c2aceb39df0d8bca0968995df155c88c69b256a0e39fa8dde50c4695142
	// <nil>
	// signature: invalid signature
}

func ExampleVerifyStandard() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"event_id":"evt_1","event_type":"webhook.test","timestamp":"2025-01-15T10:30:00Z","data":{}}`)
	sent := time.Date(2025, 1, 15, 10, 30, 0, 0, time.UTC)

	// The sender's side: every signature header for one request.
	h := signature.Headers([]string{secret}, "msg_2b1c", sent, body)
	fmt.Println(h.Get(signature.HeaderWebhookTimestamp), h.Get(signature.HeaderWebhookSignature))

	// The receiver's side, one second later and an hour later.
	fmt.Println(signature.VerifyStandard(secret, h, body, sent.Add(time.Second), signature.DefaultTolerance))
	fmt.Println(signature.VerifyStandard(secret, h, body, sent.Add(time.Hour), signature.DefaultTolerance))
	// Output:
	// 1736937000 v1,jEL/XT7tP8vXgLg9zvrz44e7ELRgEvN6Qh0o9xxVLeU=
	// <nil>
	// signature: timestamp too old
}

func ExampleMiddleware() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	handler := signature.Middleware(secret)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, _ := signature.EventFromContext(r.Context())
		fmt.Println("received", ev.EventType, ev.EventID)
	}))

	body := `{"event_id":"evt_1","event_type":"survey.response.completed","timestamp":"2025-01-15T10:30:00Z","data":{}}`
	req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
	for name, values := range signature.Headers([]string{secret}, "msg_2b1c", time.Now(), []byte(body)) {
		req.Header[name] = values
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	// The same request with a body changed on the way is refused.
	req = httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(strings.Replace(body, "evt_1", "evt_2", 1)))
	req.Header = signature.Headers([]string{secret}, "msg_2b1c", time.Now(), []byte(body))
	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// received survey.response.completed evt_1
	// 200
	// 401 {"code":"invalid_signature","message":"Webhook signature is invalid."}
}
