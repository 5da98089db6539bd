package signature_test

import (
	"strings"
	"testing"
	"time"

	"github.com/surveyhooks/surveyhooks/signature"
)

// benchBody is a 2 KiB body, about the size of a survey response event.
var benchBody = []byte(`{"event_id":"evt_1","data":"` + strings.Repeat("x", 2048-39) + `"}`)

const benchSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func BenchmarkSign(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		signature.Sign(benchSecret, benchBody)
	}
}

// BenchmarkHeaders measures what the delivery activity does per attempt.
func BenchmarkHeaders(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	ts := time.Unix(1736937000, 0)
	for b.Loop() {
		signature.Headers([]string{benchSecret}, "msg_2b1c", ts, benchBody)
	}
}

func BenchmarkVerify(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	sig := signature.Sign(benchSecret, benchBody)
	for b.Loop() {
		if err := signature.Verify(benchSecret, sig, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}
