package delivery

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookd/hookd/internal/webhook"
)

// fakeQueue is the store at the dispatcher's seam: it records what the
// dispatcher asks and answers what the test says, so the dispatcher's own
// arithmetic (room, leases, exclusions) can be checked exactly.
type fakeQueue struct {
	webhook.Store // not called: a call panics

	mu       sync.Mutex
	claims   []webhook.ClaimParams
	claimed  []*webhook.Task // returned by the next claim
	claimErr error
	released []webhook.DeliveryRef
	// releaseAfter is each release's delay: a release due now is 0.
	releaseAfter []time.Duration
	completed    [][]webhook.Outcome
	disabled     []webhook.DisabledWebhook // what the next DeliveryComplete reports it disabled
	failures     int                       // DeliveryComplete fails this many times first
	renewals     []webhook.RenewParams
	renewFail    int                   // DeliveryRenew fails this many times first
	renewLost    []webhook.DeliveryRef // what the next renewal reports lost
	// With claimHold set, the next claim, its tasks taken, sends on
	// claimHeld and waits for claimHold to be closed before it answers.
	claimHeld chan struct{}
	claimHold chan struct{}
}

func (f *fakeQueue) DeliveryClaim(_ context.Context, p webhook.ClaimParams) ([]*webhook.Task, error) {
	f.mu.Lock()
	f.claims = append(f.claims, p)
	tasks, err := f.claimed, f.claimErr
	f.claimed = nil
	held, hold := f.claimHeld, f.claimHold
	f.claimHeld, f.claimHold = nil, nil
	f.mu.Unlock()
	if hold != nil {
		held <- struct{}{}
		<-hold
	}
	return tasks, err
}

func (f *fakeQueue) DeliveryRelease(_ context.Context, p webhook.ReleaseParams) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, p.Refs...)
	f.releaseAfter = append(f.releaseAfter, p.After)
	return nil
}

func (f *fakeQueue) DeliveryComplete(_ context.Context, outcomes []webhook.Outcome) (webhook.CompleteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return webhook.CompleteResult{}, errors.New("database is locked")
	}
	f.completed = append(f.completed, outcomes)
	res := webhook.CompleteResult{Disabled: f.disabled}
	f.disabled = nil
	return res, nil
}

func (f *fakeQueue) DeliveryRenew(_ context.Context, p webhook.RenewParams) ([]webhook.DeliveryRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.renewFail > 0 {
		f.renewFail--
		return nil, errors.New("database is locked")
	}
	f.renewals = append(f.renewals, p)
	lost := f.renewLost
	f.renewLost = nil
	return lost, nil
}

var clock = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return clock }

// running returns a dispatcher taking tasks (as between Run's start and
// stop), without its loops: the test drives it.
func running(t *testing.T, cfg Config) (*Dispatcher, *fakeQueue) {
	t.Helper()
	f := &fakeQueue{}
	cfg.Store, cfg.Now = f, fixedNow
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	d := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d.running, d.sendCtx = true, ctx
	return d, f
}

// task is a delivery to a disabled webhook: starting it sends nothing.
func task(hook uuid.UUID, due time.Time) *webhook.Task {
	return &webhook.Task{
		Delivery: webhook.Delivery{ID: uuid.New(), OrganizationID: uuid.UUID{1}, WebhookID: hook, DueAt: due},
		Webhook:  webhook.Webhook{ID: hook, OrganizationID: uuid.UUID{1}},
	}
}

