package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// onBothBackends runs fn against the API on SQLite, and on PostgreSQL
// when HOOKD_TEST_POSTGRES_URL is set.
func onBothBackends(t *testing.T, fn func(t *testing.T, h *apiHarness), opts ...func(*Deps)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newAPIHarness(t, opts...)) })
	t.Run("postgres", func(t *testing.T) {
		fn(t, newAPIHarnessOn(t, pgtest.Migrated(t, postgres.Open, storetest.Keys(t)), opts...))
	})
}

// editRounds is how many times each race is run: enough that a
// read-then-write edit loses at least one (it lost 15 of 20 and more).
const editRounds = 20

const editBase = `"kind":"STANDARD","target_url":"https://example.com/h","events":["DEPLOYMENT_STARTED"]`

// race runs each function at once, as far as goroutines allow.
func race(fns ...func()) {
	var start, done sync.WaitGroup
	start.Add(1)
	for _, fn := range fns {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			fn()
		}()
	}
	start.Done()
	done.Wait()
}

type webhookBody struct {
	ID              string `json:"id"`
	TargetSecretSet bool   `json:"target_secret_set"`
	Description     string `json:"description"`
	Enabled         bool   `json:"enabled"`
	DisabledReason  string `json:"disabled_reason"`
}

// TestEditNeverRestoresARemovedSecret races a PUT that removes the secret
// with one that changes only the description: the secret must stay
// removed whichever commits first (revoking a leaked secret relies on it).
func TestEditNeverRestoresARemovedSecret(t *testing.T) {
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		org := uuid.New()
		tok, _ := h.token(org)
		base := "/organization/" + org.String() + "/webhook"
		for i := range editRounds {
			var w webhookBody
			if st := h.do(tok, "POST", base, `{`+editBase+`,"target_secret":"leaked-secret"}`, &w); st != 201 {
				t.Fatalf("create: %d", st)
			}
			var st1, st2 int
			race(
				func() {
					st1 = h.do(tok, "PUT", base+"/"+w.ID, `{`+editBase+`,"target_secret":"","description":"renamed"}`, nil)
				},
				func() { st2 = h.do(tok, "PUT", base+"/"+w.ID, `{`+editBase+`,"description":"renamed"}`, nil) },
			)
			if st1 != 200 || st2 != 200 {
				t.Fatalf("round %d: edits answered %d and %d", i, st1, st2)
			}
			var got webhookBody
			h.do(tok, "GET", base+"/"+w.ID, "", &got)
			if got.TargetSecretSet || got.Description != "renamed" {
				t.Fatalf("round %d: after both edits the webhook is %+v, want the secret removed and the description changed", i, got)
			}
		}
	})
}

