package jsoncanon_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/surveyhooks/surveyhooks/jsoncanon"
	"github.com/surveyhooks/surveyhooks/signature"
)

// benchEnvelope is an event envelope of about size bytes as encoding/json writes it: a
// survey response whose answers hold text with HTML characters and accents, numbers and
// member names that are array indices, so that every path of Canonical is taken.
func benchEnvelope(size int) []byte {
	var answers []string
	for n := 0; ; n++ {
		a := fmt.Sprintf(`{"questionId":"q%d","type":"text","value":"Tom \u0026 Jerry \u003c3 Caf\u00e9 \ud83d\ude00",`+
			`"score":%d.5,"weight":1.0,"choices":{"2":"no","1":"yes"},"skipped":false,"note":null}`, n, n%10)
		if len(strings.Join(answers, ","))+len(a)+200 > size {
			break
		}
		answers = append(answers, a)
	}
	body := `{"event_id":"evt_01J9Z3K5","event_type":"survey.response.completed","timestamp":"2025-01-15T10:30:00.123Z",` +
		`"data":{"survey":{"id":"survey-1","title":"NPS"},"response":{"id":"r-1","answers":[` + strings.Join(answers, ",") + `]}}}`
	return []byte(body)
}

var benchSizes = []struct {
	name string
	size int
}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}}

func BenchmarkCanonical(b *testing.B) {
	for _, s := range benchSizes {
		body := benchEnvelope(s.size)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := jsoncanon.Canonical(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCanonicalAndSign is what an envelope costs from the publisher's data to its
// X-Webhook-Signature: the canonical form once per event, the HMAC once per attempt.
func BenchmarkCanonicalAndSign(b *testing.B) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, s := range benchSizes {
		body := benchEnvelope(s.size)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				canonical, err := jsoncanon.Canonical(body)
				if err != nil {
					b.Fatal(err)
				}
				signature.Sign(secret, canonical)
			}
		})
	}
}

// BenchmarkSign is the HMAC alone over the same canonical bodies, beside which the
// canonical form's share shows.
func BenchmarkSign(b *testing.B) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for _, s := range benchSizes {
		body, err := jsoncanon.Canonical(benchEnvelope(s.size))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				signature.Sign(secret, body)
			}
		})
	}
}