func TestNewDefaults(t *testing.T) {
	d := New(Config{Store: &fakeQueue{}})
	c := d.cfg
	if c.Timeout != 15*time.Second || c.MaxInflightPerWebhook != 8 || c.DisableAfter != 120*time.Hour ||
		c.StopGrace != 12*time.Second || c.PollInterval != 200*time.Millisecond || c.Schedule.String() != "0s,5s,5m0s,30m0s,2h0m0s,5h0m0s,10h0m0s,10h0m0s" ||
		c.Now == nil || c.Rand == nil || c.Log == nil || c.Registry == nil || c.Client == nil {
		t.Fatalf("defaults %+v", c)
	}
	// The lease covers a request and recording it, and six renewal
	// ticks more: a delivery held for long is renewed before it gets too
	// short to send, one sent quickly never (see leaseMargin).
	if d.lease != 35*time.Second || d.sendable != 20*time.Second {
		t.Fatalf("lease %v, sendable %v; want 15s+20s and 15s+5s", d.lease, d.sendable)
	}
	if d.rules.DisableAfter != c.DisableAfter || len(d.rules.Schedule) != 8 {
		t.Fatalf("rules %+v do not follow the configuration", d.rules)
	}

	// What is set is kept; a short timeout bounds the stop's grace.
	rnd := func() float64 { return 0.25 }
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	client := &http.Client{}
	d = New(Config{Store: &fakeQueue{}, Timeout: 5 * time.Second, MaxInflightPerWebhook: 2, DisableAfter: time.Hour,
		PollInterval: time.Second, Schedule: webhook.Schedule{time.Second}, Rand: rnd, Log: log, Client: client})
	c = d.cfg
	if c.Timeout != 5*time.Second || c.MaxInflightPerWebhook != 2 || c.DisableAfter != time.Hour || c.StopGrace != 5*time.Second ||
		c.PollInterval != time.Second || len(c.Schedule) != 1 || c.Rand() != 0.25 || c.Log != log || c.Client != client {
		t.Fatalf("configured %+v", c)
	}
	if d.lease != 25*time.Second || d.sendable != 10*time.Second {
		t.Fatalf("lease %v, sendable %v; want 5s+20s and 5s+5s", d.lease, d.sendable)
	}
	if d.rules.Rand() != 0.25 {
		t.Fatal("the rules do not use the configured Rand")
	}
	if d = New(Config{Store: &fakeQueue{}, StopGrace: time.Minute}); d.cfg.StopGrace != time.Minute {
		t.Fatalf("StopGrace %v, want the configured minute", d.cfg.StopGrace)
	}
}

// A claim asks for what there is room for, leases until now + lease, and
// skips the webhooks whose queue is full.
func TestClaimParams(t *testing.T) {
	d, f := running(t, Config{})
	full, almost := uuid.UUID{0xf}, uuid.UUID{0xa}
	for range maxQueuedPerWebhook {
		d.queued[full] = append(d.queued[full], task(full, clock.Add(time.Hour)))
	}
	for range maxQueuedPerWebhook - 1 {
		d.queued[almost] = append(d.queued[almost], task(almost, clock.Add(time.Hour)))
	}

	d.held = maxHeld - 10
	if d.claim(context.Background(), true) {
		t.Fatal("an empty claim reported more may be due")
	}
	p := f.claims[0]
	if p.Limit != 10 || !p.Now.Equal(clock) || !p.LeaseUntil.Equal(clock.Add(d.lease)) || len(p.ExcludeWebhooks) != 1 || p.ExcludeWebhooks[0] != full {
		t.Fatalf("claim %+v; want 10 leased until now+%v, excluding only the full webhook", p, d.lease)
	}

	d.held = 0
	d.claim(context.Background(), true)
	if p := f.claims[1]; p.Limit != claimBatch {
		t.Fatalf("claimed %d, want at most %d at once", p.Limit, claimBatch)
	}

	// No room: no claim at all.
	for _, held := range []int{maxHeld, maxHeld + 1} {
		d.held = held
		d.claim(context.Background(), true)
	}
	if len(f.claims) != 2 {
		t.Fatalf("%d claims, want none without room", len(f.claims)-2)
	}

	// A claim that got all it asked for says more may be due, and holds them.
	d.held = maxHeld - 2
	hook := uuid.UUID{0xb}
	f.claimed = []*webhook.Task{task(hook, clock.Add(time.Minute)), task(hook, clock.Add(time.Minute))}
	if !d.claim(context.Background(), true) {
		t.Fatal("a full claim did not report more may be due")
	}
	f.claimed = []*webhook.Task{task(hook, clock.Add(time.Minute))}
	d.mu.Lock()
	d.held = maxHeld - 2
	d.mu.Unlock()
	if d.claim(context.Background(), true) {
		t.Fatal("a claim short of its limit reported more may be due")
	}
}

