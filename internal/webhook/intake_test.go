package webhook

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// ids hands out predictable ids, so a plan can be compared whole.
type ids struct{ n byte }

func (g *ids) next() uuid.UUID {
	g.n++
	return uuid.UUID{15: g.n}
}

var (
	orgA   = uuid.UUID{0: 0xa}
	orgB   = uuid.UUID{0: 0xb}
	hashX  = ContentHash(EventDeploymentStarted, []byte(`{"x":1}`))
	hashY  = ContentHash(EventDeploymentStarted, []byte(`{"y":1}`))
	t0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	leaseT = t0.Add(time.Minute)
)

func hook(id byte, edit func(*Webhook)) *Webhook {
	w := &Webhook{ID: uuid.UUID{0: 0xff, 15: id}, OrganizationID: orgA, Enabled: true, Events: EventTypes}
	if edit != nil {
		edit(w)
	}
	return w
}

func event(org uuid.UUID, key string, at time.Time, hash []byte) *Event {
	return &Event{OrganizationID: org, CreatedAt: at, Type: EventDeploymentStarted, IdempotencyKey: key,
		ProjectName: "api", EnvironmentMode: ModeProduction, ContentHash: hash}
}

// plannedTargets lists, per event of the batch, the webhooks planned a
// delivery (nil for an event not stored).
func plannedTargets(p *IntakePlan, n int) [][]uuid.UUID {
	out := make([][]uuid.UUID, n)
	for _, pe := range p.Store {
		out[pe.Index] = []uuid.UUID{}
		for _, d := range pe.Deliveries {
			out[pe.Index] = append(out[pe.Index], d.WebhookID)
		}
	}
	return out
}

func TestPlanIntakeTargets(t *testing.T) {
	match := hook(1, nil)
	disabled := hook(2, func(w *Webhook) { w.Enabled = false })
	otherType := hook(3, func(w *Webhook) { w.Events = []EventType{EventDeploymentFailure} })
	staging := hook(4, func(w *Webhook) { w.EnvironmentTypesFilter = []EnvironmentMode{ModeStaging} })
	apiOnly := hook(5, func(w *Webhook) { w.ProjectNamesFilter = []string{"AP*"} })
	hooks := []*Webhook{match, disabled, otherType, staging, apiOnly}

	tests := []struct {
		name string
		only uuid.UUID
		want []uuid.UUID
		code string
	}{
		{"matching, in webhook order", uuid.Nil, []uuid.UUID{match.ID, apiOnly.ID}, ""},
		{"OnlyWebhookID ignores state and filters", disabled.ID, []uuid.UUID{disabled.ID}, ""},
		{"OnlyWebhookID of another organization", uuid.UUID{1}, nil, ENotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event(orgA, "", t0, nil)
			ev.OnlyWebhookID = tt.only
			p, err := PlanIntake(IntakeInput{Events: []*Event{ev}, Webhooks: map[uuid.UUID][]*Webhook{orgA: hooks}})
			if ErrorCode(err) != tt.code {
				t.Fatalf("error %v, want code %q", err, tt.code)
			}
			if err != nil {
				return
			}
			if got := plannedTargets(p, 1)[0]; !slices.Equal(got, tt.want) {
				t.Fatalf("targets %v, want %v", got, tt.want)
			}
			if p.Receipts[0].Deliveries != len(tt.want) || len(p.Receipts[0].DeliveryIDs) != len(tt.want) {
				t.Fatalf("receipt %+v, want %d deliveries", p.Receipts[0], len(tt.want))
			}
		})
	}
}

func fromSource(kind SourceKind, ev *Event) *Event {
	ev.SourceKind = kind
	return ev
}

// A key is remembered for as long as its tool can send a copy: the id of
// one delivery for as long as the event is kept, a key made from what the
// event says (and an API caller's) for a day.
func TestKeyWindow(t *testing.T) {
	tests := []struct {
		kind SourceKind
		want time.Duration
	}{
		{"", IdempotencyWindow},
		{SourceGitHub, KeyKept},
		{SourceGitLab, KeyKept},
		{SourceQovery, KeyKept},
		{SourceFlux, IdempotencyWindow},
		{SourceArgoCD, IdempotencyWindow},
	}
	for _, tt := range tests {
		if got := KeyWindow(tt.kind); got != tt.want {
			t.Errorf("KeyWindow(%q) = %v, want %v", tt.kind, got, tt.want)
		}
	}
	// Every kind is decided, not left to the default by oversight.
	if len(tests) != len(SourceKinds)+1 {
		t.Errorf("%d kinds tested, want every one of %v", len(tests)-1, SourceKinds)
	}
}

