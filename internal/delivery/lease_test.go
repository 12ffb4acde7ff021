package delivery

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookd/hookd/internal/webhook"
)

// lockedBuffer is a bytes.Buffer the dispatcher's goroutines may log to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// holdHarness is a dispatcher on a real store with one webhook, whose
// target holds the first request until block is closed, and whose clock
// runs ahead of the wall clock by ahead.
type holdHarness struct {
	s        *counting
	w        *webhook.Webhook
	d        *Dispatcher
	block    chan struct{}
	requests atomic.Int32
	ahead    atomic.Int64
}

// holding starts a holdHarness (a 2 s timeout, one request at a time
// per webhook, no polling, logging to log), takes n deliveries in, and
// returns once the first request is in.
func holding(t *testing.T, log io.Writer, n int) *holdHarness {
	t.Helper()
	h := &holdHarness{block: make(chan struct{})}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.requests.Add(1) == 1 {
			select {
			case <-h.block:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(target.Close)
	h.s = newStore(t)
	h.w = createWebhook(t, h.s, target.URL)
	h.d = New(Config{Store: h.s, Client: target.Client(), Timeout: 2 * time.Second, MaxInflightPerWebhook: 1,
		PollInterval: time.Hour, Log: slog.New(slog.NewTextHandler(log, nil)),
		Now: func() time.Time { return time.Now().Add(time.Duration(h.ahead.Load())) }})
	startDispatcher(t, h.d)
	intake(t, h.s, h.d, h.w, n)
	for deadline := time.Now().Add(5 * time.Second); h.requests.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first delivery was not sent")
		}
	}
	return h
}

// A dispatcher whose leases another worker took over (they expired while
// it could not renew them) learns it at its next renewal: it sends none
// of the deliveries still queued, and the outcome of the one in flight is
// dropped, not recorded.
func TestLostLeasesAreNotSent(t *testing.T) {
	var logs lockedBuffer
	// A 2 s timeout: 22 s leases, renewed only once less than 14.5 s
	// is left. The dispatcher's clock is moved on below.
	h := holding(t, &logs, 3)
	s, w, d, block, requests, ahead := h.s, h.w, h.d, h.block, &h.requests, &h.ahead

	// Another worker, whose clock says the leases have expired, takes
	// all three over.
	later := time.Now().Add(time.Hour)
	taken, err := s.DeliveryClaim(context.Background(), webhook.ClaimParams{Now: later, LeaseUntil: later.Add(time.Hour), Limit: 10})
	if err != nil || len(taken) != 3 {
		t.Fatalf("took over %d deliveries (%v), want 3", len(taken), err)
	}
	// A lease is taken over once it has ended, when on its holder's clock
	// too it is near its end or past it. 10 s on, every lease held here
	// has less than 14.5 s left, so the next tick renews it, and more than
	// the 7 s a task needs to be sent, so only that renewal can tell the
	// queued tasks are lost.
	ahead.Store(int64(10 * time.Second))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "lost the leases"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher did not notice its leases were lost:\n%s", logs.String())
		}
	}
	close(block)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "dropped outcomes"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the outcome of the request in flight was not dropped:\n%s", logs.String())
		}
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests sent, want 1: deliveries whose lease was lost were sent", n)
	}
	// Three leases asked for, three lost: none counts as renewed.
	var m dto.Metric
	if err := d.m.renewed.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 0 {
		t.Fatalf("%v renewals counted, want none: every lease asked for was lost", n)
	}
	for _, tk := range taken {
		got, err := s.DeliveryGet(context.Background(), w.OrganizationID, w.ID, tk.Delivery.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != webhook.DeliveryRunning || got.Lease != tk.Delivery.Lease || got.Attempts != 0 {
			t.Fatalf("delivery after the old holder finished: %s, lease %d, %d attempts; want the new holder's, untouched",
				got.Status, got.Lease, got.Attempts)
		}
	}
}