// A failed claim is logged, unless the dispatcher is stopping.
func TestClaimErrorLogged(t *testing.T) {
	var buf bytes.Buffer
	d, f := running(t, Config{Log: slog.New(slog.NewTextHandler(&buf, nil))})
	f.claimErr = errors.New("disk I/O error")
	if d.claim(context.Background(), true) {
		t.Fatal("a failed claim reported more may be due")
	}
	if !strings.Contains(buf.String(), "claiming deliveries failed") {
		t.Fatalf("log %q, want the failed claim", buf.String())
	}
	buf.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d.claim(ctx, true)
	if buf.Len() != 0 {
		t.Fatalf("logged %q while stopping", buf.String())
	}
}

// Intake gets room only while the dispatcher runs and is under half full.
func TestReserve(t *testing.T) {
	d, _ := running(t, Config{})
	for _, c := range []struct {
		held, ask, want int
	}{
		{0, 10, 10},
		{maxHeld/2 - 3, 10, 3},
		{maxHeld/2 - 1, 10, 1},
		{maxHeld / 2, 10, 0},
		{maxHeld, 10, 0},
		{0, 0, 0},
	} {
		d.held = c.held
		l := d.Reserve(c.ask)
		if n := l.Limit; n != c.want || d.held != c.held+c.want {
			t.Fatalf("held %d, asked %d: granted %d (held now %d), want %d", c.held, c.ask, n, d.held, c.want)
		}
		// One reading of the clock, and a whole lease after it.
		if l.Limit > 0 && (!l.Now.Equal(clock) || !l.Until.Equal(clock.Add(d.lease))) {
			t.Fatalf("leased from %v until %v, want from now until now+%v", l.Now, l.Until, d.lease)
		}
		if l.Limit == 0 && l != (webhook.Lease{}) {
			t.Fatalf("no room, yet a lease %+v", l)
		}
	}
	d.held, d.running = 0, false
	if n := d.Reserve(10).Limit; n != 0 {
		t.Fatalf("granted %d while stopped", n)
	}
}

