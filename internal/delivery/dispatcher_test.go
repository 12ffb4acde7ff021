package delivery

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// counting is the real SQLite store, counting the deliveries given back
// and completed, so a test can check every task handed to the dispatcher
// ends one way or the other.
type counting struct {
	*sqlite.DB
	mu                  sync.Mutex
	released, completed int
	claims              int
}

func (s *counting) DeliveryClaim(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Task, error) {
	s.mu.Lock()
	s.claims++
	s.mu.Unlock()
	return s.DB.DeliveryClaim(ctx, p)
}

func (s *counting) claimed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims
}

func (s *counting) DeliveryRelease(ctx context.Context, p webhook.ReleaseParams) error {
	s.mu.Lock()
	s.released += len(p.Refs)
	s.mu.Unlock()
	return s.DB.DeliveryRelease(ctx, p)
}

func (s *counting) DeliveryComplete(ctx context.Context, outcomes []webhook.Outcome) (webhook.CompleteResult, error) {
	s.mu.Lock()
	s.completed += len(outcomes)
	s.mu.Unlock()
	return s.DB.DeliveryComplete(ctx, outcomes)
}

func (s *counting) counts() (released, completed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.released, s.completed
}

// waitCompleted waits until at least n outcomes were given to
// DeliveryComplete. (A 410 stored as outdated, see webhook.Outcome.Against,
// adds one: its delivery is claimed again at once, and fails unsent if
// the webhook is disabled.)
func (s *counting) waitCompleted(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, completed := s.counts(); completed >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d attempts were not recorded", n)
		}
	}
}

func newStore(t *testing.T) *counting {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hookd.db"), storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &counting{DB: db}
}

func createWebhook(t *testing.T, s webhook.Store, url string) *webhook.Webhook {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: uuid.New(), CreatedAt: now, UpdatedAt: now,
		Kind: webhook.KindStandard, TargetURL: url, Enabled: true, Events: webhook.EventTypes}
	if err := s.WebhookCreate(context.Background(), w, 0, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

// startDispatcher runs d until the test ends and returns once it takes
// deliveries from intake.
func startDispatcher(t *testing.T, d *Dispatcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	waitTaking(t, d)
	return stop
}

// waitTaking returns once d, running, takes deliveries from intake.
func waitTaking(t *testing.T, d *Dispatcher) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if l := d.Reserve(1); l.Limit == 1 {
			d.Send(nil, l)
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher did not start")
		}
	}
}

// newHungTarget is a target that never answers until the test ends; each
// request says so on arrived (buffered for one).
func newHungTarget(t *testing.T) (hung *httptest.Server, arrived <-chan struct{}) {
	in, block := make(chan struct{}, 1), make(chan struct{})
	hung = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in <- struct{}{}
		<-block
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(block) })
	return hung, in
}

// intake commits n events for w's organization, leasing what d grants.
func intake(t *testing.T, s webhook.Store, d *Dispatcher, w *webhook.Webhook, n int) {
	t.Helper()
	events := make([]*webhook.Event, n)
	for i := range events {
		events[i] = &webhook.Event{OrganizationID: w.OrganizationID, CreatedAt: time.Now().UTC(), Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	}
	lease := d.Reserve(n)
	rs, err := s.EventsCreate(context.Background(), events, lease)
	if err != nil {
		d.Send(nil, lease)
		t.Fatal(err)
	}
	var tasks []*webhook.Task
	for _, r := range rs {
		tasks = append(tasks, r.Tasks...)
	}
	if len(tasks) != lease.Limit {
		t.Fatalf("%d deliveries leased, %d granted", len(tasks), lease.Limit)
	}
	d.Send(tasks, lease)
}

// A webhook whose target hangs keeps MaxInflightPerWebhook requests and
// one full queue: what intake leased beyond that goes back to the store,
// due now, instead of filling the dispatcher ahead of every other webhook.
func TestSendCapsAHungWebhook(t *testing.T) {
	block := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(block) })
	s := newStore(t)
	w := createWebhook(t, s, hung.URL)
	d := New(Config{Store: s, Client: hung.Client(), Timeout: 30 * time.Second, StopGrace: 50 * time.Millisecond,
		MaxInflightPerWebhook: 8, PollInterval: time.Hour})
	stop := startDispatcher(t, d)

	intake(t, s, d, w, 600)
	d.mu.Lock()
	held, queued := d.held, len(d.queued[w.ID])
	d.mu.Unlock()
	if held != 8+maxQueuedPerWebhook || queued != maxQueuedPerWebhook {
		t.Fatalf("holding %d deliveries (%d queued); want %d in flight and %d queued", held, queued, 8, maxQueuedPerWebhook)
	}
	// Given back in the background: intake does not wait for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		pending, err := s.DeliveryList(context.Background(), webhook.DeliveryListParams{OrganizationID: w.OrganizationID,
			WebhookID: w.ID, Status: webhook.DeliveryPending, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 600-held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries given back pending, want %d", len(pending), 600-held)
		}
	}

	// A stop gives back the queue and ends the hung requests.
	stop()
	released, completed := s.counts()
	if d.held != 0 || released+completed != 600 {
		t.Fatalf("after the stop: holding %d, %d given back and %d recorded of 600", d.held, released, completed)
	}
}