// A renewal that finds a delivery no longer running because its own
// outcome, waiting for the recorder, committed first lost no lease: it
// neither warns nor forgets the task before the recorder does. The same
// answer for a delivery whose attempt is not done is a lost lease.
func TestRenewalRacingItsOutcomeLosesNothing(t *testing.T) {
	var logs lockedBuffer
	d := New(Config{Store: newStore(t), Timeout: 2 * time.Second, PollInterval: time.Hour,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	tk := &webhook.Task{Delivery: webhook.Delivery{ID: uuid.New(), Lease: 3}}
	refs := []webhook.DeliveryRef{tk.Ref()}
	d.leased[tk.Delivery.ID] = tk
	d.recording[tk.Delivery.ID] = 3
	d.renewed(refs, refs, time.Now())
	if strings.Contains(logs.String(), "lost the leases") || d.leased[tk.Delivery.ID] != tk {
		t.Fatalf("a renewal racing the delivery's own outcome was taken for a lost lease:\n%s", logs.String())
	}
	d.recorded([]webhook.Outcome{{Attempt: webhook.Attempt{DeliveryID: tk.Delivery.ID}, Lease: 3}})
	if d.isRecording(tk) || d.leased[tk.Delivery.ID] != nil {
		t.Fatal("recording the outcome did not forget the task")
	}

	d.leased[tk.Delivery.ID] = tk // claimed again, its attempt not done
	d.renewed(refs, refs, time.Now())
	if !strings.Contains(logs.String(), "lost the leases") || d.leased[tk.Delivery.ID] != nil {
		t.Fatalf("a lost lease was not noticed:\n%s", logs.String())
	}
}

// renewedRows is how many leases the dispatcher's renewals asked for.
func renewedRows(f *fakeQueue) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, p := range f.renewals {
		n += len(p.Refs)
	}
	return n
}

// A tick renews only the leases that would fall below sendable within
// three ticks, each to a whole lease from now, and leaves the others
// alone; the metric counts the renewed.
func TestRenewOnlyLeasesNearTheirEnd(t *testing.T) {
	d, f := running(t, Config{Timeout: 10 * time.Second})
	soon := d.sendable + 3*renewEvery // 22.5 s
	cases := []struct {
		name  string
		left  time.Duration // the lease's time left at the tick
		renew bool
	}{
		{"fresh", d.lease, false},
		{"held one tick", d.lease - renewEvery, false},
		{"three ticks above sendable", soon, false},
		{"just under three ticks above sendable", soon - time.Microsecond, true},
		{"two ticks above sendable", d.sendable + 2*renewEvery, true},
		{"at sendable", d.sendable, true},
		{"too short to send", d.sendable - time.Second, true},
		{"ended", -time.Second, true},
	}
	tasks := make([]*webhook.Task, len(cases))
	for i, c := range cases {
		tasks[i] = task(uuid.UUID{0xa}, clock.Add(c.left))
		tasks[i].Delivery.Lease = int64(i + 1)
		d.leased[tasks[i].Delivery.ID] = tasks[i]
	}
	d.renew()

	if len(f.renewals) != 1 {
		t.Fatalf("%d renewal statements, want 1", len(f.renewals))
	}
	p := f.renewals[0]
	if !p.Now.Equal(clock) || !p.LeaseUntil.Equal(clock.Add(d.lease)) {
		t.Fatalf("renewed from %v until %v, want a whole lease from now", p.Now, p.LeaseUntil)
	}
	asked := map[webhook.DeliveryRef]bool{}
	for _, r := range p.Refs {
		asked[r] = true
	}
	want := 0
	for i, c := range cases {
		tk := tasks[i]
		if asked[tk.Ref()] != c.renew {
			t.Errorf("%s (%v left): renewed %v, want %v", c.name, c.left, asked[tk.Ref()], c.renew)
		}
		due := clock.Add(c.left)
		if c.renew {
			due = clock.Add(d.lease)
			want++
		}
		if !tk.Delivery.DueAt.Equal(due) {
			t.Errorf("%s: lease ends at now+%v, want now+%v", c.name, tk.Delivery.DueAt.Sub(clock), due.Sub(clock))
		}
	}
	var m dto.Metric
	if err := d.m.renewed.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != float64(want) {
		t.Fatalf("%v renewals counted, want %d", n, want)
	}

	// A tick with nothing near its end costs no statement.
	for id, tk := range d.leased {
		if tk.Delivery.DueAt.Before(clock.Add(soon)) {
			delete(d.leased, id)
		}
	}
	d.renew()
	if len(f.renewals) != 1 {
		t.Fatalf("%d renewal statements, want none for leases far from their end", len(f.renewals)-1)
	}
}

// A delivery held for a while costs a renewal every fourth tick from the
// fourth on; one sent and recorded within three ticks (7.5 s) costs
// none, however the claim falls between two ticks.
func TestRenewalsPerHeldDelivery(t *testing.T) {
	for _, c := range []struct {
		ticks    int // ticks while the delivery is held
		renewals int
	}{
		{0, 0}, {1, 0}, {3, 0}, {4, 1}, {7, 1}, {8, 2}, {12, 3},
	} {
		for _, phase := range []time.Duration{0, renewEvery / 2, renewEvery - time.Microsecond} {
			d, f := running(t, Config{Timeout: 10 * time.Second})
			claimed := clock.Add(phase) // ticks at clock + k*renewEvery
			now := claimed
			d.cfg.Now = func() time.Time { return now }
			tk := task(uuid.UUID{0xb}, claimed.Add(d.lease))
			d.leased[tk.Delivery.ID] = tk
			for k := 1; k <= c.ticks; k++ {
				now = clock.Add(time.Duration(k) * renewEvery)
				d.renew()
			}
			// Recorded: it is forgotten, and later ticks cost nothing.
			d.recorded([]webhook.Outcome{{Attempt: webhook.Attempt{DeliveryID: tk.Delivery.ID}}})
			for k := c.ticks + 1; k <= c.ticks+8; k++ {
				now = clock.Add(time.Duration(k) * renewEvery)
				d.renew()
			}
			if n := renewedRows(f); n != c.renewals {
				t.Errorf("held for %d ticks, claimed %v after a tick: %d renewals, want %d", c.ticks, phase, n, c.renewals)
			}
		}
	}
}

// A failed renewal leaves the task sendable until the tick after next,
// even if the next tick's renewal is slow or fails too: only then does its
// lease reach the least a request needs. The renewal that works restores
// a whole lease.
func TestFailedRenewalStillSends(t *testing.T) {
	for _, phase := range []time.Duration{0, time.Microsecond, renewEvery / 2, renewEvery - time.Microsecond} {
		d, f := running(t, Config{Timeout: 10 * time.Second, Log: slog.New(slog.DiscardHandler)})
		claimed := clock.Add(phase)
		now := claimed
		d.cfg.Now = func() time.Time { return now }
		tk := task(uuid.UUID{0xc}, claimed.Add(d.lease))
		d.leased[tk.Delivery.ID] = tk
		f.renewFail = 2
		k := 0
		tick := func() {
			k++
			now = clock.Add(time.Duration(k) * renewEvery)
		}
		for f.renewFail == 2 {
			tick()
			d.renew()
			if k > 10 {
				t.Fatal("the lease was never renewed")
			}
		}
		// The first renewal failed; until the tick after next, whatever
		// the next one does, the task is sent.
		tick()
		for _, at := range []time.Time{now, now.Add(renewEvery / 2), now.Add(renewEvery)} {
			now = at
			if !d.holds(tk) {
				t.Fatalf("claimed %v after a tick: after one failed renewal the task was not sent %v after the next tick (lease %v left)",
					phase, at.Sub(clock.Add(time.Duration(k)*renewEvery)), tk.Delivery.DueAt.Sub(at))
			}
		}
		now = clock.Add(time.Duration(k) * renewEvery)
		d.renew() // fails too
		tick()
		d.renew()
		if len(f.renewals) != 1 || !tk.Delivery.DueAt.Equal(now.Add(d.lease)) {
			t.Fatalf("claimed %v after a tick: %d renewals, lease %v left; want a whole lease after the third try",
				phase, len(f.renewals), tk.Delivery.DueAt.Sub(now))
		}
		d.releases.Wait()
		if len(f.released) != 0 {
			t.Fatalf("claimed %v after a tick: given back %v", phase, f.released)
		}
	}
}

// A tick that comes far later than due on the wall clock (a suspended
// machine, whose monotonic clock stood still) renews every lease held, so
// those taken over meanwhile are found and dropped at once.
func TestLateTickRenewsEveryLease(t *testing.T) {
	d, f := running(t, Config{Timeout: 10 * time.Second})
	now := clock
	d.cfg.Now = func() time.Time { return now }
	tk := task(uuid.UUID{0xd}, now.Add(d.lease))
	d.leased[tk.Delivery.ID] = tk
	d.renew()
	now = now.Add(renewEvery)
	d.renew()
	if n := renewedRows(f); n != 0 {
		t.Fatalf("ticks on time renewed %d fresh leases", n)
	}
	// Two ticks missed; on our clock the lease is still fresh.
	now = now.Add(2*renewEvery + time.Millisecond)
	tk.Delivery.DueAt = now.Add(d.lease)
	d.renew()
	if n := renewedRows(f); n != 1 {
		t.Fatalf("a late tick renewed %d leases, want the one held", n)
	}
}

// A delivery this dispatcher is sending that a claim of its own takes
// again (its lease ended in the store first: the wall clock stepped
// forward past it) is sent once: the task held takes the new lease, and
// its outcome is recorded under it.
func TestClaimedAgainWhileHeldIsSentOnce(t *testing.T) {
	h := holding(t, io.Discard, 1)
	s, w, d, block, requests, ahead := h.s, h.w, h.d, h.block, &h.requests, &h.ahead
	list := func() []*webhook.Delivery {
		t.Helper()
		ds, err := s.DeliveryList(context.Background(), webhook.DeliveryListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID, Limit: 10})
		if err != nil || len(ds) != 1 {
			t.Fatalf("deliveries: %d (%v), want 1", len(ds), err)
		}
		return ds
	}
	first := list()[0].Lease
	// The clock steps an hour forward while the request is in flight,
	// and the dispatcher claims.
	ahead.Store(int64(time.Hour))
	d.Wake()
	for deadline := time.Now().Add(5 * time.Second); list()[0].Lease == first; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher did not claim the delivery again")
		}
	}
	// The claim commits in the store before the dispatcher takes what it
	// claimed: a request answered in between has its outcome on its way
	// under the old lease, and the delivery is rightly sent again. The
	// request answers once the dispatcher holds the new lease.
	again := list()[0]
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		d.mu.Lock()
		held := d.leased[again.ID]
		lease := int64(0)
		if held != nil {
			lease = held.Delivery.Lease
		}
		d.mu.Unlock()
		if lease == again.Lease {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher holds lease %d after claiming lease %d", lease, again.Lease)
		}
	}
	close(block)
	for deadline := time.Now().Add(10 * time.Second); list()[0].Status != webhook.DeliverySucceeded; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the delivery is %s after its request answered, want succeeded (%d requests)", list()[0].Status, requests.Load())
		}
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d requests sent for one delivery claimed again while in flight, want 1", n)
	}
}