// TestEditNeverReenablesWhatHookdDisabled races hookd disabling a webhook
// (its target answered 410) with a PUT that does not name `enabled`.
func TestEditNeverReenablesWhatHookdDisabled(t *testing.T) {
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		ctx := context.Background()
		org := uuid.New()
		tok, _ := h.token(org)
		base := "/organization/" + org.String() + "/webhook"
		for i := range editRounds {
			var w webhookBody
			if st := h.do(tok, "POST", base, `{`+editBase+`}`, &w); st != 201 {
				t.Fatalf("create: %d", st)
			}
			if st := h.do(tok, "POST", base+"/"+w.ID+"/test", "", nil); st/100 != 2 {
				t.Fatalf("test event: %d", st)
			}
			now := time.Now()
			tasks, err := h.db.DeliveryClaim(ctx, webhook.ClaimParams{Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute), Limit: 10})
			// An earlier round's delivery may be due again too (see below).
			tasks = slices.DeleteFunc(tasks, func(tk *webhook.Task) bool { return tk.Webhook.ID.String() != w.ID })
			if err != nil || len(tasks) != 1 {
				t.Fatalf("claim: %v, %d tasks of the webhook", err, len(tasks))
			}
			tk := tasks[0]
			gone := webhook.Outcome{Status: webhook.DeliveryFailed, DisableReason: "the target answered 410 Gone",
				Attempt: webhook.Attempt{ID: uuid.New(), OrganizationID: org, WebhookID: tk.Webhook.ID, DeliveryID: tk.Delivery.ID,
					EventID: tk.Event.ID, CreatedAt: now.UTC(), Number: 1, Kind: tk.Webhook.Kind, TargetURL: tk.Webhook.TargetURL, StatusCode: 410},
				Lease: tk.Delivery.Lease, WebhookUpdatedAt: tk.Webhook.UpdatedAt}
			var st int
			race(
				func() {
					if res, err := h.db.DeliveryComplete(ctx, []webhook.Outcome{gone}); err != nil || len(res.Stale) != 0 {
						t.Errorf("DeliveryComplete: %v, stale %v", err, res.Stale)
					}
				},
				func() { st = h.do(tok, "PUT", base+"/"+w.ID, `{`+editBase+`,"description":"renamed"}`, nil) },
			)
			if st != 200 {
				t.Fatalf("round %d: the edit answered %d", i, st)
			}
			var got webhookBody
			h.do(tok, "GET", base+"/"+w.ID, "", &got)
			if got.Description != "renamed" {
				t.Fatalf("round %d: the edit did not rename the webhook: %+v", i, got)
			}
			if !got.Enabled {
				if got.DisabledReason == "" {
					t.Fatalf("round %d: disabled with no reason: %+v", i, got)
				}
				continue
			}
			// The edit came first: the 410 answered for the webhook as it
			// was, so it disabled nothing, and its delivery is due again
			// (webhook.Outcome.Against). Enabled with the delivery failed
			// would be the edit enabling what hookd disabled.
			d, err := h.db.DeliveryGet(ctx, org, tk.Webhook.ID, tk.Delivery.ID)
			if err != nil || d.Status != webhook.DeliveryPending || got.DisabledReason != "" {
				t.Fatalf("round %d: after hookd's disable and an edit the webhook is %+v and its delivery %v (%v); want it disabled, or its delivery pending",
					i, got, d, err)
			}
		}
	})
}

// TestEditAuditBeforeIsTheReplacedRow runs concurrent edits of one
// webhook: each audit entry's "before" must be the previous entry's
// "after", never a value an earlier read saw.
func TestEditAuditBeforeIsTheReplacedRow(t *testing.T) {
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		org := uuid.New()
		tok, _ := h.token(org)
		base := "/organization/" + org.String()
		var w webhookBody
		if st := h.do(tok, "POST", base+"/webhook", `{`+editBase+`,"description":"d-start"}`, &w); st != 201 {
			t.Fatalf("create: %d", st)
		}
		edits := make([]func(), editRounds)
		for i := range edits {
			edits[i] = func() {
				if st := h.do(tok, "PUT", base+"/webhook/"+w.ID, fmt.Sprintf(`{%s,"description":"d-%d"}`, editBase, i), nil); st != 200 {
					t.Errorf("edit %d: %d", i, st)
				}
			}
		}
		race(edits...)
		var page struct {
			Results []struct {
				Action  string `json:"action"`
				Changes []struct {
					Field  string          `json:"field"`
					Before json.RawMessage `json:"before"`
					After  json.RawMessage `json:"after"`
				} `json:"changes"`
			} `json:"results"`
		}
		if st := h.do(tok, "GET", base+"/audit?limit=100", "", &page); st != 200 {
			t.Fatalf("audit: %d", st)
		}
		if len(page.Results) != editRounds+1 {
			t.Fatalf("%d audit entries, want %d", len(page.Results), editRounds+1)
		}
		want := `"d-start"`
		for i := len(page.Results) - 2; i >= 0; i-- { // oldest edit first
			e := page.Results[i]
			if len(e.Changes) != 1 || e.Changes[0].Field != "description" {
				t.Fatalf("entry %d changed %+v, want the description alone", i, e.Changes)
			}
			if got := string(e.Changes[0].Before); got != want {
				t.Fatalf("entry %d says the description was %s, but the edit before it left %s", i, got, want)
			}
			want = string(e.Changes[0].After)
		}
		var got webhookBody
		h.do(tok, "GET", base+"/webhook/"+w.ID, "", &got)
		if `"`+got.Description+`"` != want {
			t.Fatalf("the webhook's description is %q, the newest entry says %s", got.Description, want)
		}
	})
}

