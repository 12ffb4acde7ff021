package signing

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

type vector struct {
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	MsgID     string `json:"msg_id"`
	Timestamp int64  `json:"timestamp"`
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no test vectors")
	}
	return vs
}

func TestSignVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			got := Sign(v.Secret, v.MsgID, time.Unix(v.Timestamp, 0), []byte(v.Payload))
			if got != v.Signature {
				t.Errorf("Sign = %s, want %s", got, v.Signature)
			}
			now := time.Unix(v.Timestamp, 0).Add(time.Minute)
			err := Verify([]string{v.Secret}, v.MsgID, strconv.FormatInt(v.Timestamp, 10), v.Signature, []byte(v.Payload), now, 5*time.Minute)
			if err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	v := loadVectors(t)[0]
	ts := strconv.FormatInt(v.Timestamp, 10)
	at := time.Unix(v.Timestamp, 0)
	body := []byte(v.Payload)
	const tolerance = 5 * time.Minute
	other := "whsec_" + "c2VjcmV0LW9mLWFub3RoZXItd2ViaG9vaw=="

	tests := []struct {
		name    string
		secrets []string
		msgID   string
		ts      string
		header  string
		body    []byte
		now     time.Time
		want    error
	}{
		{"valid", []string{v.Secret}, v.MsgID, ts, v.Signature, body, at, nil},
		{"bad signature", []string{v.Secret}, v.MsgID, ts, "v1,Z0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", body, at, ErrNoSignature},
		{"not base64", []string{v.Secret}, v.MsgID, ts, "v1,!!!", body, at, ErrNoSignature},
		{"other version", []string{v.Secret}, v.MsgID, ts, "v1a" + v.Signature[2:], body, at, ErrNoSignature},
		{"empty header", []string{v.Secret}, v.MsgID, ts, "", body, at, ErrNoSignature},
		{"wrong secret", []string{other}, v.MsgID, ts, v.Signature, body, at, ErrNoSignature},
		{"no secret", nil, v.MsgID, ts, v.Signature, body, at, ErrNoSignature},
		{"tampered body", []string{v.Secret}, v.MsgID, ts, v.Signature, []byte(`{"test": 2432232315}`), at, ErrNoSignature},
		{"other message id", []string{v.Secret}, "msg_other", ts, v.Signature, body, at, ErrNoSignature},
		{"old timestamp", []string{v.Secret}, v.MsgID, ts, v.Signature, body, at.Add(tolerance + time.Second), ErrTimestampTooOld},
		{"future timestamp", []string{v.Secret}, v.MsgID, ts, v.Signature, body, at.Add(-tolerance - time.Second), ErrTimestampTooNew},
		{"edge of tolerance", []string{v.Secret}, v.MsgID, ts, v.Signature, body, at.Add(tolerance), nil},
		{"invalid timestamp", []string{v.Secret}, v.MsgID, "yesterday", v.Signature, body, at, ErrInvalidTimestamp},
		{"multi-signature, match second", []string{v.Secret}, v.MsgID, ts, "v1,Z0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= " + v.Signature, body, at, nil},
		{"multi-signature, extra spaces", []string{v.Secret}, v.MsgID, ts, "  " + v.Signature + "   v1,abc ", body, at, nil},
		{"rotated secrets", []string{other, v.Secret}, v.MsgID, ts, v.Signature, body, at, nil},
		{"signed with both secrets", []string{other}, v.MsgID, ts, v.Signature + " " + Sign(other, v.MsgID, at, body), body, at, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secrets, tt.msgID, tt.ts, tt.header, tt.body, tt.now, tolerance)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	tests := []struct{ secret, want string }{
		{"whsec_c2VjcmV0", "secret"},
		{"plain-secret", "plain-secret"},
		{"whsec_not base64!", "whsec_not base64!"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := string(Key(tt.secret)); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.secret, got, tt.want)
		}
	}
}

func TestSignRawSecretRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	sig := Sign("typed-by-a-person", "msg_1", at, body)
	if err := Verify([]string{"typed-by-a-person"}, "msg_1", "1700000000", sig, body, at, time.Minute); err != nil {
		t.Fatal(err)
	}
	// A whsec_ secret stands for its decoded bytes: the same key.
	if err := Verify([]string{"whsec_dHlwZWQtYnktYS1wZXJzb24="}, "msg_1", "1700000000", sig, body, at, time.Minute); err != nil {
		t.Fatalf("whsec_ of the same bytes: %v", err)
	}
}

// TestSignAll is a rotation as a receiver sees it: a request signed with
// the new and the old secret verifies with either, new first, and with
// nothing else.
func TestSignAll(t *testing.T) {
	at := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	const oldSecret, newSecret = "whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0", "new-secret-typed-by-a-person"
	header := SignAll([]string{newSecret, oldSecret}, "msg_1", at, body)
	if want := Sign(newSecret, "msg_1", at, body) + " " + Sign(oldSecret, "msg_1", at, body); header != want {
		t.Fatalf("SignAll = %q, want %q", header, want)
	}
	for _, secrets := range [][]string{{newSecret}, {oldSecret}, {"unrelated", oldSecret}} {
		if err := Verify(secrets, "msg_1", "1700000000", header, body, at, time.Minute); err != nil {
			t.Errorf("Verify with %d secret(s): %v", len(secrets), err)
		}
	}
	if err := Verify([]string{"unrelated"}, "msg_1", "1700000000", header, body, at, time.Minute); !errors.Is(err, ErrNoSignature) {
		t.Errorf("Verify with another secret = %v, want ErrNoSignature", err)
	}
	if got := SignAll([]string{newSecret}, "msg_1", at, body); got != Sign(newSecret, "msg_1", at, body) {
		t.Errorf("SignAll of one secret = %q, want that secret's signature alone", got)
	}
	if got := SignAll(nil, "msg_1", at, body); got != "" {
		t.Errorf("SignAll without secrets = %q, want empty", got)
	}
}
