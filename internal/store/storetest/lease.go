package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// Leases are fenced: every claim gives the delivery a new Lease, and an
// outcome, renewal or release made under an older one changes nothing.
// These tests play two workers, A whose lease expired (paused, cut off)
// and B which took the delivery over.

// takeOver makes one delivery, leases it to A, lets the lease expire and
// leases it to B.
func takeOver(t *testing.T, s webhook.Store) (a, b *webhook.Task) {
	t.Helper()
	as := []*webhook.Task{leaseOne(t, s)}
	if got := claim(t, s, webhook.ClaimParams{Now: base.Add(59 * time.Second), LeaseUntil: base.Add(2 * time.Minute), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d deliveries while A's lease runs, want 0", len(got))
	}
	bs := claim(t, s, webhook.ClaimParams{Now: base.Add(61 * time.Second), LeaseUntil: base.Add(2 * time.Minute), Limit: 10})
	if len(bs) != 1 || bs[0].Delivery.ID != as[0].Delivery.ID {
		t.Fatalf("B claimed %d deliveries after A's lease expired, want A's", len(bs))
	}
	if bs[0].Delivery.Lease == as[0].Delivery.Lease {
		t.Fatalf("B's lease token = A's (%d): a claim must change it", bs[0].Delivery.Lease)
	}
	return as[0], bs[0]
}

// leaseOne makes one delivery and leases it from base for a minute.
func leaseOne(t *testing.T, s webhook.Store) *webhook.Task {
	t.Helper()
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org))
	deliver(t, s, org, base)
	tasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 10})
	if len(tasks) != 1 {
		t.Fatalf("claimed %d deliveries, want 1", len(tasks))
	}
	return tasks[0]
}

func outcomeOf(t *testing.T, tk *webhook.Task, status int, at time.Time) webhook.Outcome {
	t.Helper()
	o := webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, tk.Delivery.Attempts+1, status, at), Lease: tk.Delivery.Lease}
	switch {
	case status >= 200 && status < 300:
		o.Status = webhook.DeliverySucceeded
	default:
		o.Status, o.NextAttemptAt = webhook.DeliveryPending, at.Add(time.Minute)
	}
	return o
}

// completeStale stores o and fails t unless it comes back stale.
func completeStale(t *testing.T, s webhook.Store, o webhook.Outcome) {
	t.Helper()
	res, err := s.DeliveryComplete(context.Background(), []webhook.Outcome{o})
	if err != nil {
		t.Fatalf("DeliveryComplete: %v", err)
	}
	if len(res.Stale) != 1 || res.Stale[0].ID != o.Attempt.DeliveryID || res.Stale[0].Lease != o.Lease {
		t.Fatalf("stale = %+v, want the outcome's delivery and lease", res.Stale)
	}
}

