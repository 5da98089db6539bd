package signature_test

import (
	"crypto/ed25519"
	"fmt"
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

// BenchmarkHeadersBySigning measures one attempt's signing at 1 KiB and 64 KiB for each way
// a webhook signs: HMAC under the default and the bare-hex profile, and ed25519.
func BenchmarkHeadersBySigning(b *testing.B) {
	key, err := signature.GenerateSigningKey()
	if err != nil {
		b.Fatal(err)
	}
	private, err := signature.ParseSigningKey(key)
	if err != nil {
		b.Fatal(err)
	}
	hexProfile := signature.Profile{Header: signature.HeaderSignature, Format: signature.FormatHex}
	ts := time.Unix(1736937000, 0)
	for _, size := range []int{1 << 10, 64 << 10} {
		body := []byte(`{"event_id":"evt_1","data":"` + strings.Repeat("x", size-31) + `"}`)
		for _, c := range []struct {
			name    string
			profile signature.Profile
			keys    signature.Keys
		}{
			{"hmac", signature.DefaultProfile, signature.Keys{Secrets: []string{benchSecret}}},
			{"hmac-hex", hexProfile, signature.Keys{Secrets: []string{benchSecret}}},
			{"ed25519", signature.DefaultProfile, signature.Keys{SigningKeys: []ed25519.PrivateKey{private}}},
		} {
			b.Run(fmt.Sprintf("%s/%dKiB", c.name, size>>10), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					c.profile.Headers(c.keys, "msg_2b1c", ts, body)
				}
			})
		}
	}
}
