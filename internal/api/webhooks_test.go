package api

import (
	"net/http"
	"slices"
	"sync"
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

// forgetting records what the API tells the dispatcher.
type forgetting struct {
	mu        sync.Mutex
	forgotten []uuid.UUID
}

func (f *forgetting) Wake() {}

func (f *forgetting) Forget(id uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, id)
}

func (f *forgetting) Edited(uuid.UUID, time.Time) {}

func (f *forgetting) ids() []uuid.UUID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.forgotten)
}

// A webhook deleted is forgotten by this node's dispatcher, which sends
// none of its deliveries it holds; a refused delete forgets nothing.
func TestDeleteForgetsTheWebhook(t *testing.T) {
	f := &forgetting{}
	h := newAPIHarness(t, func(d *Deps) { d.Dispatcher = f })
	org := uuid.New()
	tok, _ := h.token(org)
	var w webhookBody
	if st := h.do(tok, "POST", "/organization/"+org.String()+"/webhook", `{`+editBase+`}`, &w); st != 201 {
		t.Fatalf("create: %d", st)
	}
	hook := "/organization/" + org.String() + "/webhook/" + w.ID
	if st, _ := h.doWith(tok, "DELETE", hook, "", http.Header{"If-Match": {`"stale"`}}, nil); st != 412 {
		t.Fatalf("DELETE with a stale ETag: %d, want 412", st)
	}
	if got := f.ids(); len(got) != 0 {
		t.Fatalf("a refused delete forgot %v", got)
	}
	if st := h.do(tok, "DELETE", hook, "", nil); st != 204 {
		t.Fatalf("DELETE: %d", st)
	}
	if st := h.do(tok, "DELETE", hook, "", nil); st != 404 {
		t.Fatalf("DELETE again: %d, want 404", st)
	}
	if got := f.ids(); len(got) != 1 || got[0].String() != w.ID {
		t.Fatalf("forgotten %v, want the deleted webhook %s once", got, w.ID)
	}
}