// Send starts the tasks whose reservation's lease still covers a request
// and gives the others back, due now; unused room is freed. A task's
// lease is judged by the reservation's until, on the dispatcher's clock,
// not by the time the store wrote, which a stepped wall clock or the
// database's clock moves.
func TestSendLeaseArithmetic(t *testing.T) {
	d, f := running(t, Config{Timeout: 10 * time.Second, MaxInflightPerWebhook: 1})
	latest := clock.Add(10*time.Second + 5*time.Second) // a request's Timeout, and time to record it
	hook := uuid.UUID{0xc}
	// As written by a store whose clock is an hour ahead of ours.
	first, enough, short := task(hook, clock.Add(time.Hour)), task(hook, clock.Add(time.Hour)), task(hook, clock.Add(time.Hour))
	d.mu.Lock()
	d.inflight[hook] = 1 // hold the slot, so queued tasks stay queued
	d.held = 5           // two reservations, of 3 and 2
	d.mu.Unlock()
	d.Send([]*webhook.Task{first, enough}, webhook.Lease{Now: clock, Until: latest, Limit: 3})
	d.Send([]*webhook.Task{short}, webhook.Lease{Now: clock, Until: latest.Add(-time.Microsecond), Limit: 2})
	d.releases.Wait()
	if !first.Delivery.DueAt.Equal(latest) || !enough.Delivery.DueAt.Equal(latest) {
		t.Fatalf("leases held until %v and %v, want the reservation's %v", first.Delivery.DueAt, enough.Delivery.DueAt, latest)
	}

	d.mu.Lock()
	held, queued := d.held, len(d.queued[hook])
	d.mu.Unlock()
	if queued != 2 || held != 2 {
		t.Fatalf("holding %d with %d queued; want the two tasks with time left queued", held, queued)
	}
	if len(f.released) != 1 || f.released[0] != short.Ref() || f.releaseAfter[0] != 0 {
		t.Fatalf("given back %v after %v; want only the task whose lease is too short, due now", f.released, f.releaseAfter)
	}
	// Given back due now, it is for the claim loop to take again.
	select {
	case <-d.wake:
	default:
		t.Fatal("giving a task back did not wake the claim loop")
	}

	// The queue hands on only tasks that still have time.
	f.released = nil
	d.mu.Lock()
	d.queued[hook] = []*webhook.Task{short, enough}
	d.held = 3
	d.mu.Unlock()
	if next := d.next(hook); next != enough {
		t.Fatalf("next = %v, want the task with time left", next)
	}
	d.releases.Wait()
	if len(f.released) != 1 || f.released[0] != short.Ref() || d.held != 1 || len(d.queued[hook]) != 0 {
		t.Fatalf("given back %v, holding %d, queue %d", f.released, d.held, len(d.queued[hook]))
	}
	select {
	case <-d.wake:
	default:
		t.Fatal("giving an expired task back did not wake the claim loop")
	}
	// An empty queue frees the slot, and gives nothing back; the freed
	// room wakes the claim loop, whose last claim was short of it.
	calls := len(f.releaseAfter)
	d.mu.Lock()
	d.short = true
	d.mu.Unlock()
	if next := d.next(hook); next != nil || d.held != 0 {
		t.Fatalf("next = %v with %d held, want the slot freed", next, d.held)
	}
	d.releases.Wait()
	if _, ok := d.inflight[hook]; ok || len(f.releaseAfter) != calls {
		t.Fatalf("in flight %v, %d releases; want the webhook forgotten and no release", d.inflight, len(f.releaseAfter)-calls)
	}
	select {
	case <-d.freed:
	default:
		t.Fatal("a freed slot did not wake the claim loop")
	}
}

// A queue draining to half wakes the claim loop, which had stopped
// claiming for that webhook.
func TestSetQueueWakesAtHalf(t *testing.T) {
	d, _ := running(t, Config{})
	hook := uuid.UUID{0xd}
	q := make([]*webhook.Task, maxQueuedPerWebhook)
	// Not while the last claim had all the room it wanted: nothing was
	// left behind for this webhook.
	d.setQueue(hook, q[:maxQueuedPerWebhook/2])
	select {
	case <-d.freed:
		t.Fatal("woke though the last claim was not short of room")
	default:
	}
	d.short = true
	d.setQueue(hook, q[:maxQueuedPerWebhook/2+1])
	select {
	case <-d.freed:
		t.Fatal("woke above half")
	default:
	}
	d.setQueue(hook, q[:maxQueuedPerWebhook/2])
	select {
	case <-d.freed:
	default:
		t.Fatal("did not wake at half")
	}
	d.setQueue(hook, nil)
	if _, ok := d.queued[hook]; ok {
		t.Fatal("an empty queue was kept")
	}
}

// Outcomes finished together are written in one transaction; a failed
// write is retried, and counted in the metrics only once written.
func TestRecordBatchesAndRetries(t *testing.T) {
	reg := prometheus.NewRegistry()
	var buf bytes.Buffer
	d, f := running(t, Config{Registry: reg, Log: slog.New(slog.NewTextHandler(&buf, nil))})
	f.failures = 1
	for i := range 3 {
		d.outcomes <- webhook.Outcome{Status: webhook.DeliverySucceeded, Attempt: webhook.Attempt{Number: i + 1, StatusCode: 200}}
	}
	close(d.outcomes)
	d.record()
	if len(f.completed) != 1 || len(f.completed[0]) != 3 {
		t.Fatalf("written as %d batches, want one of 3", len(f.completed))
	}
	var m dto.Metric
	if err := d.m.outcomes.WithLabelValues("succeeded").Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 3 {
		t.Fatalf("%v successes counted, want 3", n)
	}
	if !strings.Contains(buf.String(), "try=1") || strings.Contains(buf.String(), "try=2") {
		t.Fatalf("log %q, want one failed try", buf.String())
	}
	if strings.Contains(buf.String(), "dropped outcomes") {
		t.Fatalf("log %q: nothing was dropped", buf.String())
	}
}