// TestIfMatch checks the optional strict concurrency: GET's ETag, 412 for
// a stale If-Match on PUT and DELETE, and no change behind a refusal.
func TestIfMatch(t *testing.T) {
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		org := uuid.New()
		tok, _ := h.token(org)
		base := "/organization/" + org.String() + "/webhook"
		var w webhookBody
		if st := h.do(tok, "POST", base, `{`+editBase+`}`, &w); st != 201 {
			t.Fatalf("create: %d", st)
		}
		hook := base + "/" + w.ID
		st, hdr := h.doHeader(tok, "GET", hook, "", nil)
		first := hdr.Get("ETag")
		if st != 200 || first == "" {
			t.Fatalf("GET: %d, ETag %q", st, first)
		}
		if _, again := h.doHeader(tok, "GET", hook, "", nil); again.Get("ETag") != first {
			t.Fatalf("the ETag changed without a change: %q then %q", first, again.Get("ETag"))
		}
		ifMatch := func(tag string) http.Header { return http.Header{"If-Match": {tag}} }

		st, hdr = h.doWith(tok, "PUT", hook, `{`+editBase+`,"description":"one"}`, ifMatch(first), nil)
		second := hdr.Get("ETag")
		if st != 200 || second == "" || second == first {
			t.Fatalf("PUT with the current ETag: %d, ETag %q (was %q)", st, second, first)
		}
		if st, _ := h.doWith(tok, "PUT", hook, `{`+editBase+`,"description":"lost"}`, ifMatch(first), nil); st != 412 {
			t.Fatalf("PUT with a stale ETag: %d, want 412", st)
		}
		if st, _ := h.doWith(tok, "PUT", hook, `{`+editBase+`,"description":"weak"}`, ifMatch("W/"+second), nil); st != 412 {
			t.Fatalf("PUT with a weak ETag: %d, want 412 (If-Match compares strongly)", st)
		}
		if st, _ := h.doWith(tok, "DELETE", hook, "", ifMatch(first), nil); st != 412 {
			t.Fatalf("DELETE with a stale ETag: %d, want 412", st)
		}
		var got webhookBody
		h.do(tok, "GET", hook, "", &got)
		if got.Description != "one" {
			t.Fatalf("after refused changes the description is %q, want \"one\"", got.Description)
		}
		if st, _ := h.doWith(tok, "PUT", hook, `{`+editBase+`,"description":"two"}`, ifMatch(`"other", `+second), nil); st != 200 {
			t.Fatalf("PUT with a list holding the current ETag: %d", st)
		}
		if st := h.do(tok, "PUT", hook, `{`+editBase+`,"description":"three"}`, nil); st != 200 {
			t.Fatalf("PUT without If-Match (Qovery's clients): %d", st)
		}
		_, hdr = h.doHeader(tok, "GET", hook, "", nil)
		if st, _ := h.doWith(tok, "DELETE", hook, "", ifMatch(hdr.Get("ETag")), nil); st != 204 {
			t.Fatalf("DELETE with the current ETag: %d", st)
		}
		if st, _ := h.doWith(tok, "PUT", hook, `{`+editBase+`}`, ifMatch("*"), nil); st != 404 {
			t.Fatalf("PUT If-Match: * on a deleted webhook: %d, want 404", st)
		}
	})
}