func attemptCount(t *testing.T, s webhook.Store, tk *webhook.Task) int {
	t.Helper()
	as, err := s.AttemptList(context.Background(), webhook.AttemptListParams{
		OrganizationID: tk.Delivery.OrganizationID, WebhookID: tk.Delivery.WebhookID, DeliveryID: tk.Delivery.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(as)
}

// One call naming a delivery twice under its lease is applied in
// order: the first outcome finishes the delivery, so the second finds it
// no longer running and comes back stale, with no attempt of its own.
func testLeaseOutcomeTwice(t *testing.T, s webhook.Store) {
	_, tk := claimOne(t, s, nil)
	first := outcomeOf(t, tk, 500, base.Add(time.Second))
	second := outcomeOf(t, tk, 200, base.Add(2*time.Second))
	res, err := s.DeliveryComplete(context.Background(), []webhook.Outcome{first, second})
	if err != nil {
		t.Fatalf("DeliveryComplete: %v", err)
	}
	if len(res.Stale) != 1 || res.Stale[0].ID != tk.Delivery.ID {
		t.Fatalf("stale = %+v, want the second outcome's delivery", res.Stale)
	}
	d := getDelivery(t, s, tk.Delivery.OrganizationID, tk.Delivery.WebhookID, tk.Delivery.ID)
	if d.Status != webhook.DeliveryPending || d.Attempts != 1 || d.LastStatusCode != 500 {
		t.Fatalf("delivery %s, %d attempts, last status %d; want the first outcome's pending, 1, 500",
			d.Status, d.Attempts, d.LastStatusCode)
	}
	if n := attemptCount(t, s, tk); n != 1 {
		t.Fatalf("%d attempts in the log, want the first outcome's only", n)
	}
}

// A batch sent again after a failure that came after its commit (a
// connection reset with the COMMIT on its way: the dispatcher sends it
// again) finds its outcome stored by the first call. It is not stale (the
// dispatcher counts it as the attempt it was, and warns of no lease
// lost), and nothing is stored twice. An outcome of the same batch whose
// lease was lost is still stale.
func testLeaseOutcomeSentAgain(t *testing.T, s webhook.Store) {
	a, _ := takeOver(t, s)
	_, tk := claimOne(t, s, nil)
	o := outcomeOf(t, tk, 500, base.Add(time.Second))
	complete(t, s, o)
	lost := outcomeOf(t, a, 0, base.Add(62*time.Second))
	res, err := s.DeliveryComplete(context.Background(), []webhook.Outcome{o, lost})
	if err != nil {
		t.Fatalf("DeliveryComplete: %v", err)
	}
	if len(res.Stale) != 1 || res.Stale[0] != lost.Ref() {
		t.Fatalf("stale = %+v; want only the outcome whose lease was lost, %+v, not the one stored by the first call", res.Stale, lost.Ref())
	}
	d := getDelivery(t, s, tk.Delivery.OrganizationID, tk.Delivery.WebhookID, tk.Delivery.ID)
	if d.Status != webhook.DeliveryPending || d.Attempts != 1 {
		t.Fatalf("delivery %s with %d attempts; want pending with 1, as the first call left it", d.Status, d.Attempts)
	}
	if n := attemptCount(t, s, tk); n != 1 {
		t.Fatalf("%d attempts in the log, want 1", n)
	}
}

// A disable sent again after such a failure is reported as the first
// call would have reported it, had its answer arrived: the webhook it
// disabled is in Disabled, which the dispatcher counts
// (hookd_webhooks_disabled_total) and gives the webhook's tasks back by,
// and its audit entry is not written twice. One whose first call found
// the webhook disabled already (by a person) is not.
func testLeaseDisableSentAgain(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tasks := claimN(t, s, 2, nil)
	ref := webhook.WebhookRef{OrganizationID: w.OrganizationID, ID: w.ID}
	gone := func(tk *webhook.Task, at time.Time) webhook.Outcome {
		o := outcomeOf(t, tk, 410, at)
		o.Status, o.NextAttemptAt = webhook.DeliveryFailed, time.Time{}
		o.DisableReason, o.WebhookUpdatedAt = "the receiver answered 410 Gone", tk.Webhook.UpdatedAt
		return o
	}
	record := func(what string, o webhook.Outcome) []webhook.DisabledWebhook {
		t.Helper()
		res, err := s.DeliveryComplete(ctx, []webhook.Outcome{o})
		if err != nil || len(res.Stale) != 0 {
			t.Fatalf("%s: DeliveryComplete: %v, stale %v", what, err, res.Stale)
		}
		return res.Disabled
	}
	o := gone(tasks[0], base.Add(time.Second))
	first := record("the first call", o)
	again := record("the call sent again", o)
	wantEqual(t, "disabled by the first call", disabledRefs(first), []webhook.WebhookRef{ref})
	wantEqual(t, "disabled by the call sent again", disabledRefs(again), []webhook.WebhookRef{ref})
	stored := getWebhook(t, s, ref.OrganizationID, ref.ID)
	wantTime(t, "the UpdatedAt the call sent again reported", again[0].UpdatedAt, stored.UpdatedAt)
	if n := hookdDisables(t, s, ref.OrganizationID); n != 1 {
		t.Fatalf("%d audit entries of hookd disabling the webhook, want 1", n)
	}

	// The other 410 finds the webhook disabled: neither call disables it.
	o = gone(tasks[1], base.Add(2*time.Second))
	if got := record("a 410 for a webhook disabled already", o); len(got) != 0 {
		t.Fatalf("a 410 for a webhook disabled already reported %v disabled; want none", disabledRefs(got))
	}
	if got := record("that 410 sent again", o); len(got) != 0 {
		t.Fatalf("a 410 for a webhook disabled already, sent again, reported %v disabled; want none", disabledRefs(got))
	}
}

// hookdDisables counts the organization's audit entries of hookd
// disabling a webhook.
func hookdDisables(t *testing.T, s webhook.Store, org uuid.UUID) int {
	t.Helper()
	entries, err := s.AuditList(context.Background(), webhook.AuditListParams{OrganizationID: org, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Actor.Kind == webhook.ActorHookd && e.Action == webhook.AuditWebhookDisabled {
			n++
		}
	}
	return n
}

// A's late "timed out" outcome, written while B holds the lease, is
// dropped: no attempt in the log, B's lease untouched; B's outcome counts.
func testLeaseStaleOutcome(t *testing.T, s webhook.Store) {
	a, b := takeOver(t, s)
	completeStale(t, s, outcomeOf(t, a, 0, base.Add(62*time.Second)))
	d := getDelivery(t, s, b.Delivery.OrganizationID, b.Delivery.WebhookID, b.Delivery.ID)
	if d.Status != webhook.DeliveryRunning || d.Attempts != 0 || d.Lease != b.Delivery.Lease {
		t.Fatalf("after A's stale outcome: status %s, attempts %d, lease %d; want running, 0, B's %d",
			d.Status, d.Attempts, d.Lease, b.Delivery.Lease)
	}
	if n := attemptCount(t, s, b); n != 0 {
		t.Fatalf("%d attempts in the log after a stale outcome, want 0", n)
	}
	complete(t, s, outcomeOf(t, b, 200, base.Add(63*time.Second)))
	if n := attemptCount(t, s, b); n != 1 {
		t.Fatalf("%d attempts in the log after B's outcome, want 1", n)
	}
}

// Once B's success is stored, nothing A does reopens the delivery: not an
// outcome, a release, or a renewal; and it is never claimed again.
func testLeaseSucceededNeverReopens(t *testing.T, s webhook.Store) {
	a, b := takeOver(t, s)
	complete(t, s, outcomeOf(t, b, 200, base.Add(62*time.Second)))
	completeStale(t, s, outcomeOf(t, a, 503, base.Add(63*time.Second)))
	// Even B, writing the same outcome twice, does not count it twice.
	completeStale(t, s, outcomeOf(t, b, 200, base.Add(64*time.Second)))
	ctx := context.Background()
	if err := s.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{a.Ref(), b.Ref()}, Now: base}); err != nil {
		t.Fatal(err)
	}
	lost, err := s.DeliveryRenew(ctx, webhook.RenewParams{Refs: []webhook.DeliveryRef{a.Ref(), b.Ref()},
		Now: base.Add(65 * time.Second), LeaseUntil: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 2 {
		t.Fatalf("renewing a finished delivery: %d of 2 lost, want both", len(lost))
	}
	d := getDelivery(t, s, b.Delivery.OrganizationID, b.Delivery.WebhookID, b.Delivery.ID)
	if d.Status != webhook.DeliverySucceeded || d.Attempts != 1 {
		t.Fatalf("after late writes: status %s, attempts %d; want succeeded, 1", d.Status, d.Attempts)
	}
	if n := attemptCount(t, s, b); n != 1 {
		t.Fatalf("%d attempts in the log, want 1", n)
	}
	if got := claim(t, s, webhook.ClaimParams{Now: base.Add(48 * time.Hour), LeaseUntil: base.Add(49 * time.Hour), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d deliveries after a success, want 0", len(got))
	}
}

// A renewed lease runs on from the renewal; a lease not renewed expires
// and the delivery is claimable, after which its old holder's renewal and
// release fail.
func testLeaseRenew(t *testing.T, s webhook.Store) {
	held := []*webhook.Task{leaseOne(t, s)}
	org := held[0].Delivery.OrganizationID
	ctx := context.Background()
	renew := func(tk *webhook.Task, at time.Time) []webhook.DeliveryRef {
		t.Helper()
		lost, err := s.DeliveryRenew(ctx, webhook.RenewParams{Refs: []webhook.DeliveryRef{tk.Ref()}, Now: at, LeaseUntil: at.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return lost
	}
	if lost := renew(held[0], base.Add(50*time.Second)); len(lost) != 0 {
		t.Fatalf("renewing a lease held: lost %v", lost)
	}
	d := getDelivery(t, s, org, held[0].Delivery.WebhookID, held[0].Delivery.ID)
	if !d.DueAt.Equal(base.Add(110*time.Second)) || d.Lease != held[0].Delivery.Lease {
		t.Fatalf("after renewal: lease ends %s (token %d), want %s (token %d)", d.DueAt, d.Lease, base.Add(110*time.Second), held[0].Delivery.Lease)
	}
	if got := claim(t, s, webhook.ClaimParams{Now: base.Add(100 * time.Second), LeaseUntil: base.Add(time.Hour), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d deliveries whose lease was renewed, want 0", len(got))
	}
	next := claim(t, s, webhook.ClaimParams{Now: base.Add(111 * time.Second), LeaseUntil: base.Add(time.Hour), Limit: 10})
	if len(next) != 1 {
		t.Fatalf("claimed %d deliveries once the renewed lease expired, want 1", len(next))
	}
	if lost := renew(held[0], base.Add(112*time.Second)); len(lost) != 1 {
		t.Fatalf("renewing a lease taken over: lost %d, want 1", len(lost))
	}
	if err := s.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{held[0].Ref()}, Now: base}); err != nil {
		t.Fatal(err)
	}
	d = getDelivery(t, s, org, held[0].Delivery.WebhookID, held[0].Delivery.ID)
	if d.Status != webhook.DeliveryRunning || d.Lease != next[0].Delivery.Lease || !d.DueAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("after the old holder's release: %s, token %d, due %s; want still running under token %d until %s",
			d.Status, d.Lease, d.DueAt, next[0].Delivery.Lease, base.Add(time.Hour))
	}
}

// Both backends record an outcome alike: the delivery's attempts counts
// the attempts recorded (one more per outcome, whatever Number the caller
// gave), and its updated_at is when the attempt finished (CreatedAt plus
// Duration), the time a reader of the delivery log expects.
func testDeliveryCompleteCounts(t *testing.T, s webhook.Store) {
	tk := leaseOne(t, s)
	o := outcomeOf(t, tk, 500, base.Add(time.Second))
	complete(t, s, o)
	d := getDelivery(t, s, tk.Delivery.OrganizationID, tk.Delivery.WebhookID, tk.Delivery.ID)
	wantEqual(t, "attempts after the first outcome", d.Attempts, 1)
	wantTime(t, "updated_at after the first outcome", d.UpdatedAt, o.Attempt.CreatedAt.Add(o.Attempt.Duration))

	// An outcome whose Number is not Attempts+1 (it was numbered before
	// the delivery was counted again) still adds exactly one.
	tasks := claim(t, s, webhook.ClaimParams{Now: base.Add(2 * time.Minute), LeaseUntil: base.Add(3 * time.Minute), Limit: 10})
	if len(tasks) != 1 {
		t.Fatalf("claimed %d deliveries, want 1", len(tasks))
	}
	o = outcomeOf(t, tasks[0], 200, base.Add(2*time.Minute))
	o.Attempt.Number = 7
	complete(t, s, o)
	d = getDelivery(t, s, tk.Delivery.OrganizationID, tk.Delivery.WebhookID, tk.Delivery.ID)
	wantEqual(t, "attempts after an outcome numbered 7", d.Attempts, 2)
	wantTime(t, "updated_at after the second outcome", d.UpdatedAt, o.Attempt.CreatedAt.Add(o.Attempt.Duration))
}

// A lease is held by organization, delivery and token together: a
// renewal, an outcome or a release that names a delivery's id and its
// current lease but another organization is lost, stale or ignored like
// one made under an expired lease, and changes nothing the delivery's own
// organization can see. The lease holder goes on afterwards as if nothing
// had happened.
func testLeaseOtherOrganization(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	// A delivery with a history: one failed attempt, then claimed again,
	// so its attempts count, last status and attempt log are not empty.
	first := leaseOne(t, s)
	org, wh := first.Delivery.OrganizationID, first.Delivery.WebhookID
	complete(t, s, outcomeOf(t, first, 500, base.Add(time.Second)))
	tasks := claim(t, s, webhook.ClaimParams{Now: base.Add(2 * time.Minute), LeaseUntil: base.Add(3 * time.Minute), Limit: 10})
	if len(tasks) != 1 {
		t.Fatalf("claimed %d deliveries, want 1", len(tasks))
	}
	tk := tasks[0]
	// The other organization exists and has a webhook of its own.
	other := createWebhook(t, s, newWebhook(t, newID(t))).OrganizationID

	before := leaseView(t, s, org, wh)
	if len(before.deliveries) != 1 || len(before.attempts) != 1 || before.deliveries[0].Lease != tk.Delivery.Lease {
		t.Fatalf("before: %+v, want one running delivery with one attempt, under lease %d", before, tk.Delivery.Lease)
	}
	foreign := tk.Ref()
	foreign.OrganizationID = other

	lost, err := s.DeliveryRenew(ctx, webhook.RenewParams{Refs: []webhook.DeliveryRef{foreign},
		Now: base.Add(150 * time.Second), LeaseUntil: base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "lost after another organization's renewal", lost, []webhook.DeliveryRef{foreign})
	wantEqual(t, "after another organization's renewal", leaseView(t, s, org, wh), before)

	// An outcome that would finish the delivery and disable its webhook.
	o := outcomeOf(t, tk, 410, base.Add(151*time.Second))
	o.Attempt.OrganizationID = other
	o.Status, o.NextAttemptAt, o.DisableReason = webhook.DeliveryFailed, time.Time{}, "the receiver answered 410 Gone"
	o.WebhookUpdatedAt = tk.Webhook.UpdatedAt
	completeStale(t, s, o)
	wantEqual(t, "after another organization's outcome", leaseView(t, s, org, wh), before)

	if err := s.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{foreign}, Now: base.Add(152 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "after another organization's release", leaseView(t, s, org, wh), before)
	if got := claim(t, s, webhook.ClaimParams{Now: base.Add(153 * time.Second), LeaseUntil: base.Add(time.Hour), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d deliveries while the lease runs, want 0", len(got))
	}

	// The holder's own renewal, release and outcome still work.
	lost, err = s.DeliveryRenew(ctx, webhook.RenewParams{Refs: []webhook.DeliveryRef{tk.Ref()},
		Now: base.Add(154 * time.Second), LeaseUntil: base.Add(214 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 0 {
		t.Fatalf("the holder's renewal lost %v", lost)
	}
	wantTime(t, "lease end after the holder's renewal", getDelivery(t, s, org, wh, tk.Delivery.ID).DueAt, base.Add(214*time.Second))
	if err := s.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{tk.Ref()}, Now: base.Add(4 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if d := getDelivery(t, s, org, wh, tk.Delivery.ID); d.Status != webhook.DeliveryPending || !d.DueAt.Equal(base.Add(4*time.Minute)) {
		t.Fatalf("after the holder's release: %s, due %s; want pending, due %s", d.Status, d.DueAt, base.Add(4*time.Minute))
	}
	tasks = claim(t, s, webhook.ClaimParams{Now: base.Add(4 * time.Minute), LeaseUntil: base.Add(5 * time.Minute), Limit: 10})
	if len(tasks) != 1 || tasks[0].Delivery.ID != tk.Delivery.ID {
		t.Fatalf("claimed %d deliveries after the release, want the released one", len(tasks))
	}
	complete(t, s, outcomeOf(t, tasks[0], 200, base.Add(4*time.Minute+time.Second)))
	after := leaseView(t, s, org, wh)
	if d := after.deliveries[0]; d.Status != webhook.DeliverySucceeded || d.Attempts != 2 || len(after.attempts) != 2 {
		t.Fatalf("after the holder's outcome: %s, %d attempts, %d in the log; want succeeded, 2, 2",
			d.Status, d.Attempts, len(after.attempts))
	}
	if !after.webhook.Enabled {
		t.Fatal("the webhook was disabled")
	}
}

// The same in one call beside the holder's own renewal, outcomes and
// release of that delivery: each is judged on its own organization, as if
// the calls were made one by one, whatever the backend's batching (four
// outcomes, so a backend that writes them in groups sees them together).
func testLeaseOtherOrganizationBatch(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	tk := leaseOne(t, s)
	org, wh := tk.Delivery.OrganizationID, tk.Delivery.WebhookID
	foreign := tk.Ref()
	foreign.OrganizationID = createWebhook(t, s, newWebhook(t, newID(t))).OrganizationID

	lost, err := s.DeliveryRenew(ctx, webhook.RenewParams{Refs: []webhook.DeliveryRef{foreign, tk.Ref()},
		Now: base.Add(10 * time.Second), LeaseUntil: base.Add(70 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "lost", lost, []webhook.DeliveryRef{foreign})
	wantTime(t, "lease end after the renewal", getDelivery(t, s, org, wh, tk.Delivery.ID).DueAt, base.Add(70*time.Second))

	own := outcomeOf(t, tk, 200, base.Add(20*time.Second))
	var outcomes, want []webhook.Outcome
	for range 3 {
		o := outcomeOf(t, tk, 500, base.Add(20*time.Second))
		o.Attempt.OrganizationID = foreign.OrganizationID
		outcomes, want = append(outcomes, o), append(want, o)
	}
	outcomes = append(outcomes[:1], append([]webhook.Outcome{own}, outcomes[1:]...)...)
	res, err := s.DeliveryComplete(ctx, outcomes)
	if err != nil {
		t.Fatal(err)
	}
	var wantStale []webhook.DeliveryRef
	for _, o := range want {
		wantStale = append(wantStale, o.Ref())
	}
	wantEqual(t, "stale", res.Stale, wantStale)
	v := leaseView(t, s, org, wh)
	if d := v.deliveries[0]; d.Status != webhook.DeliverySucceeded || d.Attempts != 1 || d.LastStatusCode != 200 {
		t.Fatalf("after the outcomes: %s, %d attempts, last status %d; want succeeded, 1, 200", d.Status, d.Attempts, d.LastStatusCode)
	}
	if len(v.attempts) != 1 || v.attempts[0].ID != own.Attempt.ID {
		t.Fatalf("%d attempts in the log, want only the holder's", len(v.attempts))
	}

	// A second delivery, to release.
	deliver(t, s, org, base.Add(time.Minute))
	tasks := claim(t, s, webhook.ClaimParams{Now: base.Add(time.Minute), LeaseUntil: base.Add(2 * time.Minute), Limit: 10})
	if len(tasks) != 1 {
		t.Fatalf("claimed %d deliveries, want 1", len(tasks))
	}
	foreign = tasks[0].Ref()
	foreign.OrganizationID = wantStale[0].OrganizationID
	if err := s.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: []webhook.DeliveryRef{foreign, tasks[0].Ref()}, Now: base.Add(90 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	d := getDelivery(t, s, org, wh, tasks[0].Delivery.ID)
	if d.Status != webhook.DeliveryPending || !d.DueAt.Equal(base.Add(90*time.Second)) || d.Attempts != 0 {
		t.Fatalf("after the release: %s, due %s, %d attempts; want pending, due %s, 0", d.Status, d.DueAt, d.Attempts, base.Add(90*time.Second))
	}
}

// leaseState is what an organization sees of one webhook's deliveries.
type leaseState struct {
	deliveries []webhook.Delivery
	attempts   []webhook.Attempt
	webhook    webhook.Webhook
}

// leaseView reads, through the organization's own lists, the webhook,
// its deliveries and its attempt log.
func leaseView(t *testing.T, s webhook.Store, org, wh uuid.UUID) leaseState {
	t.Helper()
	ctx := context.Background()
	var v leaseState
	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: wh, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		v.deliveries = append(v.deliveries, *d)
	}
	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: wh, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		a.Event = nil // no lease changes an event; compared, it would print as a pointer
		v.attempts = append(v.attempts, *a)
	}
	v.webhook = *getWebhook(t, s, org, wh)
	return v
}
