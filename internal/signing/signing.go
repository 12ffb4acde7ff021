// Package signing signs hookd's outgoing requests the Standard Webhooks
// way (https://www.standardwebhooks.com) and verifies such signatures, as
// a receiver does (hookd's tests use Verify to check what was sent).
//
// It must never log, return or format a secret or a key, and never compare
// signatures with anything but a constant-time comparison.
package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a Standard Webhooks request.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a secret whose key is base64 encoded, as Standard
// Webhooks libraries generate them.
const secretPrefix = "whsec_"

// Errors Verify returns; compare with errors.Is.
var (
	ErrNoSignature      = errors.New("signing: no signature matches")
	ErrInvalidTimestamp = errors.New("signing: invalid timestamp")
	ErrTimestampTooOld  = errors.New("signing: timestamp too old")
	ErrTimestampTooNew  = errors.New("signing: timestamp too new")
)

// Key returns the HMAC key of a secret: the decoded bytes of a
// "whsec_<base64>" secret, and the secret's own bytes otherwise (including
// a "whsec_" secret that is not valid base64, so any secret a user typed
// still signs).
func Key(secret string) []byte {
	if rest, ok := strings.CutPrefix(secret, secretPrefix); ok {
		if key, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return key
		}
	}
	return []byte(secret)
}

// Sign returns the webhook-signature value for a message:
// "v1," followed by the base64 HMAC-SHA256 of "msgID.timestamp.body".
func Sign(secret, msgID string, ts time.Time, body []byte) string {
	return SignAll([]string{secret}, msgID, ts, body)
}

// SignAll returns the webhook-signature value of a message signed with
// each secret, in order and space-separated ("v1,<new> v1,<old>" while a
// secret is being rotated), as Standard Webhooks specifies for several
// keys; a verifier accepts it if any signature matches a secret it holds.
// It is "" without secrets. The value is built in one buffer: the
// dispatcher signs every attempt.
func SignAll(secrets []string, msgID string, ts time.Time, body []byte) string {
	const v1 = "v1,"
	var enc [(sha256.Size + 2) / 3 * 4]byte // a sum in padded base64
	var b strings.Builder
	b.Grow(len(secrets) * (len(v1) + len(enc) + 1))
	for i, secret := range secrets {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v1)
		base64.StdEncoding.Encode(enc[:], mac(Key(secret), msgID, ts.Unix(), body))
		b.Write(enc[:])
	}
	return b.String()
}

// mac returns the HMAC-SHA256 of "msgID.unix.body". The part before the
// body is written to the hash from one buffer, which then takes the sum:
// each slice handed to a hash escapes, an allocation apiece.
func mac(key []byte, msgID string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	buf := make([]byte, 0, max(len(msgID)+22, sha256.Size)) // 22: two dots and an int64
	buf = append(buf, msgID...)
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, unix, 10)
	buf = append(buf, '.')
	// Writes to a hash never fail.
	h.Write(buf)
	h.Write(body)
	return h.Sum(buf[:0])
}

// Verify checks a Standard Webhooks request: the timestamp (decimal Unix
// seconds) must be within tolerance of now, and at least one of the
// space-separated "v1,<base64>" signatures in signatureHeader must match
// one of the secrets (several secrets allow rotating one). Entries with
// another version are ignored.
func Verify(secrets []string, msgID, timestamp, signatureHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	unix, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrInvalidTimestamp, timestamp)
	}
	ts := time.Unix(unix, 0)
	if now.Sub(ts) > tolerance {
		return ErrTimestampTooOld
	}
	if ts.Sub(now) > tolerance {
		return ErrTimestampTooNew
	}
	var sigs [][]byte
	for _, entry := range strings.Fields(signatureHeader) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		sigs = append(sigs, raw)
	}
	for _, secret := range secrets {
		want := mac(Key(secret), msgID, unix, body)
		for _, sig := range sigs {
			if subtle.ConstantTimeCompare(want, sig) == 1 {
				return nil
			}
		}
	}
	return ErrNoSignature
}
