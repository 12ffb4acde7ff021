package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hookd/hookd/internal/webhook"
)

func testEventsCreateMatching(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org, other := newID(t), newID(t)

	all := newWebhook(t, org)
	failureOnly := newWebhook(t, org)
	failureOnly.Events = []webhook.EventType{webhook.EventDeploymentFailure}
	disabled := newWebhook(t, org)
	disabled.Enabled = false
	project := newWebhook(t, org)
	project.ProjectNamesFilter = []string{"API-*"}
	otherProject := newWebhook(t, org)
	otherProject.ProjectNamesFilter = []string{"front"}
	prod := newWebhook(t, org)
	prod.EnvironmentTypesFilter = []webhook.EnvironmentMode{webhook.ModeProduction}
	staging := newWebhook(t, org)
	staging.EnvironmentTypesFilter = []webhook.EnvironmentMode{webhook.ModeStaging}
	foreign := newWebhook(t, other)
	hooks := []*webhook.Webhook{all, failureOnly, disabled, project, otherProject, prod, staging}
	for _, w := range append(hooks, foreign) {
		createWebhook(t, s, w)
	}

	ev1 := newEvent(t, org, base) // STARTED, api-gateway, PRODUCTION
	ev2 := newEvent(t, org, base.Add(time.Second))
	ev2.Type = webhook.EventDeploymentFailure
	ev2.ProjectName = "front"
	ev2.EnvironmentMode = webhook.ModeStaging
	for _, ev := range []*webhook.Event{ev1, ev2} {
		var want []uuid.UUID
		for _, w := range hooks {
			if w.Matches(ev) {
				want = append(want, w.ID)
			}
		}
		r := createEvents(t, s, ev)[0]
		if r.Replayed || r.ID != ev.ID || r.Deliveries != len(want) || len(r.DeliveryIDs) != len(want) {
			t.Fatalf("receipt %+v, want id %v and %d deliveries", r, ev.ID, len(want))
		}
		wantTime(t, "receipt CreatedAt", r.CreatedAt, ev.CreatedAt)

		var got []uuid.UUID
		for _, w := range hooks {
			ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.EventID != ev.ID {
					continue
				}
				got = append(got, w.ID)
				if !slices.Contains(r.DeliveryIDs, d.ID) {
					t.Fatalf("delivery %v not in receipt %v", d.ID, r.DeliveryIDs)
				}
				want := webhook.Delivery{
					ID: d.ID, OrganizationID: org, WebhookID: w.ID, EventID: ev.ID,
					CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt,
					Status: webhook.DeliveryPending, DueAt: ev.CreatedAt, EventType: ev.Type,
				}
				wantEqual(t, "new delivery", *d, want)
			}
		}
		sortIDs(got)
		sortIDs(want)
		wantEqual(t, "matched webhooks of "+string(ev.Type), got, want)
	}
	// Sanity check on the expectations themselves.
	if !all.Matches(ev1) || !project.Matches(ev1) || !prod.Matches(ev1) || disabled.Matches(ev1) {
		t.Fatal("Matches disagrees with the suite")
	}

	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: other, WebhookID: foreign.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Fatalf("another organization's webhook got %d deliveries", len(ds))
	}

	// An event nothing matches is still stored and acknowledged.
	none := newEvent(t, newID(t), base)
	r := createEvents(t, s, none)[0]
	if r.ID != none.ID || r.Deliveries != 0 || len(r.DeliveryIDs) != 0 || r.Replayed {
		t.Fatalf("receipt of unmatched event: %+v", r)
	}
}