// Reservations and hand-overs racing with a stop: every task handed over
// is sent or given back, and no room stays reserved.
func TestSendRacesStop(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ok.Close)
	for round := range 10 {
		s := newStore(t)
		w := createWebhook(t, s, ok.URL)
		d := New(Config{Store: s, Client: ok.Client(), Timeout: time.Second, PollInterval: time.Hour})
		stop := startDispatcher(t, d)
		var wg sync.WaitGroup
		var mu sync.Mutex
		sent := 0
		for range 4 {
			wg.Go(func() {
				for range 20 {
					lease := d.Reserve(3)
					events := make([]*webhook.Event, 3)
					for i := range events {
						events[i] = &webhook.Event{OrganizationID: w.OrganizationID, CreatedAt: time.Now().UTC(),
							Type: webhook.EventDeploymentStarted, ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
					}
					rs, err := s.EventsCreate(context.Background(), events, lease)
					var tasks []*webhook.Task
					if err == nil {
						for _, r := range rs {
							tasks = append(tasks, r.Tasks...)
						}
					}
					mu.Lock()
					sent += len(tasks)
					mu.Unlock()
					d.Send(tasks, lease)
				}
			})
		}
		time.Sleep(time.Duration(round) * time.Millisecond)
		stop()
		wg.Wait()
		released, completed := s.counts()
		if d.held != 0 || released+completed != sent {
			t.Fatalf("round %d: holding %d after the stop; %d given back and %d recorded of %d handed over", round, d.held, released, completed, sent)
		}
	}
}

// Deliveries leased at intake and sent one after the other do not make
// the claim loop look for more each time a request ends: at a low rate
// that would be a transaction of the one SQLite writer per delivery, all
// finding nothing. Only room freed while the last claim was short of it
// wakes the loop.
func TestFinishedRequestsDoNotClaim(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ok.Close)
	s := newStore(t)
	w := createWebhook(t, s, ok.URL)
	d := New(Config{Store: s, Client: ok.Client(), Timeout: time.Second, PollInterval: time.Hour})
	stop := startDispatcher(t, d)
	const n = 20
	for i := range n {
		intake(t, s, d, w, 1)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, completed := s.counts(); completed == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivery %d not recorded", i+1)
			}
		}
	}
	stop()
	// Run's first claim finds nothing, and nothing wakes it again.
	if c := s.claimed(); c > 1 {
		t.Fatalf("%d claims for %d deliveries leased at intake, want the first one only", c, n)
	}
}