// holdingInFlight is a running dispatcher holding one task, under lease,
// in flight on its webhook's one slot: a task it starts is queued.
func holdingInFlight(t *testing.T, lease int64) (*Dispatcher, *fakeQueue, *webhook.Task) {
	d, f := running(t, Config{MaxInflightPerWebhook: 1})
	held := task(uuid.UUID{0xa}, fixedNow().Add(d.lease))
	held.Delivery.Lease = lease
	d.mu.Lock()
	d.leased[held.Delivery.ID] = held
	d.inflight[held.Webhook.ID] = 1
	d.held = 1
	d.mu.Unlock()
	return d, f, held
}

// claimAgain has the store hand held's delivery over again, under lease,
// to d's next claim, claims, and returns the task claimed.
func claimAgain(d *Dispatcher, f *fakeQueue, held *webhook.Task, lease int64) *webhook.Task {
	tk := *held
	tk.Delivery.Lease = lease
	f.mu.Lock()
	f.claimed = []*webhook.Task{&tk}
	f.mu.Unlock()
	d.claim(context.Background(), true)
	return &tk
}

// A renewal does not come between a claim's answer and its adoption.
// The wall clock stepped past the lease of a task in flight: the claim
// takes its delivery again (lease 2), and a renewal of the old lease
// (1), answered after that claim committed, finds it lost. Applied
// before the claim's adoption, it forgot the task in flight, and the
// claim held the delivery as new and sent it a second time.
func TestRenewalWaitsForTheClaimsAdoption(t *testing.T) {
	d, f, held := holdingInFlight(t, 1)
	tk := *held
	tk.Delivery.Lease = 2
	f.mu.Lock()
	f.claimed = []*webhook.Task{&tk}
	f.claimHeld, f.claimHold = make(chan struct{}), make(chan struct{})
	heldCh, hold := f.claimHeld, f.claimHold
	f.renewLost = []webhook.DeliveryRef{held.Ref()}
	f.mu.Unlock()
	claimed := make(chan struct{})
	go func() {
		d.claim(context.Background(), true)
		close(claimed)
	}()
	<-heldCh // the claim has its answer, not yet applied
	// A tick an hour late renews every lease held, the one in flight too.
	d.lastTick = fixedNow().Add(-time.Hour)
	renewed := make(chan struct{})
	go func() {
		d.renew()
		close(renewed)
	}()
	// Give the renewal the time to run ahead of the claim, as it could.
	select {
	case <-renewed:
	case <-time.After(200 * time.Millisecond):
	}
	close(hold)
	for _, c := range []chan struct{}{claimed, renewed} {
		select {
		case <-c:
		case <-time.After(5 * time.Second):
			t.Fatal("the claim or the renewal did not end")
		}
	}
	d.mu.Lock()
	now, lease, n, queued := d.leased[held.Delivery.ID], held.Delivery.Lease, d.held, len(d.queued[held.Webhook.ID])
	d.mu.Unlock()
	if now != held || lease != 2 || n != 1 || queued != 0 {
		t.Fatalf("the task in flight is still held: %v, with lease %d (want 2); %d held (want 1), %d queued to be sent again (want 0)", now == held, lease, n, queued)
	}
}