func testEventsCreateOnlyWebhook(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org)) // would match, but OnlyWebhookID wins
	target := newWebhook(t, org)
	target.Enabled = false
	target.Events = []webhook.EventType{webhook.EventDeploymentFailure}
	target.ProjectNamesFilter = []string{"nothing-matches"}
	createWebhook(t, s, target)

	ev := newEvent(t, org, base)
	ev.OnlyWebhookID = target.ID
	r := createEvents(t, s, ev)[0]
	if r.Deliveries != 1 || len(r.DeliveryIDs) != 1 {
		t.Fatalf("receipt %+v, want one delivery", r)
	}
	d := getDelivery(t, s, org, target.ID, r.DeliveryIDs[0])
	if d.EventID != ev.ID || d.Status != webhook.DeliveryPending {
		t.Fatalf("delivery %+v", d)
	}

	// Another organization's webhook cannot be targeted.
	foreign := createWebhook(t, s, newWebhook(t, newID(t)))
	ev2 := newEvent(t, org, base)
	ev2.OnlyWebhookID = foreign.ID
	_, err := s.EventsCreate(ctx, []*webhook.Event{ev2}, webhook.Lease{})
	wantCode(t, err, webhook.ENotFound)
	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: foreign.OrganizationID, WebhookID: foreign.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Fatalf("foreign webhook got %d deliveries", len(ds))
	}
}

func testEventsCreateIdempotency(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org, orgB := newID(t), newID(t)
	w1 := createWebhook(t, s, newWebhook(t, org))
	createWebhook(t, s, newWebhook(t, org))
	createWebhook(t, s, newWebhook(t, orgB))

	countDeliveries := func() int {
		t.Helper()
		ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w1.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}

	first := newEvent(t, org, base)
	first.IdempotencyKey = "key-1"
	r1 := createEvents(t, s, first)[0]
	if r1.Replayed || r1.Deliveries != 2 {
		t.Fatalf("first receipt %+v", r1)
	}

	again := newEvent(t, org, base.Add(webhook.IdempotencyWindow-time.Second))
	again.IdempotencyKey = "key-1"
	r2 := createEvents(t, s, again)[0]
	if !r2.Replayed || r2.ID != first.ID || r2.Deliveries != 2 || len(r2.DeliveryIDs) != 0 {
		t.Fatalf("replayed receipt %+v, want first event %v with 2 deliveries", r2, first.ID)
	}
	wantTime(t, "replayed CreatedAt", r2.CreatedAt, first.CreatedAt)
	if n := countDeliveries(); n != 1 {
		t.Fatalf("webhook has %d deliveries after a replay, want 1", n)
	}

	// The key is per organization.
	b := newEvent(t, orgB, base.Add(time.Second))
	b.IdempotencyKey = "key-1"
	rb := createEvents(t, s, b)[0]
	if rb.Replayed || rb.ID != b.ID || rb.Deliveries != 1 {
		t.Fatalf("other org receipt %+v", rb)
	}

	// Past the window the key starts a new event; the old one stays.
	late := newEvent(t, org, base.Add(webhook.IdempotencyWindow+time.Second))
	late.IdempotencyKey = "key-1"
	r3 := createEvents(t, s, late)[0]
	if r3.Replayed || r3.ID != late.ID || r3.Deliveries != 2 {
		t.Fatalf("late receipt %+v", r3)
	}
	if n := countDeliveries(); n != 2 {
		t.Fatalf("webhook has %d deliveries, want 2 (old event kept)", n)
	}
	for _, id := range r1.DeliveryIDs {
		if slices.Contains(r3.DeliveryIDs, id) {
			t.Fatal("late event reused a delivery id")
		}
	}

	// And the newest event now owns the key.
	later := newEvent(t, org, late.CreatedAt.Add(time.Minute))
	later.IdempotencyKey = "key-1"
	r4 := createEvents(t, s, later)[0]
	if !r4.Replayed || r4.ID != late.ID {
		t.Fatalf("receipt %+v, want replay of %v", r4, late.ID)
	}
}