func TestPlanIntakeIdempotency(t *testing.T) {
	held := KeyHolder{EventID: uuid.UUID{0: 0xee}, CreatedAt: t0, ContentHash: hashX, Deliveries: 3}
	tests := []struct {
		name     string
		holder   *KeyHolder // stored holder of "k" in orgA
		events   []*Event
		replayed []bool
		replayOf map[int]int
		release  bool // the stored holder lets go of the key
		keep     []bool
		code     string
	}{
		{name: "no key: new", events: []*Event{event(orgA, "", t0, hashX)}, replayed: []bool{false}, keep: []bool{true}},
		{name: "key not held: new", events: []*Event{event(orgA, "k", t0, hashX)}, replayed: []bool{false}, keep: []bool{true}},
		{name: "held, same content, within the window: replay", holder: &held,
			events: []*Event{event(orgA, "k", t0.Add(IdempotencyWindow-time.Microsecond), hashX)}, replayed: []bool{true}},
		{name: "held by another organization: new", holder: &held,
			events: []*Event{event(orgB, "k", t0, hashY)}, replayed: []bool{false}, keep: []bool{true}},
		{name: "held, at the window's end: new, the key moves", holder: &held,
			events: []*Event{event(orgA, "k", t0.Add(IdempotencyWindow), hashX)}, replayed: []bool{false}, release: true, keep: []bool{true}},
		{name: "held, other content, within the window: refused", holder: &held,
			events: []*Event{event(orgA, "k", t0.Add(time.Hour), hashY)}, code: EUnprocessable},
		{name: "held, other content, past the window: new", holder: &held,
			events: []*Event{event(orgA, "k", t0.Add(IdempotencyWindow), hashY)}, replayed: []bool{false}, release: true, keep: []bool{true}},
		{name: "held without a hash: replay whatever the content", holder: &KeyHolder{EventID: held.EventID, CreatedAt: t0, Deliveries: 3},
			events: []*Event{event(orgA, "k", t0.Add(time.Hour), hashY)}, replayed: []bool{true}},
		{name: "new event without a hash: replay", holder: &held,
			events: []*Event{event(orgA, "k", t0.Add(time.Hour), nil)}, replayed: []bool{true}},
		{name: "repeated within the batch: replay of the batch's event",
			events:   []*Event{event(orgA, "k", t0, hashX), event(orgA, "", t0, hashX), event(orgA, "k", t0.Add(time.Second), hashX)},
			replayed: []bool{false, false, true}, replayOf: map[int]int{2: 0}, keep: []bool{true, true}},
		{name: "repeated within the batch with other content: refused",
			events: []*Event{event(orgA, "k", t0, hashX), event(orgA, "k", t0.Add(time.Second), hashY)}, code: EUnprocessable},
		{name: "expired within the batch: the later event takes the key",
			events:   []*Event{event(orgA, "k", t0, hashX), event(orgA, "k", t0.Add(IdempotencyWindow), hashX)},
			replayed: []bool{false, false}, keep: []bool{false, true}},
		{name: "a GitHub redelivery 2 days later: replay", holder: &KeyHolder{EventID: held.EventID, CreatedAt: t0, Deliveries: 3},
			events: []*Event{fromSource(SourceGitHub, event(orgA, "k", t0.Add(48*time.Hour), nil))}, replayed: []bool{true}},
		{name: "a GitHub redelivery of a redelivery, a month later: replay", holder: &KeyHolder{EventID: held.EventID, CreatedAt: t0, Deliveries: 3},
			events: []*Event{fromSource(SourceGitHub, event(orgA, "k", t0.Add(30*24*time.Hour), nil))}, replayed: []bool{true}},
		{name: "a Flux repeat past the window: new, the key moves", holder: &KeyHolder{EventID: held.EventID, CreatedAt: t0, Deliveries: 3},
			events: []*Event{fromSource(SourceFlux, event(orgA, "k", t0.Add(IdempotencyWindow), nil))}, replayed: []bool{false}, release: true, keep: []bool{true}},
		{name: "a GitHub copy within the batch, 2 days later: replay of the batch's event",
			events:   []*Event{fromSource(SourceGitHub, event(orgA, "k", t0, nil)), fromSource(SourceGitHub, event(orgA, "k", t0.Add(48*time.Hour), nil))},
			replayed: []bool{false, true}, replayOf: map[int]int{1: 0}, keep: []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := IntakeInput{Events: tt.events, Webhooks: map[uuid.UUID][]*Webhook{orgA: {hook(1, nil)}}, NewID: (&ids{}).next}
			if tt.holder != nil {
				in.Holders = map[KeyRef]KeyHolder{{orgA, "k"}: *tt.holder}
			}
			p, err := PlanIntake(in)
			if ErrorCode(err) != tt.code {
				t.Fatalf("error %v, want code %q", err, tt.code)
			}
			if err != nil {
				return
			}
			for i, r := range p.Receipts {
				if r.Replayed != tt.replayed[i] {
					t.Fatalf("receipt %d replayed=%v, want %v", i, r.Replayed, tt.replayed[i])
				}
				if r.Replayed && (len(r.DeliveryIDs) != 0 || len(r.Tasks) != 0) {
					t.Fatalf("replay %d carries new deliveries: %+v", i, r)
				}
				if r.Replayed && tt.replayOf == nil && (r.ID != held.EventID || !r.CreatedAt.Equal(t0) || r.Deliveries != 3) {
					t.Fatalf("replay %d = %+v, want the holder's receipt", i, r)
				}
			}
			for i, j := range tt.replayOf {
				if p.ReplayOf[i] != j || p.Receipts[i].ID != p.Receipts[j].ID || p.Receipts[i].Deliveries != p.Receipts[j].Deliveries {
					t.Fatalf("receipt %d = %+v, want a replay of %d (%+v)", i, p.Receipts[i], j, p.Receipts[j])
				}
			}
			if len(p.ReplayOf) != len(tt.replayOf) {
				t.Fatalf("ReplayOf %v, want %v", p.ReplayOf, tt.replayOf)
			}
			var keep []bool
			for _, pe := range p.Store {
				keep = append(keep, pe.KeepKey)
				if (pe.Key() != nil) != (pe.KeepKey && pe.Event.IdempotencyKey != "") {
					t.Fatalf("event %d: Key() = %v with KeepKey %v", pe.Index, pe.Key(), pe.KeepKey)
				}
			}
			if !slices.Equal(keep, tt.keep) {
				t.Fatalf("stored events keep their key: %v, want %v", keep, tt.keep)
			}
			wantRelease := []EventRef(nil)
			if tt.release {
				wantRelease = []EventRef{{OrganizationID: orgA, ID: held.EventID}}
			}
			if !slices.Equal(p.Release, wantRelease) {
				t.Fatalf("Release %v, want %v", p.Release, wantRelease)
			}
		})
	}
}

