package api

import (
	"context"
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
	edited    []time.Time // the updatedAt of each Edited
}

func (f *forgetting) Wake() {}

func (f *forgetting) Forget(id uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, id)
}

func (f *forgetting) Edited(_ uuid.UUID, updatedAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.edited = append(f.edited, updatedAt)
}

func (f *forgetting) edits() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.edited)
}

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

// An edit made on a clock behind the one that stamped the webhook's
// version (another node's, or this one's stepped back) still makes a
// newer version: the dispatcher gives back the deliveries it holds that
// read the webhook before an edit by their UpdatedAt being before the
// edit's (see delivery.Dispatcher.Edited), so an edit dated earlier than
// the version they read would let them go to the old URL.
func TestEditMovesTheVersionForward(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	f := &forgetting{}
	h := newAPIHarness(t, func(d *Deps) { d.Now, d.Dispatcher = func() time.Time { return now }, f })
	org := uuid.New()
	tok, _ := h.token(org)
	var w webhookBody
	if st := h.do(tok, "POST", "/organization/"+org.String()+"/webhook", `{`+editBase+`}`, &w); st != 201 {
		t.Fatalf("create: %d", st)
	}
	id := uuid.MustParse(w.ID)
	version := func() time.Time {
		t.Helper()
		got, err := h.db.WebhookGet(context.Background(), org, id)
		if err != nil {
			t.Fatal(err)
		}
		return got.UpdatedAt
	}
	for i, url := range []string{"https://example.com/new", "https://example.com/newer"} {
		read := version() // what a delivery claimed now carries
		now = now.Add(-time.Minute)
		if st := h.do(tok, "PUT", "/organization/"+org.String()+"/webhook/"+w.ID, `{"kind":"STANDARD","target_url":"`+url+`","events":["DEPLOYMENT_STARTED"]}`, nil); st != 200 {
			t.Fatalf("edit %d: %d", i+1, st)
		}
		edits := f.edits()
		if len(edits) != i+1 || !read.Before(edits[i]) {
			t.Fatalf("edit %d on a clock a minute behind: Edited with %v, want a time after %v, the version read before it", i+1, edits, read)
		}
		if got := version(); !got.Equal(edits[i]) {
			t.Fatalf("edit %d: the webhook stored at version %v, Edited told %v", i+1, got, edits[i])
		}
	}
}