// A tool's delivery id (GitHub's here) is remembered as long as its event
// is kept, so the tool's copy days later is a replay; a key made from what
// a Flux event says lasts IdempotencyWindow, as an API caller's. The
// kind an event came from is not stored: a leased task's event is the
// event as claimed.
func testEventsCreateSourceKey(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	fromSource := func(kind webhook.SourceKind, key string, at time.Time) *webhook.Event {
		ev := newEvent(t, org, at)
		ev.IdempotencyKey, ev.SourceKind = key, kind
		return ev
	}

	first := fromSource(webhook.SourceGitHub, "source:gh:344177809", base)
	rs, err := s.EventsCreate(ctx, []*webhook.Event{first}, webhook.Lease{Now: base, Until: base.Add(time.Minute), Limit: 1})
	if err != nil {
		t.Fatalf("EventsCreate: %v", err)
	}
	if rs[0].Replayed || len(rs[0].Tasks) != 1 {
		t.Fatalf("first receipt %+v, want a new event with its delivery leased", rs[0])
	}
	stored := *first
	stored.SourceKind = ""
	wantEqual(t, "Task.Event", rs[0].Tasks[0].Event, stored)

	// GitHub redelivers a delivery of the past 3 days, a redelivery too.
	for _, later := range []time.Duration{48 * time.Hour, 5 * 24 * time.Hour} {
		r := createEvents(t, s, fromSource(webhook.SourceGitHub, first.IdempotencyKey, base.Add(later)))[0]
		if !r.Replayed || r.ID != first.ID || r.Deliveries != 1 {
			t.Fatalf("GitHub's copy %v later: receipt %+v, want a replay of %v", later, r, first.ID)
		}
	}
	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d deliveries after GitHub's copies, want 1", len(ds))
	}

	failed := fromSource(webhook.SourceFlux, "source:flux:webapp@main/731f7ea:ValidationFailed", base)
	createEvents(t, s, failed)
	again := fromSource(webhook.SourceFlux, failed.IdempotencyKey, base.Add(webhook.IdempotencyWindow))
	if r := createEvents(t, s, again)[0]; r.Replayed || r.ID != again.ID {
		t.Fatalf("Flux's event a day later: receipt %+v, want the new event %v", r, again.ID)
	}
}

// An Idempotency-Key reused with other content is refused, and stores
// nothing; with the same content it replays, and the hash is kept with
// the event.
func testEventsCreateKeyReused(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	withHash := func(ev *webhook.Event) *webhook.Event {
		ev.IdempotencyKey = "reused"
		ev.ContentHash = webhook.ContentHash(ev.Type, ev.Payload)
		return ev
	}
	first := withHash(newEvent(t, org, base))
	r1 := createEvents(t, s, first)[0]

	other := newEvent(t, org, base.Add(time.Minute))
	other.Payload = json.RawMessage(`{"other":true}`)
	_, err := s.EventsCreate(ctx, []*webhook.Event{withHash(other)}, webhook.Lease{})
	wantCode(t, err, webhook.EUnprocessable)
	// In a batch too: the whole batch is refused (the caller retries one by one).
	_, err = s.EventsCreate(ctx, []*webhook.Event{newEvent(t, org, base), other}, webhook.Lease{})
	wantCode(t, err, webhook.EUnprocessable)
	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d deliveries after refused reuses, want 1", len(ds))
	}

	same := withHash(newEvent(t, org, base.Add(time.Minute)))
	r2 := createEvents(t, s, same)[0]
	if !r2.Replayed || r2.ID != r1.ID {
		t.Fatalf("same content: receipt %+v, want a replay of %v", r2, r1.ID)
	}
	// The stored hash is read back with the event.
	tasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 10})
	if len(tasks) != 1 {
		t.Fatalf("claimed %d tasks, want 1", len(tasks))
	}
	wantEqual(t, "claimed event", tasks[0].Event, *first)

	// Past the window other content starts a new event.
	late := newEvent(t, org, base.Add(webhook.IdempotencyWindow))
	late.Payload = json.RawMessage(`{"other":true}`)
	if r := createEvents(t, s, withHash(late))[0]; r.Replayed || r.ID != late.ID {
		t.Fatalf("past the window: receipt %+v, want event %v", r, late.ID)
	}
}