// When the last claim was short of room, a request that ends wakes the
// claim loop, which takes the deliveries it had to leave.
func TestFreedRoomWakesAShortClaim(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ok.Close)
	s := newStore(t)
	w := createWebhook(t, s, ok.URL)
	d := New(Config{Store: s, Client: ok.Client(), Timeout: time.Second, PollInterval: time.Hour})
	// Nearly full before it runs: its first claim is short of room.
	d.held = maxHeld - 1
	// Three deliveries due, none leased.
	events := make([]*webhook.Event, 3)
	for i := range events {
		events[i] = &webhook.Event{OrganizationID: w.OrganizationID, CreatedAt: time.Now().UTC(), Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	}
	if _, err := s.EventsCreate(context.Background(), events, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// The first claim takes one; when it is sent, the freed room makes
	// the loop claim again, without a wake-up or a poll.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, completed := s.counts(); completed == 3 {
			break
		}
		if time.Now().After(deadline) {
			_, completed := s.counts()
			t.Fatalf("%d of 3 deliveries sent after %d claims: freed room did not wake the claim loop", completed, s.claimed())
		}
	}
	d.mu.Lock()
	d.held -= maxHeld - 1
	d.mu.Unlock()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A target that answers a status the store cannot keep (Go's HTTP/2
// client takes any integer as :status, its HTTP/1 client any three
// digits) fails its own attempt, recorded with the reason, and the other
// outcomes of its batch are recorded; 100 to 999 are kept as they are. The store refuses a batch holding
// such a status whole: the delivery stayed running, sent again at each
// lease's end and never failed, and took the other outcomes of its
// batch, other webhooks' among them, with it.
func TestOutOfRangeStatusFailsItsAttemptAlone(t *testing.T) {
	s := newStore(t)
	good := createWebhook(t, s, "https://good.example/hook")
	refused, kept := []int{-1, 0, 99, 1000}, []int{100, 999} // kept: failed attempts, as any status not 2xx
	codes := slices.Concat(refused, kept)
	bad := map[int]*webhook.Webhook{}
	for _, code := range codes {
		w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: good.OrganizationID, CreatedAt: good.CreatedAt,
			UpdatedAt: good.UpdatedAt, Kind: webhook.KindStandard, TargetURL: fmt.Sprintf("https://status%d.example/hook", code),
			Enabled: true, Events: webhook.EventTypes}
		if err := s.WebhookCreate(context.Background(), w, 0, nil); err != nil {
			t.Fatal(err)
		}
		bad[code] = w
	}
	// The good target answers once the others have theirs, so that all
	// the outcomes finish within recordLinger and share a batch.
	var answered sync.WaitGroup
	answered.Add(len(codes))
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		code := http.StatusOK
		if r.URL.Host == "good.example" {
			answered.Wait()
		} else {
			fmt.Sscanf(r.URL.Host, "status%d.example", &code)
			defer answered.Done()
		}
		return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})}
	d := New(Config{Store: s, Client: client, Timeout: time.Second})
	startDispatcher(t, d)
	intake(t, s, d, good, 1) // one event, a delivery to each
	attempts := func(w *webhook.Webhook) []*webhook.Attempt {
		t.Helper()
		as, err := s.AttemptList(context.Background(), webhook.AttemptListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	recorded := func() (n int) {
		for _, w := range append([]*webhook.Webhook{good}, slices.Collect(maps.Values(bad))...) {
			n += len(attempts(w))
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); recorded() < 1+len(codes); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d outcomes recorded", recorded(), 1+len(codes))
		}
	}
	if as := attempts(good); as[0].StatusCode != http.StatusOK {
		t.Errorf("the good target's attempt: status %d, want 200", as[0].StatusCode)
	}
	for _, code := range kept {
		if a := attempts(bad[code])[0]; a.StatusCode != code || a.Error != "" {
			t.Errorf("a target answering %d: status %d, error %q; want the status kept", code, a.StatusCode, a.Error)
		}
	}
	for _, code := range refused {
		want := fmt.Sprintf("invalid HTTP status code %d", code)
		if a := attempts(bad[code])[0]; a.StatusCode != 0 || a.Error != want {
			t.Errorf("a target answering %d: status %d, error %q; want no status and %q", code, a.StatusCode, a.Error, want)
		}
	}
}

// A request the stop's grace cuts off got no answer from the target: it is
// not an attempt that failed. The delivery goes back to the queue due now,
// as an unsent one does, and is neither failed for good (here its only
// attempt) nor held against its webhook's health.
func TestStopGraceCutIsNotAFailure(t *testing.T) {
	hung, arrived := newHungTarget(t)
	s := newStore(t)
	w := createWebhook(t, s, hung.URL)
	d := New(Config{Store: s, Client: hung.Client(), Timeout: 30 * time.Second, StopGrace: 50 * time.Millisecond,
		Schedule: webhook.Schedule{0}, PollInterval: time.Hour})
	stop := startDispatcher(t, d)
	intake(t, s, d, w, 1)
	<-arrived
	stop()

	list, err := s.DeliveryList(context.Background(), webhook.DeliveryListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID, Limit: 10})
	if err != nil || len(list) != 1 {
		t.Fatalf("deliveries %v, %v", list, err)
	}
	if dl := list[0]; dl.Status != webhook.DeliveryPending || dl.Attempts != 0 || dl.DueAt.After(time.Now()) {
		t.Errorf("after a stop cut its request: %s, %d attempts, due %v; want pending, 0 attempts, due now", dl.Status, dl.Attempts, dl.DueAt)
	}
	got, err := s.WebhookGet(context.Background(), w.OrganizationID, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.FailingSince.IsZero() {
		t.Errorf("the webhook is failing since %v: the stop's cut counted against it", got.FailingSince)
	}
}