func TestPlanIntakeLease(t *testing.T) {
	hooks := []*Webhook{hook(1, nil), hook(2, nil), hook(3, nil)}
	at := t0.Add(1234 * time.Nanosecond) // stored to the microsecond
	tests := []struct {
		name   string
		limit  int
		leased []int // per event
	}{
		{"no lease", 0, []int{0, 0}},
		{"room for some of the second event", 4, []int{3, 1}},
		{"room for all", 6, []int{3, 3}},
		{"more room than deliveries", 100, []int{3, 3}},
		{"room for one", 1, []int{1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := []*Event{event(orgA, "", at, nil), event(orgA, "", at, nil)}
			evs[0].OnlyWebhookID = uuid.Nil
			g := &ids{}
			p, err := PlanIntake(IntakeInput{Events: evs, Webhooks: map[uuid.UUID][]*Webhook{orgA: hooks},
				Lease: Lease{Now: t0, Until: leaseT, Limit: tt.limit}, NewID: g.next})
			if err != nil {
				t.Fatal(err)
			}
			stored := at.Truncate(time.Microsecond)
			for i, pe := range p.Store {
				r := p.Receipts[i]
				if pe.Event.ID == uuid.Nil || r.ID != pe.Event.ID {
					t.Fatalf("event %d has id %v, receipt %v", i, pe.Event.ID, r.ID)
				}
				if len(r.Tasks) != tt.leased[i] {
					t.Fatalf("event %d: %d tasks, want %d", i, len(r.Tasks), tt.leased[i])
				}
				for j, d := range pe.Deliveries {
					wantStatus, wantDue := DeliveryPending, stored
					if j < tt.leased[i] {
						wantStatus, wantDue = DeliveryRunning, leaseT
						task := r.Tasks[j]
						if task.Delivery != d || task.Webhook.ID != hooks[j].ID || task.Event.ID != pe.Event.ID ||
							!task.Event.CreatedAt.Equal(stored) || task.Event.CreatedAt.Location() != time.UTC {
							t.Fatalf("task %d of event %d = %+v, want delivery %+v", j, i, task, d)
						}
					}
					if d.Status != wantStatus || !d.DueAt.Equal(wantDue) || !d.CreatedAt.Equal(stored) || d.EventID != pe.Event.ID ||
						d.WebhookID != hooks[j].ID || d.EventType != EventDeploymentStarted || r.DeliveryIDs[j] != d.ID {
						t.Fatalf("delivery %d of event %d = %+v, want %s due %v", j, i, d, wantStatus, wantDue)
					}
				}
			}
		})
	}
}