func testEventsCreateBatch(t *testing.T, s webhook.Store) {
	orgA, orgB := newID(t), newID(t)
	wa := createWebhook(t, s, newWebhook(t, orgA))
	createWebhook(t, s, newWebhook(t, orgB))
	createWebhook(t, s, newWebhook(t, orgB))

	e1 := newEvent(t, orgA, base)
	e1.IdempotencyKey = "k"
	e2 := newEvent(t, orgB, base)
	e3 := newEvent(t, orgA, base.Add(time.Second))
	e3.IdempotencyKey = "k" // repeats e1 within the same batch
	e4 := newEvent(t, orgA, base.Add(2*time.Second))
	rs := createEvents(t, s, e1, e2, e3, e4)

	want := []struct {
		id       uuid.UUID
		n        int
		replayed bool
	}{{e1.ID, 1, false}, {e2.ID, 2, false}, {e1.ID, 1, true}, {e4.ID, 1, false}}
	for i, w := range want {
		if rs[i].ID != w.id || rs[i].Deliveries != w.n || rs[i].Replayed != w.replayed {
			t.Fatalf("receipt %d = %+v, want %+v", i, rs[i], w)
		}
	}
	ds, err := s.DeliveryList(context.Background(), webhook.DeliveryListParams{OrganizationID: orgA, WebhookID: wa.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 {
		t.Fatalf("orgA webhook has %d deliveries, want 2", len(ds))
	}
}

// A batch of keyed events, across organizations, finds each key's own
// holder: several replays in one batch, the same key in two
// organizations, and a new key beside them.
func testEventsCreateBatchReplays(t *testing.T, s webhook.Store) {
	orgA, orgB := newID(t), newID(t)
	createWebhook(t, s, newWebhook(t, orgA))
	createWebhook(t, s, newWebhook(t, orgB))
	keyed := func(org uuid.UUID, at time.Duration, key string) *webhook.Event {
		ev := newEvent(t, org, base.Add(at))
		ev.IdempotencyKey = key
		return ev
	}
	aa, ab, ba := keyed(orgA, 0, "a"), keyed(orgA, time.Second, "b"), keyed(orgB, 2*time.Second, "a")
	createEvents(t, s, aa, ab, ba)

	c := keyed(orgA, time.Minute, "c")
	rs := createEvents(t, s, keyed(orgB, time.Minute, "a"), keyed(orgA, time.Minute, "b"), c, keyed(orgA, time.Minute, "a"))
	for i, want := range []struct {
		id       uuid.UUID
		replayed bool
	}{{ba.ID, true}, {ab.ID, true}, {c.ID, false}, {aa.ID, true}} {
		if rs[i].ID != want.id || rs[i].Replayed != want.replayed || rs[i].Deliveries != 1 {
			t.Errorf("receipt %d = %+v, want event %v, replayed %t, 1 delivery", i, rs[i], want.id, want.replayed)
		}
	}
}

// Deliveries leased at intake come back as DeliveryClaim would return
// them, stay leased until the lease ends, and are claimed like any other
// after that (a process that died before sending them).
func testEventsCreateLease(t *testing.T, s webhook.Store) {
	org := newID(t)
	var hooks []*webhook.Webhook
	for range 3 {
		hooks = append(hooks, createWebhook(t, s, newWebhook(t, org)))
	}
	evs := []*webhook.Event{newEvent(t, org, base), newEvent(t, org, base.Add(time.Second))}
	evs[0].IdempotencyKey = "lease"
	until := base.Add(time.Minute)
	rs, err := s.EventsCreate(context.Background(), evs, webhook.Lease{Now: base, Until: until, Limit: 4})
	if err != nil {
		t.Fatalf("EventsCreate: %v", err)
	}
	if len(rs[0].Tasks) != 3 || len(rs[1].Tasks) != 1 {
		t.Fatalf("leased %d and %d deliveries, want 3 and 1 (Limit 4 over the batch)", len(rs[0].Tasks), len(rs[1].Tasks))
	}
	var leased []uuid.UUID
	for i, r := range rs {
		for j, tk := range r.Tasks {
			leased = append(leased, tk.Delivery.ID)
			wantEqual(t, "Task.Delivery.ID", tk.Delivery.ID, r.DeliveryIDs[j])
			wantEqual(t, "Task.Event", tk.Event, *evs[i])
			wantEqual(t, "Task.Webhook", tk.Webhook, *hooks[j])
			d := getDelivery(t, s, org, hooks[j].ID, tk.Delivery.ID)
			wantEqual(t, "stored leased delivery", *d, tk.Delivery)
			if d.Status != webhook.DeliveryRunning || !d.DueAt.Equal(until) {
				t.Fatalf("leased delivery is %s due %s, want running until %s", d.Status, d.DueAt, until)
			}
		}
	}

	// Before the lease ends only the two deliveries left pending are due.
	now := base.Add(30 * time.Second)
	got := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
	want := []uuid.UUID{rs[1].DeliveryIDs[1], rs[1].DeliveryIDs[2]}
	sortIDs(want)
	wantEqual(t, "claimed during the intake lease", taskIDs(got), want)
	// After it, the leased ones are taken over.
	got = claim(t, s, webhook.ClaimParams{Now: until, LeaseUntil: until.Add(time.Minute), Limit: 10})
	sortIDs(leased)
	wantEqual(t, "claimed after the intake lease", taskIDs(got), leased)

	// A replayed event leases nothing; Limit 0 leases nothing.
	again := *evs[0]
	again.ID = uuid.Nil
	rs, err = s.EventsCreate(context.Background(), []*webhook.Event{&again, newEvent(t, org, base)}, webhook.Lease{Now: base, Until: until, Limit: 10})
	if err != nil {
		t.Fatalf("EventsCreate: %v", err)
	}
	if !rs[0].Replayed || len(rs[0].Tasks) != 0 || len(rs[1].Tasks) != 3 {
		t.Fatalf("replayed %v with %d tasks, then %d tasks; want a replay with none, then 3", rs[0].Replayed, len(rs[0].Tasks), len(rs[1].Tasks))
	}
	rs = createEvents(t, s, newEvent(t, org, base))
	if len(rs[0].Tasks) != 0 {
		t.Fatalf("no lease asked, %d tasks returned", len(rs[0].Tasks))
	}
}

// An event matching many webhooks gets one delivery for each, whatever
// the backend's write batching: 101 is no multiple of any batch size.
func testEventsCreateFanout(t *testing.T, s webhook.Store) {
	org := newID(t)
	hooks := map[uuid.UUID]bool{}
	for range 101 {
		hooks[createWebhook(t, s, newWebhook(t, org)).ID] = true
	}
	r := createEvents(t, s, newEvent(t, org, base))[0]
	if r.Deliveries != 101 || len(r.DeliveryIDs) != 101 {
		t.Fatalf("%d deliveries (%d ids), want 101", r.Deliveries, len(r.DeliveryIDs))
	}
	got := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 500})
	if len(got) != 101 {
		t.Fatalf("claimed %d deliveries, want 101", len(got))
	}
	for _, tk := range got {
		if !hooks[tk.Webhook.ID] {
			t.Fatalf("a second delivery to webhook %s", tk.Webhook.ID)
		}
		delete(hooks, tk.Webhook.ID)
	}
}