// hookd_webhooks_disabled_total counts webhooks disabled, not the attempts
// that each would have disabled one: requests in flight together to a
// target that answers 410 all decide to disable it, and the store
// disables it once.
func TestDisabledCountedOnce(t *testing.T) {
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
	}))
	t.Cleanup(gone.Close)
	s := newStore(t)
	w := createWebhook(t, s, gone.URL)
	reg := prometheus.NewRegistry()
	d := New(Config{Store: s, Client: gone.Client(), Timeout: 5 * time.Second, MaxInflightPerWebhook: 8,
		PollInterval: time.Hour, Registry: reg})
	stop := startDispatcher(t, d)
	disabled := func() float64 { return disabledTotal(t, reg) }
	recorded := func(n int) { s.waitCompleted(t, n) }
	intake(t, s, d, w, 8)
	recorded(8)
	// The webhook is disabled once its last outcome is written: wait for
	// the writer to count it (a count that goes on would show once enabled).
	for deadline := time.Now().Add(10 * time.Second); disabled() == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if got, err := s.WebhookGet(context.Background(), w.OrganizationID, w.ID); err != nil || got.Enabled {
		t.Fatalf("the webhook is still enabled (%v)", err)
	}
	// Enabled again by a person, disabled again: counted again.
	enable := func(h *webhook.Webhook) (*webhook.AuditEntry, error) {
		h.Enabled, h.DisabledReason = true, ""
		return nil, nil
	}
	if _, err := s.WebhookUpdate(context.Background(), webhook.WebhookChange{OrganizationID: w.OrganizationID, ID: w.ID, Apply: enable}); err != nil {
		t.Fatal(err)
	}
	intake(t, s, d, w, 1)
	recorded(9)
	stop() // the recorder has counted everything
	if n := disabled(); n != 2 {
		t.Errorf("hookd_webhooks_disabled_total %v after one webhook was disabled, enabled and disabled again; want 2", n)
	}
}