// A recorded outcome stops its delivery being held (and renewed), unless
// the delivery was claimed again meanwhile under another lease.
func TestRecorded(t *testing.T) {
	d, _ := running(t, Config{})
	mine, again := task(uuid.UUID{0xf}, clock), task(uuid.UUID{0xf}, clock)
	mine.Delivery.Lease, again.Delivery.Lease = 1, 3
	d.leased[mine.Delivery.ID], d.leased[again.Delivery.ID] = mine, again
	d.recorded([]webhook.Outcome{
		{Attempt: webhook.Attempt{DeliveryID: mine.Delivery.ID}, Lease: 1},
		{Attempt: webhook.Attempt{DeliveryID: again.Delivery.ID}, Lease: 2},
	})
	if _, ok := d.leased[mine.Delivery.ID]; ok {
		t.Fatal("a recorded delivery is still held")
	}
	if d.leased[again.Delivery.ID] != again {
		t.Fatal("a delivery claimed again under a new lease was forgotten")
	}
}

// A task is sent only while its lease covers a request (Timeout) and the
// time to record it (5 s); one that does not is given back.
func TestHoldsLeaseMargin(t *testing.T) {
	d, f := running(t, Config{Timeout: 10 * time.Second})
	enough, short := task(uuid.UUID{0xa}, clock.Add(15*time.Second)), task(uuid.UUID{0xa}, clock.Add(15*time.Second-time.Microsecond))
	d.leased[enough.Delivery.ID], d.leased[short.Delivery.ID] = enough, short
	if !d.holds(enough) {
		t.Fatal("a task whose lease covers Timeout + 5 s was not sent")
	}
	if d.holds(short) {
		t.Fatal("a task whose lease ends within Timeout + 5 s was sent")
	}
	d.releases.Wait()
	if len(f.released) != 1 || f.released[0] != short.Ref() {
		t.Fatalf("given back %v, want the short one", f.released)
	}
}

// Outcomes that finish a moment apart share a transaction: the first
// waits for company.
func TestRecordLingers(t *testing.T) {
	d, f := running(t, Config{})
	done := make(chan struct{})
	go func() { d.record(); close(done) }()
	d.outcomes <- webhook.Outcome{Status: webhook.DeliverySucceeded}
	time.Sleep(time.Millisecond)
	d.outcomes <- webhook.Outcome{Status: webhook.DeliverySucceeded}
	close(d.outcomes)
	<-done
	if len(f.completed) != 1 || len(f.completed[0]) != 2 {
		t.Fatalf("written as %d batches, want one of 2", len(f.completed))
	}
}

// A batch holds at most 256 outcomes.
func TestRecordBatchSize(t *testing.T) {
	d, f := running(t, Config{})
	d.outcomes = make(chan webhook.Outcome, 300)
	for range 257 {
		d.outcomes <- webhook.Outcome{Status: webhook.DeliveryFailed}
	}
	close(d.outcomes)
	d.record()
	if len(f.completed) != 2 || len(f.completed[0]) != 256 || len(f.completed[1]) != 1 {
		t.Fatalf("%d batches, want 256 then 1", len(f.completed))
	}
}

// After three failed writes the batch is given up: the leases expire and
// the deliveries are sent again.
func TestRecordGivesUp(t *testing.T) {
	var buf bytes.Buffer
	d, f := running(t, Config{Log: slog.New(slog.NewTextHandler(&buf, nil))})
	f.failures = 3
	d.write([]webhook.Outcome{{Status: webhook.DeliverySucceeded}})
	if len(f.completed) != 0 || f.failures != 0 || !strings.Contains(buf.String(), "try=3") {
		t.Fatalf("%d written, %d failures left, log %q; want three tries and none written", len(f.completed), f.failures, buf.String())
	}
}