// TestSourceIfMatch checks sources take If-Match as webhooks do: GET,
// POST and PUT answer with an ETag, a PUT or DELETE naming a stale one
// is refused with 412 and changes nothing, and a PUT without one is
// made.
func TestSourceIfMatch(t *testing.T) {
	onBothBackends(t, func(t *testing.T, h *apiHarness) {
		org := uuid.New()
		tok, _ := h.token(org)
		base := "/organization/" + org.String() + "/source"
		body := func(name string) string {
			return `{"kind":"FLUX","name":"` + name + `","environment_types":[{"pattern":"prod*","type":"PRODUCTION"}]}`
		}
		var src struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		st, hdr := h.doWith(tok, "POST", base, `{"kind":"FLUX","name":"flux","secret":"0123456789abcdef0123"}`, nil, &src)
		created := hdr.Get("ETag")
		if st != 201 || created == "" {
			t.Fatalf("create: %d, ETag %q", st, created)
		}
		path := base + "/" + src.ID
		st, hdr = h.doHeader(tok, "GET", path, "", nil)
		first := hdr.Get("ETag")
		if st != 200 || first != created {
			t.Fatalf("GET: %d, ETag %q; the create answered %q", st, first, created)
		}
		ifMatch := func(tag string) http.Header { return http.Header{"If-Match": {tag}} }

		st, hdr = h.doWith(tok, "PUT", path, body("one"), ifMatch(first), nil)
		second := hdr.Get("ETag")
		if st != 200 || second == "" || second == first {
			t.Fatalf("PUT with the current ETag: %d, ETag %q (was %q)", st, second, first)
		}
		if st, _ := h.doWith(tok, "PUT", path, body("lost"), ifMatch(first), nil); st != 412 {
			t.Fatalf("PUT with a stale ETag: %d, want 412", st)
		}
		// A new secret alone changes the version too: the form that read
		// the old one must not save over it unawares.
		if st, _ := h.doWith(tok, "PUT", path, `{"kind":"FLUX","name":"one","secret":"another-secret-0123456789"}`, ifMatch(second), nil); st != 200 {
			t.Fatalf("PUT of a new secret with the current ETag: %d", st)
		}
		if st, _ := h.doWith(tok, "PUT", path, body("lost"), ifMatch(second), nil); st != 412 {
			t.Fatalf("PUT naming the version before a secret change: %d, want 412", st)
		}
		h.do(tok, "GET", path, "", &src)
		if src.Name != "one" {
			t.Fatalf("after refused edits the name is %q, want \"one\"", src.Name)
		}
		if st := h.do(tok, "PUT", path, body("two"), nil); st != 200 {
			t.Fatalf("PUT without If-Match: %d", st)
		}
		if st, _ := h.doWith(tok, "DELETE", path, "", ifMatch(second), nil); st != 412 {
			t.Fatalf("DELETE with a stale ETag: %d, want 412", st)
		}
		if st := h.do(tok, "GET", path, "", nil); st != 200 {
			t.Fatalf("GET after a refused DELETE: %d, want 200", st)
		}
		_, hdr = h.doHeader(tok, "GET", path, "", nil)
		if st, _ := h.doWith(tok, "DELETE", path, "", ifMatch(hdr.Get("ETag")), nil); st != 204 {
			t.Fatalf("DELETE with the current ETag: %d", st)
		}
	})
}

// A webhook or source whose encryption key is gone (taken out of
// HOOKD_ENCRYPTION_KEY) is still listed and read, marked, with what
// cannot be decrypted empty, so that its owner sees it beside the others
// and can delete it with the ETag last read; what needs the secrets (an
// edit, a send, an ingest) is refused, saying why.
func TestKeyGone(t *testing.T) {
	for _, c := range []struct {
		resource, create, edit, marker string
	}{
		{"webhook", `{"kind":"STANDARD","target_url":"https://example.com/h","events":["DEPLOYMENT_STARTED"],"target_secret":"x"}`,
			`{"kind":"STANDARD","target_url":"https://example.com/h","events":["DEPLOYMENT_STARTED"],"description":"renamed"}`, "secrets_unreadable"},
		{"source", `{"kind":"FLUX","name":"flux","secret":"0123456789abcdef0123"}`, `{"kind":"FLUX","name":"renamed"}`, "secret_unreadable"},
	} {
		t.Run(c.resource, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "api.db")
			withKey := newAPIHarnessOn(t, openSQLite(t, db))
			org := uuid.New()
			tok, _ := withKey.token(org)
			var created struct{ ID string }
			st, hdr := withKey.doWith(tok, "POST", "/organization/"+org.String()+"/"+c.resource, c.create, nil, &created)
			if st != 201 {
				t.Fatalf("create: %d", st)
			}
			stale := hdr.Get("ETag")
			list := "/organization/" + org.String() + "/" + c.resource
			path := list + "/" + created.ID
			st, hdr = withKey.doWith(tok, "PUT", path, c.edit, nil, nil)
			current := hdr.Get("ETag")
			if st != 200 || current == stale {
				t.Fatalf("edit: %d, ETag %q (was %q)", st, current, stale)
			}

			keyGone := newAPIHarnessOn(t, openSQLite(t, db))
			var got map[string]any
			st, hdr = keyGone.doWith(tok, "GET", path, "", nil, &got)
			if st != 200 || got[c.marker] != true || hdr.Get("ETag") != current {
				t.Fatalf("GET without the key: %d, %s %v, ETag %q; want 200, marked, ETag %q", st, c.marker, got[c.marker], hdr.Get("ETag"), current)
			}
			for field, want := range map[string]any{"target_url": "urn:hookd:unreadable", "target_secret_set": false, "secret_set": false, "name": "renamed", "description": "renamed"} {
				if v, ok := got[field]; ok && v != want {
					t.Errorf("GET without the key: %s = %v, want %v", field, v, want)
				}
			}
			var listed struct{ Results []map[string]any }
			if st := keyGone.do(tok, "GET", list, "", &listed); st != 200 || len(listed.Results) != 1 || listed.Results[0][c.marker] != true {
				t.Fatalf("list without the key: %d, %v; want 200 and the resource marked", st, listed.Results)
			}
			if st := withKey.do(tok, "GET", path, "", &got); st != 200 || got[c.marker] != false {
				t.Fatalf("GET with the key: %d, %s %v; want 200, not marked", st, c.marker, got[c.marker])
			}

			var refusal struct{ Detail string }
			refused := func(what, method, path, body string) {
				t.Helper()
				if st := keyGone.do(tok, method, path, body, &refusal); st != 409 || !strings.Contains(refusal.Detail, "HOOKD_ENCRYPTION_KEY") {
					t.Errorf("%s without the key: %d %q, want 409 saying the key is missing", what, st, refusal.Detail)
				}
			}
			refused("PUT", "PUT", path, c.edit) // it would store the secret empty
			if c.resource == "webhook" {
				refused("a test event", "POST", path+"/test", "")
				refused("a retry", "POST", path+"/delivery/"+uuid.NewString()+"/retry", "")
				refused("a recovery", "POST", path+"/recover", `{"since":"`+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)+`"}`)
			} else {
				if st := keyGone.ingest(path+"/ingest", `{}`, map[string]string{"Authorization": "Bearer 0123456789abcdef0123"}, nil); st != 500 {
					t.Errorf("ingest without the key: %d, want 500 (the operator's doing, not the tool's)", st)
				}
			}

			ifMatch := func(tag string) http.Header { return http.Header{"If-Match": {tag}} }
			if st, _ := keyGone.doWith(tok, "DELETE", path, "", ifMatch(stale), nil); st != 412 {
				t.Fatalf("DELETE without the key, naming a stale ETag: %d, want 412", st)
			}
			if st, _ := keyGone.doWith(tok, "DELETE", path, "", ifMatch(current), nil); st != 204 {
				t.Fatalf("DELETE without the key, naming the ETag last read: %d, want 204", st)
			}
			if st := withKey.do(tok, "GET", path, "", nil); st != 404 {
				t.Fatalf("GET after the DELETE: %d, want 404", st)
			}
		})
	}
}