// The rule behind TestClaimedAgainWhileHeldIsSentOnce: a claimed task
// this dispatcher already holds in flight, leased to nobody else since,
// gives the task held its new lease and takes no room; unless the task
// held has its outcome on its way to the store under the old lease,
// which the store will drop: then the new task is held and sent, or the
// delivery would stay leased here, renewed and never sent.
func TestClaimAgainAdoptsTheLease(t *testing.T) {
	// The webhook's one slot is taken: a task started is queued, and no
	// sendAll runs (one would take the queue's tasks and free their room
	// while the test reads it).
	d, f, held := holdingInFlight(t, 1)

	claimAgain(d, f, held, 2)
	d.mu.Lock()
	lease, kept, n := held.Delivery.Lease, d.leased[held.Delivery.ID] == held, d.held
	d.mu.Unlock()
	if lease != 2 || !kept || n != 1 {
		t.Fatalf("claimed again while held: the task held has lease %d (want 2), is still the one held: %v, %d held (want 1)", lease, kept, n)
	}

	d.mu.Lock()
	d.recording[held.Delivery.ID] = 2
	d.mu.Unlock()
	tk := claimAgain(d, f, held, 3)
	d.mu.Lock()
	lease, now, n := held.Delivery.Lease, d.leased[held.Delivery.ID], d.held
	d.mu.Unlock()
	if lease != 2 || now != tk || n != 2 {
		t.Fatalf("claimed again while its outcome is recorded: the old task has lease %d (want 2), the new one held: %v, %d held (want 2)", lease, now == tk, n)
	}
}

