package signing

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkSign signs one envelope-sized body, as the dispatcher does for
// every attempt to a webhook with a secret; a whsec_ secret is decoded on
// each call, which is part of what is measured.
func BenchmarkSign(b *testing.B) {
	body := bytes.Repeat([]byte(`{"k":"value"}`), 60) // about 800 bytes
	ts := time.Unix(1735689600, 0)
	for _, tc := range []struct{ name, secret string }{
		{"whsec", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		{"plain", "a plain shared secret"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				Sign(tc.secret, "0190a6d2-0000-7000-8000-0000000000e1", ts, body)
			}
		})
	}
}