// The metrics count outcomes, time only real requests, and count the
// disables the store reports.
func TestObserve(t *testing.T) {
	d, f := running(t, Config{})
	d.m.observe(webhook.Outcome{Status: webhook.DeliveryFailed, Attempt: webhook.Attempt{Error: "not sent: the webhook is disabled"}})
	d.m.observe(webhook.Outcome{Status: webhook.DeliveryPending, Attempt: webhook.Attempt{StatusCode: 500}})
	d.m.observe(webhook.Outcome{Status: webhook.DeliveryPending, Attempt: webhook.Attempt{Duration: time.Second, Error: "timed out"}})
	f.disabled = []webhook.DisabledWebhook{{WebhookRef: webhook.WebhookRef{OrganizationID: uuid.UUID{1}, ID: uuid.UUID{2}}, UpdatedAt: clock}}
	d.write([]webhook.Outcome{{Status: webhook.DeliveryFailed, Attempt: webhook.Attempt{StatusCode: 410}, DisableReason: "gone"}})
	var m dto.Metric
	if err := d.m.duration.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetHistogram().GetSampleCount(); n != 3 {
		t.Fatalf("%d durations observed, want 3 (not the attempt never sent)", n)
	}
	m.Reset()
	if err := d.m.disabled.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetCounter().GetValue(); n != 1 {
		t.Fatalf("%v disables counted, want 1", n)
	}
	for label, want := range map[string]float64{"failed": 2, "retry": 2, "succeeded": 0} {
		m.Reset()
		if err := d.m.outcomes.WithLabelValues(label).Write(&m); err != nil {
			t.Fatal(err)
		}
		if n := m.GetCounter().GetValue(); n != want {
			t.Fatalf("%v %s outcomes, want %v", n, label, want)
		}
	}
}

// Stopping with nothing queued gives nothing back; a successful release
// logs nothing.
func TestReleaseQueued(t *testing.T) {
	var buf bytes.Buffer
	d, f := running(t, Config{Log: slog.New(slog.NewTextHandler(&buf, nil))})
	d.releaseQueued()
	if len(f.releaseAfter) != 0 {
		t.Fatalf("%d releases with nothing queued", len(f.releaseAfter))
	}
	hook := uuid.UUID{0xe}
	tk := task(hook, clock.Add(time.Minute))
	d.queued[hook] = []*webhook.Task{tk}
	d.held = 1
	d.releaseQueued()
	if len(f.released) != 1 || f.released[0] != tk.Ref() || d.held != 0 || len(d.queued) != 0 || buf.Len() != 0 {
		t.Fatalf("released %v, holding %d, queues %d, log %q", f.released, d.held, len(d.queued), buf.String())
	}
}

// A target asking to wait (429 or 503 with Retry-After) is retried then,
// within the schedule's bounds; other statuses follow the schedule.
func TestAttemptRetryAfter(t *testing.T) {
	for _, c := range []struct {
		code       int
		retryAfter string
		want       time.Duration
	}{
		{429, "120", 2 * time.Minute},
		{503, "120", 2 * time.Minute},
		{503, clock.Add(3 * time.Minute).Format(http.TimeFormat), 3 * time.Minute},
		{500, "120", 5 * time.Second},
		{429, "", 5 * time.Second},
		{429, "soon", 5 * time.Second},
		{429, "-5", 5 * time.Second},
		// Longer than a Duration holds: as long as the schedule allows,
		// not a wrapped-around few milliseconds (18446744074 s is 2^64 ns
		// and 0.29 s) nor an unreadable value.
		{429, "18446744074", time.Hour},
		{429, "99999999999999999999", time.Hour},
	} {
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("webhook-id") == "" {
				t.Error("a STANDARD request came without its webhook-id")
			}
			if c.retryAfter != "" {
				w.Header().Set("Retry-After", c.retryAfter)
			}
			w.WriteHeader(c.code)
		}))
		d, _ := running(t, Config{Client: target.Client(), Schedule: webhook.Schedule{0, 5 * time.Second, time.Hour},
			Rand: func() float64 { return 0.5 }})
		tk := &webhook.Task{Webhook: webhook.Webhook{Enabled: true, Kind: webhook.KindStandard, TargetURL: target.URL},
			Delivery: webhook.Delivery{Attempts: 0}}
		o := d.attempt(context.Background(), tk)
		target.Close()
		if o.Attempt.ID.Version() != 7 {
			t.Fatalf("attempt id %v is not a UUIDv7", o.Attempt.ID)
		}
		if o.Status != webhook.DeliveryPending || !o.NextAttemptAt.Equal(clock.Add(c.want)) || o.Attempt.Number != 1 || o.Attempt.StatusCode != c.code {
			t.Fatalf("%d Retry-After %q: %s at %v (attempt %d), want pending at +%v", c.code, c.retryAfter, o.Status,
				o.NextAttemptAt.Sub(clock), o.Attempt.Number, c.want)
		}
	}
}