// Intake and claims act on the webhooks as they are at that moment: each
// kind of change reaches the next event and the next claim. A backend
// may keep the webhooks it read (SQLite's writer does), so every change
// here comes between two uses of the same organization's webhooks.
func testEventsCreateSeesWebhookChanges(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	// send sends one event, leasing its deliveries, and returns its tasks.
	send := func(step string) []*webhook.Task {
		t.Helper()
		rs, err := s.EventsCreate(ctx, []*webhook.Event{newEvent(t, org, base)}, webhook.Lease{Now: base, Until: base.Add(time.Minute), Limit: 10})
		if err != nil {
			t.Fatalf("%s: EventsCreate: %v", step, err)
		}
		return rs[0].Tasks
	}
	// sentTo checks whom the next event goes to, and with what.
	sentTo := func(step string, want ...*webhook.Webhook) []*webhook.Task {
		t.Helper()
		tasks := send(step)
		var got []webhook.Webhook
		for _, tk := range tasks {
			got = append(got, tk.Webhook)
		}
		var stored []webhook.Webhook
		for _, h := range want {
			stored = append(stored, *getWebhook(t, s, org, h.ID))
		}
		wantEqual(t, step+": the webhooks of the next event's tasks", got, stored)
		return tasks
	}
	sentTo("created", w)

	edit := func(id uuid.UUID, step string, change func(*webhook.Webhook)) {
		t.Helper()
		cur := getWebhook(t, s, org, id)
		change(cur)
		if err := replaceWebhook(ctx, s, cur, nil); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	edit(w.ID, "a new target and secret", func(h *webhook.Webhook) { h.TargetURL, h.TargetSecret = "https://example.com/edited", "n3w-secret" })
	if tasks := sentTo("a new target and secret", w); tasks[0].Webhook.TargetSecret != "n3w-secret" {
		t.Fatalf("the next event is signed with %q, want the new secret", tasks[0].Webhook.TargetSecret)
	}

	// A claim, too, takes the webhook as it is when it claims.
	pending := deliver(t, s, org, base)
	edit(w.ID, "a claim after an edit", func(h *webhook.Webhook) { h.TargetURL = "https://example.com/claimed" })
	now := base.Add(time.Minute) // the leases of the events above end: they are due again too
	tasks := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 100})
	found := false
	for _, tk := range tasks {
		wantEqual(t, "a claimed task's webhook after an edit", tk.Webhook, *getWebhook(t, s, org, w.ID))
		found = found || tk.Delivery.ID == pending
	}
	if !found {
		t.Fatalf("the pending delivery %s was not claimed", pending)
	}

	second := createWebhook(t, s, newWebhook(t, org))
	tasks = sentTo("a second webhook created", w, second)

	// hookd disabling a webhook (an outcome) is a change like any other.
	a := newAttempt(t, &tasks[1].Delivery, 1, 410, base.Add(time.Second))
	complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliveryFailed, DisableReason: "the receiver answered 410 Gone",
		Lease: tasks[1].Delivery.Lease, WebhookUpdatedAt: tasks[1].Webhook.UpdatedAt})
	sentTo("the second disabled by an outcome", w)

	if err := deleteWebhook(ctx, s, org, w.ID, nil); err != nil {
		t.Fatal(err)
	}
	sentTo("the first deleted")
	edit(second.ID, "the second enabled again", func(h *webhook.Webhook) { h.Enabled, h.DisabledReason = true, "" })
	sentTo("the second enabled again", second)
}