// The outcome on its way is known by its lease token, not by the
// delivery's id alone. While the first task's outcome (lease 2) is on its
// way, the second (3), claimed again since and in flight, is adopted by a
// third claim like any task in flight. Once the second's outcome (now
// under 4) is on its way, recording the first's does not make the second
// look in flight again: a fourth claim must not adopt it (its outcome
// would be dropped as stale, and the delivery left held here, renewed
// and never sent), but hold and send the task claimed.
func TestRecordingIsKnownByLease(t *testing.T) {
	d, f, second := holdingInFlight(t, 3)
	id, hook := second.Delivery.ID, second.Webhook.ID
	d.mu.Lock()
	d.recording[id] = 2 // the first task's outcome
	d.mu.Unlock()

	claimAgain(d, f, second, 4)
	d.mu.Lock()
	lease, kept, n := second.Delivery.Lease, d.leased[id] == second, d.held
	d.recording[id] = 4 // the second task's outcome is on its way
	d.mu.Unlock()
	if lease != 4 || !kept || n != 1 {
		t.Fatalf("claimed again while in flight, an older task's outcome on its way: the task in flight has lease %d (want 4), is still the one held: %v, %d held (want 1)", lease, kept, n)
	}

	d.recorded([]webhook.Outcome{{Attempt: webhook.Attempt{DeliveryID: id}, Lease: 2}})
	fourth := claimAgain(d, f, second, 5)
	d.recorded([]webhook.Outcome{{Attempt: webhook.Attempt{DeliveryID: id}, Lease: 4}})
	d.mu.Lock()
	defer d.mu.Unlock()
	if second.Delivery.Lease != 4 || d.leased[id] != fourth {
		t.Fatalf("claimed again while the task's outcome is on its way, an older outcome recorded meanwhile: the task took lease %d (want 4), the one claimed is held: %v", second.Delivery.Lease, d.leased[id] == fourth)
	}
	if q := d.queued[hook]; len(q) != 1 || q[0] != fourth || d.held != 2 {
		t.Fatalf("the task claimed is not waiting for its webhook's slot: %d queued, %d held (want 1 and 2)", len(q), d.held)
	}
}

