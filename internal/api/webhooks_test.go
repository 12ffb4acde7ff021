package api

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestWebhookRotationGrace checks the webhook answer says until when the
// previous secret still signs deliveries, and only while it does.
func TestWebhookRotationGrace(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	h := newAPIHarness(t, func(d *Deps) { d.Now, d.SecretRotationGrace = clock, 24*time.Hour })
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String() + "/webhook"
	type answer struct {
		ID           string     `json:"id"`
		ExpiresAt    *time.Time `json:"previous_secret_expires_at"`
		FailingSince *time.Time `json:"failing_since"`
	}
	var w answer
	if st := h.do(tok, "POST", base, `{"kind":"STANDARD","target_url":"https://example.com/h","events":["DEPLOYMENT_STARTED"],"target_secret":"one"}`, &w); st != 201 || w.ExpiresAt != nil || w.FailingSince != nil {
		t.Fatalf("create: %d %+v, want no grace and not failing", st, w)
	}
	edit := func(secret string) answer {
		t.Helper()
		var a answer
		body := `{"kind":"STANDARD","target_url":"https://example.com/h","events":["DEPLOYMENT_STARTED"]` + secret + `}`
		if st := h.do(tok, "PUT", base+"/"+w.ID, body, &a); st != 200 {
			t.Fatalf("edit: %d", st)
		}
		return a
	}
	if a := edit(""); a.ExpiresAt != nil {
		t.Fatalf("an edit that keeps the secret shows a grace: %v", a.ExpiresAt)
	}
	if a := edit(`,"target_secret":"two"`); a.ExpiresAt == nil || !a.ExpiresAt.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("after a rotation, previous_secret_expires_at = %v, want %v", a.ExpiresAt, now.Add(24*time.Hour))
	}
	now = now.Add(23 * time.Hour)
	if h.do(tok, "GET", base+"/"+w.ID, "", &w); w.ExpiresAt == nil {
		t.Fatal("the grace ended early")
	}
	now = now.Add(time.Hour)
	if h.do(tok, "GET", base+"/"+w.ID, "", &w); w.ExpiresAt != nil {
		t.Fatalf("the grace is still shown once over: %v", w.ExpiresAt)
	}
	edit(`,"target_secret":"three"`)
	if a := edit(`,"target_secret":""`); a.ExpiresAt != nil {
		t.Fatalf("removing the secret must end the grace at once, shows %v", a.ExpiresAt)
	}
}