// Keys are any text without a NUL (a tool's delivery id, an Idempotency-Key
// header): each is found again as it was stored, whatever a JSON or SQL
// text would escape in it, and none is taken for another that differs
// only in case or in how a character is composed.
func testEventsCreateOddKeys(t *testing.T, s webhook.Store) {
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org))
	keys := []string{`q"uote`, `back\slash`, `\u0041`, "A", "a", "é", "e\u0301", "日本 😀", "<tag>&amp;",
		"line\u2028sep\u2029", "tab\tnew\nline\r", "ctl\x01\x1f\x7f", "'; --", "null", "1", " a ", strings.Repeat("k", 255)}
	batch := func(at time.Duration) []*webhook.Event {
		evs := make([]*webhook.Event, len(keys))
		for i, k := range keys {
			evs[i] = newEvent(t, org, base.Add(at))
			evs[i].IdempotencyKey = k
		}
		return evs
	}
	first := batch(0)
	for i, r := range createEvents(t, s, first...) {
		if r.Replayed {
			t.Errorf("key %q: its first event is answered as a replay of %v", keys[i], r.ID)
		}
	}
	for i, r := range createEvents(t, s, batch(time.Minute)...) {
		if !r.Replayed || r.ID != first[i].ID {
			t.Errorf("key %q sent again: receipt %+v, want a replay of %v", keys[i], r, first[i].ID)
		}
	}
}
