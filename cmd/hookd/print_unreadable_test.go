package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hookd/hookd/internal/client"
)

// A webhook or source whose secrets the server cannot decrypt is shown
// as such, not as one with no secret (which would say its deliveries go
// out unsigned, or that anyone may ingest).
func TestPrintUnreadable(t *testing.T) {
	var w client.Webhook
	if err := json.Unmarshal([]byte(`{"id":"w","kind":"STANDARD","target_url":"urn:hookd:unreadable","target_secret_set":false,"secrets_unreadable":true}`), &w); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := printWebhook(&out, &w, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cannot be decrypted") || strings.Contains(out.String(), "not set") {
		t.Errorf("printWebhook of an unreadable webhook:\n%s\nwant it said, and no \"not set\"", out.String())
	}
	var s client.Source
	if err := json.Unmarshal([]byte(`{"id":"s","kind":"FLUX","name":"f","secret_set":false,"secret_unreadable":true}`), &s); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := printSource(&out, &s, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cannot be decrypted") || strings.Contains(out.String(), "not set") {
		t.Errorf("printSource of an unreadable source:\n%s\nwant it said, and no \"not set\"", out.String())
	}
}