// A disabled webhook gets no request; the attempt says why.
func TestAttemptDisabledSendsNothing(t *testing.T) {
	hits := 0
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	defer target.Close()
	d, _ := running(t, Config{Client: target.Client()})
	o := d.attempt(context.Background(), &webhook.Task{Webhook: webhook.Webhook{TargetURL: target.URL}, Delivery: webhook.Delivery{Attempts: 2}})
	if hits != 0 || o.Status != webhook.DeliveryFailed || o.Attempt.Number != 3 || !strings.Contains(o.Attempt.Error, "disabled") {
		t.Fatalf("%d requests, outcome %+v", hits, o)
	}
}

// A SLACK request is not signed.
func TestSlackUnsigned(t *testing.T) {
	var got http.Header
	target := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Header }))
	defer target.Close()
	d, _ := running(t, Config{Client: target.Client()})
	o := d.attempt(context.Background(), &webhook.Task{Webhook: webhook.Webhook{Enabled: true, Kind: webhook.KindSlack,
		TargetURL: target.URL, TargetSecret: "s3cret"}})
	if o.Status != webhook.DeliverySucceeded || got.Get("webhook-id") != "" || got.Get("webhook-signature") != "" || got.Get("Qovery-Signature") != "" {
		t.Fatalf("outcome %s, headers %v; want an unsigned request", o.Status, got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"":   0,
		"0":  0,
		"7":  7 * time.Second,
		"-1": 0,
		"x":  0,
		clock.Add(time.Minute).Format(http.TimeFormat):  time.Minute,
		clock.Add(-time.Minute).Format(http.TimeFormat): 0,
		clock.Format(http.TimeFormat):                   0,
	} {
		if got := parseRetryAfter(v, clock); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

// A claim is short of room when it may not ask for a whole claimBatch or
// leaves a webhook out for its full queue: only then does freed room wake
// the claim loop again.
func TestClaimShortOfRoom(t *testing.T) {
	d, _ := running(t, Config{})
	for _, c := range []struct {
		held   int
		queued int // tasks queued for one webhook
		short  bool
	}{
		{held: 0, short: false},
		{held: maxHeld - claimBatch, short: false},
		{held: maxHeld - claimBatch + 1, short: true},
		{held: maxHeld, short: true},
		{held: maxQueuedPerWebhook - 1, queued: maxQueuedPerWebhook - 1, short: false},
		{held: maxQueuedPerWebhook, queued: maxQueuedPerWebhook, short: true},
	} {
		d.mu.Lock()
		d.held, d.short = c.held, !c.short
		d.queued = map[uuid.UUID][]*webhook.Task{}
		if c.queued > 0 {
			d.queued[uuid.UUID{0xe}] = make([]*webhook.Task, c.queued)
		}
		d.mu.Unlock()
		d.claim(context.Background(), true)
		if d.short != c.short {
			t.Errorf("holding %d, %d queued for a webhook: short %v, want %v", c.held, c.queued, d.short, c.short)
		}
	}
}

// After a fruitless claim (it left webhooks out and found nothing else
// due), a claim that would leave out at least those webhooks is not made
// for fruitlessFor polls' time, unless woken: only time or new work can
// have made something else due.
func TestFruitlessClaimNotRepeated(t *testing.T) {
	d, f := running(t, Config{PollInterval: time.Second})
	full, other := uuid.UUID{0xf}, uuid.UUID{0xe}
	fill := func(id uuid.UUID) {
		d.mu.Lock()
		defer d.mu.Unlock()
		for range maxQueuedPerWebhook {
			d.queued[id] = append(d.queued[id], task(id, clock.Add(time.Hour)))
		}
	}
	drain := func(id uuid.UUID) {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.queued, id)
	}
	claims := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.claims)
	}
	want := func(n int, what string) {
		t.Helper()
		if got := claims(); got != n {
			t.Fatalf("%s: %d claims made, want %d", what, got, n)
		}
	}

	fill(full)
	d.claim(context.Background(), false)
	want(1, "first claim")
	d.claim(context.Background(), false)
	want(1, "the same claim again")
	fill(other)
	d.claim(context.Background(), false)
	want(1, "a claim leaving out more webhooks")
	d.claim(context.Background(), true)
	want(2, "a woken claim")
	// A queue drained: its webhook's deliveries may be due.
	drain(full)
	d.claim(context.Background(), false)
	want(3, "a claim leaving out fewer webhooks")
	drain(other)
	fill(full)
	d.claim(context.Background(), false)
	want(4, "a claim leaving out other webhooks")
	// Time may make deliveries due: the fruitless claim ages out.
	d.nothingSince = time.Now().Add(-fruitlessFor * d.cfg.PollInterval)
	d.claim(context.Background(), false)
	want(5, "a claim after fruitlessFor polls")
	// Woken with no room: not made, but the fruitless claim is forgotten.
	d.mu.Lock()
	d.held = maxHeld
	d.mu.Unlock()
	d.claim(context.Background(), true)
	want(5, "a woken claim without room")
	d.mu.Lock()
	d.held = 0
	d.mu.Unlock()
	d.claim(context.Background(), false)
	want(6, "a claim after a wake-up")
}

