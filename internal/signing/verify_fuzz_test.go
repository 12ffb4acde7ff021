package signing

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strconv"
	"testing"
	"time"
)

// FuzzVerify checks Sign and Verify against each other: what Sign made
// verifies with the same secret, and fails once a body byte or the key
// changes; Verify survives any header a sender may put on a request.
func FuzzVerify(f *testing.F) {
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "other", "msg_1", int64(1_700_000_000), []byte(`{"a":1}`), uint(3), "1700000000", "v1,abc v2,def")
	f.Add("a", "a\x00", "", int64(0), []byte{}, uint(0), " 12 ", "v1,")
	f.Add("whsec_!!!", "whsec_", "id", int64(-1), []byte("x"), uint(99), "-9223372036854775808", "v1,=====")
	f.Fuzz(func(t *testing.T, secret, other, msgID string, unix int64, body []byte, flip uint, tsHeader, sigHeader string) {
		// Keep the timestamp where time.Unix round-trips and the tolerance
		// arithmetic cannot overflow.
		unix %= 1 << 40
		ts := time.Unix(unix, 0)
		const tolerance = 5 * time.Minute
		sig := Sign(secret, msgID, ts, body)
		header := strconv.FormatInt(unix, 10)
		if err := Verify([]string{secret}, msgID, header, sig, body, ts, tolerance); err != nil {
			t.Fatalf("Verify of what Sign made: %v", err)
		}
		if len(body) > 0 {
			flipped := bytes.Clone(body)
			flipped[flip%uint(len(flipped))] ^= 0x01
			if err := Verify([]string{secret}, msgID, header, sig, flipped, ts, tolerance); !errors.Is(err, ErrNoSignature) {
				t.Fatalf("Verify with a flipped body byte = %v, want ErrNoSignature", err)
			}
		}
		if !sameHMACKey(Key(secret), Key(other)) {
			if err := Verify([]string{other}, msgID, header, sig, body, ts, tolerance); !errors.Is(err, ErrNoSignature) {
				t.Fatalf("Verify with another secret = %v, want ErrNoSignature", err)
			}
		}
		// Arbitrary headers: any answer is fine, a panic is not.
		_ = Verify([]string{secret, other}, msgID, tsHeader, sigHeader, body, ts, tolerance)
		_ = Verify(nil, msgID, tsHeader, sigHeader, body, time.Time{}, tolerance)
	})
}

// sameHMACKey reports whether HMAC-SHA256 treats a and b as one key: it
// hashes keys longer than the block (64 bytes) and pads shorter ones with
// zeros, so "a" and "a\x00" sign alike. That is HMAC's nature, not a flaw
// of Sign, and the fuzzer would otherwise find it at once.
func sameHMACKey(a, b []byte) bool {
	norm := func(k []byte) []byte {
		if len(k) > sha256.BlockSize {
			s := sha256.Sum256(k)
			k = s[:]
		}
		return bytes.TrimRight(k, "\x00")
	}
	return bytes.Equal(norm(a), norm(b))
}