// The outcome of a task no longer held (its lease was lost while its
// request was in flight, and the delivery claimed again since) says
// nothing of the task held now: finishing after the one held now has its
// outcome on its way, it must not put its own, older token in its place.
// Otherwise the task held looks in flight again, and a later claim (its
// lease ended in the store before its outcome was recorded) adopts it:
// that outcome is dropped as stale, and the delivery held, renewed and
// never sent.
func TestOutcomeOfATaskNoLongerHeldLeavesTheHeldOnesToken(t *testing.T) {
	entered, answer := make(chan struct{}), make(chan struct{})
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		entered <- struct{}{}
		<-answer
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})}
	d, f := running(t, Config{Client: client})
	old := task(uuid.UUID{0xb}, fixedNow().Add(d.lease))
	old.Webhook.Enabled, old.Webhook.Kind, old.Webhook.TargetURL = true, webhook.KindStandard, "http://target.test/"
	old.Delivery.Lease = 3
	d.mu.Lock()
	d.held = 1
	d.start(old)
	d.mu.Unlock()
	<-entered

	// A renewal finds old's lease lost; the delivery comes back to a claim
	// of ours (lease 5: another worker held 4), is sent, and its outcome is
	// on its way while old's request is still in flight.
	d.renewed([]webhook.DeliveryRef{old.Ref()}, []webhook.DeliveryRef{old.Ref()}, fixedNow().Add(d.lease))
	newer := *old
	newer.Delivery.Lease = 5
	d.mu.Lock()
	if d.leased[old.Delivery.ID] != nil {
		d.mu.Unlock()
		t.Fatal("a lost lease's task is still held")
	}
	d.leased[newer.Delivery.ID] = &newer
	d.recording[newer.Delivery.ID] = 5
	d.mu.Unlock()

	close(answer)
	if o := <-d.outcomes; o.Lease != 3 {
		t.Fatalf("the old task's outcome has lease %d, want 3", o.Lease)
	}
	d.mu.Lock()
	recording := d.isRecording(&newer)
	d.mu.Unlock()
	if !recording {
		t.Fatal("the old task's outcome took the place of the held task's, on its way: the task held looks in flight")
	}
	claimAgain(d, f, &newer, 6)
	d.mu.Lock()
	defer d.mu.Unlock()
	if newer.Delivery.Lease != 5 || d.leased[newer.Delivery.ID] == &newer {
		t.Fatalf("a claim adopted the task whose outcome is on its way (lease %d, want 5): it would never be sent", newer.Delivery.Lease)
	}
}