// hookd_webhooks_disabled_total counts the disables the store applied,
// one each, wherever the outcomes that asked for them were decided: two
// nodes whose requests both found the target gone disabled it once; a
// request sent before hookd disabled it and a person enabled it again,
// answered 410 after, disabled nothing, but its delivery, sent again,
// disabled it again; and one answered 410 after a person disabled the
// webhook changed nothing (the person's reason stays).
func TestDisabledCountedByTheStore(t *testing.T) {
	gone := newHeldGone(t)
	let := func(n int) { t.Helper(); gone.let(t, n) }
	node := func(s *counting) (*Dispatcher, *prometheus.Registry, func()) {
		reg := prometheus.NewRegistry()
		d := New(Config{Store: s, Client: gone.Client(), Timeout: 20 * time.Second, MaxInflightPerWebhook: 8,
			PollInterval: time.Hour, Registry: reg})
		return d, reg, startDispatcher(t, d)
	}
	set := func(s webhook.Store, w *webhook.Webhook, enabled bool, reason string) {
		t.Helper()
		apply := func(h *webhook.Webhook) (*webhook.AuditEntry, error) {
			h.Enabled, h.DisabledReason = enabled, reason
			return nil, nil
		}
		if _, err := s.WebhookUpdate(context.Background(), webhook.WebhookChange{OrganizationID: w.OrganizationID, ID: w.ID, Apply: apply}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("two nodes", func(t *testing.T) {
		s := newStore(t)
		w := createWebhook(t, s, gone.URL)
		d1, reg1, stop1 := node(s)
		d2, reg2, stop2 := node(s)
		intake(t, s, d1, w, 1)
		intake(t, s, d2, w, 1)
		let(2)
		s.waitCompleted(t, 2)
		stop1()
		stop2()
		if n := disabledTotal(t, reg1, reg2); n != 1 {
			t.Errorf("hookd_webhooks_disabled_total %v in all after two nodes' requests found the target gone; want 1", n)
		}
	})
	t.Run("enabled again while a request was in flight", func(t *testing.T) {
		s := newStore(t)
		w := createWebhook(t, s, gone.URL)
		d, reg, stop := node(s)
		sent := gone.requests.Load()
		intake(t, s, d, w, 2) // both requests sent to the webhook as enabled
		// Both in flight before the first 410 disables the webhook: one
		// started after would be given back (holds), not answered.
		for deadline := time.Now().Add(10 * time.Second); gone.requests.Load() < sent+2; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the two requests did not reach the target")
			}
		}
		let(1)
		// Disabled once the first outcome is committed (counted is sooner).
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			got, err := s.WebhookGet(context.Background(), w.OrganizationID, w.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Enabled {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first 410 did not disable the webhook")
			}
		}
		// And the dispatcher told of it (Edited), which it is before the
		// disable is counted.
		for deadline := time.Now().Add(10 * time.Second); disabledTotal(t, reg) == 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the first 410's disable was not counted")
			}
		}
		set(s, w, true, "")
		let(1)
		s.waitCompleted(t, 2)
		// The second request read the webhook before hookd's disable
		// (an edit, see webhook.Outcome.Against): its 410 disables nothing, and its
		// delivery is due again, sent to the webhook as it now is.
		if got, err := s.WebhookGet(context.Background(), w.OrganizationID, w.ID); err != nil || !got.Enabled {
			t.Fatalf("the webhook is disabled (%v) by a 410 to a request sent before it was disabled and enabled again", err)
		}
		let(1) // claimed again at once (this node polls every hour)
		s.waitCompleted(t, 3)
		stop()
		if got, err := s.WebhookGet(context.Background(), w.OrganizationID, w.ID); err != nil || got.Enabled {
			t.Fatalf("the webhook is enabled (%v): the 410 to its delivery sent again did not disable it", err)
		}
		if n := disabledTotal(t, reg); n != 2 {
			t.Errorf("hookd_webhooks_disabled_total %v after the webhook was disabled, enabled and disabled again; want 2", n)
		}
	})
	t.Run("disabled by a person meanwhile", func(t *testing.T) {
		s := newStore(t)
		w := createWebhook(t, s, gone.URL)
		d, reg, stop := node(s)
		intake(t, s, d, w, 1)
		set(s, w, false, "paused for maintenance")
		let(1)
		s.waitCompleted(t, 1)
		stop()
		if got, err := s.WebhookGet(context.Background(), w.OrganizationID, w.ID); err != nil || got.DisabledReason != "paused for maintenance" {
			t.Fatalf("the webhook's reason is %q (%v), want the person's", got.DisabledReason, err)
		}
		if n := disabledTotal(t, reg); n != 0 {
			t.Errorf("hookd_webhooks_disabled_total %v after a 410 to a webhook a person had disabled; want 0", n)
		}
	})
}

// heldGone is a target that answers 410 to each request once the test
// lets it (let), or at once after free, and counts the requests that
// reached it.
type heldGone struct {
	*httptest.Server
	answer   chan struct{}
	freed    sync.Once
	requests atomic.Int64
}

func newHeldGone(t *testing.T) *heldGone {
	g := &heldGone{answer: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.requests.Add(1)
		select {
		case <-g.answer:
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusGone)
	}))
	t.Cleanup(g.Close)
	return g
}

// let answers n requests, each waiting already or arriving within 10 s.
func (g *heldGone) let(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case g.answer <- struct{}{}:
		case <-time.After(10 * time.Second):
			t.Fatal("no request waits for an answer")
		}
	}
}

// free answers every request from now on at once; let may not follow.
func (g *heldGone) free() { g.freed.Do(func() { close(g.answer) }) }

// disabledTotal is hookd_webhooks_disabled_total summed over the nodes'
// registries, as a dashboard sums it.
func disabledTotal(t *testing.T, regs ...*prometheus.Registry) float64 {
	t.Helper()
	sum := 0.0
	for _, reg := range regs {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range families {
			if f.GetName() == "hookd_webhooks_disabled_total" {
				sum += f.GetMetric()[0].GetCounter().GetValue()
				found = true
			}
		}
		if !found {
			t.Fatal("no hookd_webhooks_disabled_total")
		}
	}
	return sum
}