// Ingests to a source whose key is gone are logged once a minute with
// how many went unlogged, not once each: whoever holds the ingest URL
// could otherwise fill the log.
func TestKeyGoneIngestLoggedOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "api.db")
	withKey := newAPIHarnessOn(t, openSQLite(t, db))
	org := uuid.New()
	tok, _ := withKey.token(org)
	var created struct{ ID string }
	if st := withKey.do(tok, "POST", "/organization/"+org.String()+"/source", `{"kind":"FLUX","name":"flux","secret":"0123456789abcdef0123"}`, &created); st != 201 {
		t.Fatalf("create: %d", st)
	}
	var logs syncBuffer
	c := newClock()
	keyGone := newAPIHarnessOn(t, openSQLite(t, db), withLimits(Limits{}, c), func(d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	ingest := "/organization/" + org.String() + "/source/" + created.ID + "/ingest"
	send := func(n int) {
		t.Helper()
		for i := range n {
			if st := keyGone.ingest(ingest, `{}`, map[string]string{"Authorization": "Bearer 0123456789abcdef0123"}, nil); st != 500 {
				t.Fatalf("ingest %d without the key: %d, want 500", i+1, st)
			}
		}
	}
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "level=ERROR") {
				out = append(out, l)
			}
		}
		return out
	}
	send(5)
	got := lines()
	if len(got) != 1 || !strings.Contains(got[0], created.ID) || !strings.Contains(got[0], "cannot decrypt") {
		t.Fatalf("5 ingests without the key logged %d error lines, want 1 naming the source and why:\n%s", len(got), logs.String())
	}
	c.Advance(59 * time.Second)
	send(1)
	c.Advance(time.Second)
	send(1)
	got = lines()
	if len(got) != 2 || !strings.Contains(got[1], "repeated=5") {
		t.Fatalf("a minute later: %d error lines, want 2, the second saying 5 went unlogged:\n%s", len(got), logs.String())
	}
}
