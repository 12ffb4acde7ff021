package delivery

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/signing"
)

// TestSetHeaders checks what a receiver gets with no secret, one, and
// two during a rotation: every signature verifies with its secret, and
// Qovery's headers only ever carry the current one.
func TestSetHeaders(t *testing.T) {
	now := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	const eventID = "0190a6d2-0000-7000-8000-0000000000e1"
	tests := []struct {
		name    string
		secrets []string
		sigs    int
	}{
		{"unsigned", nil, 0},
		{"one secret", []string{"whsec_bmV3LXNlY3JldA=="}, 1},
		{"rotation", []string{"whsec_bmV3LXNlY3JldA==", "old-secret"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			SetHeaders(h, eventID, tt.secrets, now, body)
			// Set as written (lowercase), as Standard Webhooks names them.
			get := func(k string) string { return strings.Join(h[k], ",") }
			if get("webhook-id") != eventID || get("webhook-timestamp") != "1700000000" {
				t.Fatalf("webhook-id %q, webhook-timestamp %q", get("webhook-id"), get("webhook-timestamp"))
			}
			sig := get("webhook-signature")
			if n := len(strings.Fields(sig)); n != tt.sigs {
				t.Fatalf("webhook-signature has %d signatures, want %d", n, tt.sigs)
			}
			for _, s := range tt.secrets {
				if err := signing.Verify([]string{s}, eventID, "1700000000", sig, body, now, time.Minute); err != nil {
					t.Errorf("does not verify with one of the secrets: %v", err)
				}
			}
			want := ""
			if len(tt.secrets) > 0 {
				want = tt.secrets[0]
			}
			if h.Get("Qovery-Signature") != want || h.Get("Qovery-Secret") != want || len(h.Values("Qovery-Secret")) > 1 {
				t.Errorf("Qovery headers should carry the current secret alone")
			}
		})
	}
}