// Run makes fruitless claims no more often than every fruitlessFor polls,
// and still claims what comes due without a wake-up (a retry, another
// node's delivery).
func TestFruitlessClaimsPaced(t *testing.T) {
	f := &fakeQueue{}
	const every = 10 * time.Millisecond
	d := New(Config{Store: f, PollInterval: every, Timeout: 10 * time.Second})
	full := uuid.UUID{0xf}
	for range maxQueuedPerWebhook {
		d.queued[full] = append(d.queued[full], task(full, time.Now().Add(time.Hour)))
	}
	claims := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.claims)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// The 5th claim comes 4 × (80 ms and up to a poll) after the first:
	// at 40 ms if every poll claimed; later on a slow machine, never
	// sooner. Freed room, signalled every millisecond meanwhile (requests
	// of other webhooks ending), does not make a claim either.
	start := time.Now()
	for deadline := start.Add(5 * time.Second); claims() < 5; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d claims in 5 s with a %v poll", claims(), every)
		}
		select {
		case d.freed <- struct{}{}:
		default:
		}
	}
	if at := time.Since(start); at < 4*fruitlessFor*every {
		t.Fatalf("5 fruitless claims in %v with a %v poll; want one per %v at most", at, every, fruitlessFor*every)
	}
	f.mu.Lock()
	f.claimed = []*webhook.Task{task(uuid.UUID{0xb}, time.Now().Add(time.Hour))}
	f.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		f.mu.Lock()
		taken := f.claimed == nil
		f.mu.Unlock()
		if taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a delivery due without a wake-up was not claimed")
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.claims {
		if len(p.ExcludeWebhooks) != 1 || p.ExcludeWebhooks[0] != full {
			t.Fatalf("claim %+v, want the full webhook left out", p)
		}
	}
}