// A claimed task this dispatcher already holds that someone else held
// meanwhile (its lease was lost: a node paused, or cut off from the
// database, past it) is not the task held any more: another worker may
// have attempted it, the webhook may have been edited (a notification
// missed meanwhile). Queued, the task held gives its place to the one
// claimed, as the store has it now; in flight, its request is out under a
// lost lease, and the one claimed is held and sent (it would otherwise go
// out again numbered and scheduled as the attempt already made).
func TestClaimAgainAfterAnotherWorkerTakesTheStoresTask(t *testing.T) {
	d, f := running(t, Config{MaxInflightPerWebhook: 1})
	hook := uuid.UUID{0xa}
	queued := task(hook, fixedNow().Add(d.lease))
	queued.Delivery.Lease = 1
	inflight := task(hook, fixedNow().Add(d.lease))
	inflight.Delivery.Lease = 1
	d.mu.Lock()
	d.leased[queued.Delivery.ID] = queued
	d.leased[inflight.Delivery.ID] = inflight
	d.inflight[hook] = 1
	d.queued[hook] = []*webhook.Task{queued}
	d.held = 2
	d.mu.Unlock()
	// Leased by another worker (2), which made an attempt and recorded a
	// retry, and claimed again here (3).
	stores := func(held *webhook.Task) *webhook.Task {
		tk := *held
		tk.Delivery.Lease, tk.Delivery.Attempts = 3, 1
		tk.Webhook.UpdatedAt = fixedNow()
		return &tk
	}
	q, i := stores(queued), stores(inflight)
	f.mu.Lock()
	f.claimed = []*webhook.Task{q, i}
	f.mu.Unlock()
	d.claim(context.Background(), true)

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.leased[q.Delivery.ID] != q || queued.Delivery.Lease != 1 {
		t.Errorf("a queued task held, claimed after another worker: the task held kept its place with lease %d", queued.Delivery.Lease)
	}
	if d.leased[i.Delivery.ID] != i || inflight.Delivery.Lease != 1 {
		t.Errorf("a task in flight, claimed after another worker: the task held took lease %d, want the one claimed held", inflight.Delivery.Lease)
	}
	if got := d.queued[hook]; len(got) != 2 || got[0] != q || got[1] != i {
		t.Errorf("the webhook's queue holds %d tasks, want the claimed task in the queued one's place, then the other claimed", len(got))
	}
	if d.held != 3 {
		t.Errorf("%d held, want 3: the one in flight, and two queued", d.held)
	}
}

// A delivery leased at intake (lease 1) that this dispatcher's own claim
// took again (lease 2: the wall clock stepped past the lease between the
// intake's commit and its hand-over, the claim's commit grouped with it or
// just after) is sent once, by the claim's task: the intake's, handed
// over after, is under a lost lease.
func TestSentAfterItsClaimIsSentOnce(t *testing.T) {
	d, f, _ := holdingInFlight(t, 1)
	lease := d.Reserve(1)
	if lease.Limit != 1 {
		t.Fatalf("reserved %d, want 1", lease.Limit)
	}
	leased := task(uuid.UUID{0xa}, lease.Until)
	leased.Delivery.Lease = 1
	claimed := claimAgain(d, f, leased, 2)
	d.Send([]*webhook.Task{leased}, lease)
	d.mu.Lock()
	now, n, queued := d.leased[leased.Delivery.ID], d.held, len(d.queued[leased.Webhook.ID])
	d.mu.Unlock()
	if now != claimed || n != 2 || queued != 1 {
		t.Fatalf("the claim's task held: %v; %d held (want 2), %d queued (want 1: the claim's)", now == claimed, n, queued)
	}
}