func TestPlanAnswerFollowsReplays(t *testing.T) {
	evs := []*Event{event(orgA, "k", t0, hashX), event(orgA, "k", t0.Add(time.Second), hashX)}
	p, err := PlanIntake(IntakeInput{Events: evs, Webhooks: map[uuid.UUID][]*Webhook{orgA: {hook(1, nil)}}})
	if err != nil {
		t.Fatal(err)
	}
	winner := EventReceipt{ID: uuid.UUID{9}, CreatedAt: t0, Deliveries: 5, Replayed: true}
	p.Answer(0, winner)
	if p.Receipts[0].ID != winner.ID || p.Receipts[1].ID != winner.ID || p.Receipts[1].Deliveries != 5 || !p.Receipts[1].Replayed {
		t.Fatalf("receipts %+v, want both answering %v", p.Receipts, winner.ID)
	}
}

func TestContentHash(t *testing.T) {
	a := ContentHash(EventDeploymentStarted, []byte(`{}`))
	if !SameContent(a, ContentHash(EventDeploymentStarted, []byte(`{}`))) {
		t.Fatal("one content, two hashes")
	}
	if SameContent(a, ContentHash(EventDeploymentFailure, []byte(`{}`))) || SameContent(a, ContentHash(EventDeploymentStarted, []byte(`{ }`))) {
		t.Fatal("other type or payload, same hash")
	}
	if !SameContent(nil, a) || !SameContent(a, nil) {
		t.Fatal("a missing hash must match anything")
	}
	e := KeyReused("k1", uuid.UUID{1})
	if e.Code != EUnprocessable || e.Field != "Idempotency-Key" {
		t.Fatalf("KeyReused = %+v", e)
	}
}

// The content hash is of what the caller sent: a deployment id hookd
// makes up does not count, one the caller sent does.
func TestNewEventContentHash(t *testing.T) {
	d := validDeployment()
	d.DeploymentID = ""
	a, b := NewEvent(testOrg, d, testEventID, testNow, "k"), NewEvent(testOrg, d, testEventID, testNow.Add(time.Hour), "k")
	if !slices.Equal(a.ContentHash, b.ContentHash) || len(a.ContentHash) == 0 {
		t.Fatal("the same body without a deployment id hashed differently")
	}
	d.DeploymentID = "dep-1"
	c := NewEvent(testOrg, d, testEventID, testNow, "k")
	d.DeploymentID = "dep-2"
	if e := NewEvent(testOrg, d, testEventID, testNow, "k"); slices.Equal(c.ContentHash, e.ContentHash) || slices.Equal(a.ContentHash, c.ContentHash) {
		t.Fatal("bodies with other deployment ids hashed alike")
	}
	if ev := NewEvent(testOrg, d, testEventID, testNow, ""); ev.ContentHash != nil || ev.IdempotencyKey != "" {
		t.Fatal("an event without a key got a hash")
	}
	if c.IdempotencyKey != "k" {
		t.Fatalf("key %q, want k", c.IdempotencyKey)
	}
}

// A lease is asked for with one reading of the clock and its end: one
// without its Now, or ending before it, is a mistake, refused before
// anything is planned, whichever backend plans it.
func TestPlanIntakeRefusesAHalfLease(t *testing.T) {
	org := uuid.New()
	for _, l := range []Lease{
		{Until: leaseT, Limit: 1},
		{Now: t0, Until: t0, Limit: 1},
		{Now: leaseT, Until: t0, Limit: 1},
	} {
		ev := &Event{OrganizationID: org, CreatedAt: t0, Type: EventDeploymentStarted}
		if _, err := PlanIntake(IntakeInput{Events: []*Event{ev}, Lease: l}); ErrorCode(err) != EInvalid {
			t.Errorf("lease %+v: %v, want %s", l, err, EInvalid)
		}
	}
	// No lease asked for: nothing to check.
	ev := &Event{OrganizationID: org, CreatedAt: t0, Type: EventDeploymentStarted}
	if _, err := PlanIntake(IntakeInput{Events: []*Event{ev}}); err != nil {
		t.Errorf("no lease: %v", err)
	}
}
