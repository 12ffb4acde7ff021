package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store/postgres"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// claimWatch hands the test the context each claim is made with, and
// closes returned when the first claim has returned.
type claimWatch struct {
	webhook.Store
	ctxs     chan context.Context
	returned chan struct{}
	claims   atomic.Int32
}

func (s *claimWatch) DeliveryClaim(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Task, error) {
	if s.claims.Add(1) == 1 {
		s.ctxs <- ctx
		defer close(s.returned)
	}
	return s.Store.DeliveryClaim(ctx, p)
}

// A PostgreSQL claim commits its leases (the UPDATE) before it reads the
// deliveries' events and webhooks. A stop that comes in between must not
// leave them leased, for nobody to send until the leases end: the claim
// finishes, and the stop gives its deliveries back, due now, unsent.
// The events table is locked to hold the claim between the two.
func TestStopLetsAClaimUnderWayFinish(t *testing.T) {
	url := pgtest.URL(t)
	db := pgtest.MigratedAt(t, url, postgres.Open, storetest.Keys(t))
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(target.Close)
	w := createWebhook(t, db, target.URL)
	const n = 3
	events := make([]*webhook.Event, n)
	for i := range events {
		events[i] = &webhook.Event{OrganizationID: w.OrganizationID, CreatedAt: time.Now().UTC(), Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	}
	if _, err := db.EventsCreate(context.Background(), events, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	unlock := pgtest.LockTables(t, url, "events")

	s := &claimWatch{Store: db, ctxs: make(chan context.Context, 1), returned: make(chan struct{})}
	d := New(Config{Store: s, Client: target.Client(), PollInterval: time.Hour})
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan struct{})
	go func() { d.Run(runCtx); close(done) }()
	claimCtx := <-s.ctxs
	// The leases are committed; the claim waits for the lock to read.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var running int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM deliveries WHERE status = 'running'").Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries leased", running, n)
		}
	}
	stop()
	if claimCtx.Err() != nil {
		// The stop cut the claim's own context: let it give up before its
		// reads may go on, so the test does not depend on which is first.
		<-s.returned
	}
	unlock()
	select {
	case <-done:
	case <-time.After(ClaimTimeout + 5*time.Second):
		t.Fatal("Run did not return")
	}

	rows, err := conn.Query(ctx, "SELECT status::text, due_at <= now() FROM deliveries")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Status string
		Due    bool
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Status != "pending" || !r.Due {
			t.Errorf("after the stop: %v; want every delivery given back, pending and due now (%d in all)", got, n)
			break
		}
	}
	if h := hits.Load(); h != 0 {
		t.Errorf("%d requests sent after the stop; want the claim's deliveries given back unsent", h)
	}
}

// gatedClaims holds each claim, once shut is set, until gate is closed,
// saying so on entered.
type gatedClaims struct {
	*counting
	shut    atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (s *gatedClaims) DeliveryClaim(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Task, error) {
	if s.shut.Load() {
		s.entered <- struct{}{}
		<-s.gate
	}
	return s.counting.DeliveryClaim(ctx, p)
}

// The stop's grace runs from the stop, not from the end of the claim it
// waits for: requests in flight are cut (and given back) at StopGrace
// even while a claim under way holds the claim loop, so that the stop
// takes no longer than its bound.
func TestStopGraceRunsFromTheStop(t *testing.T) {
	hung, arrived := newHungTarget(t)
	s := &gatedClaims{counting: newStore(t), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	w := createWebhook(t, s, hung.URL)
	d := New(Config{Store: s, Client: hung.Client(), Timeout: 30 * time.Second, StopGrace: 50 * time.Millisecond,
		Schedule: webhook.Schedule{0}, PollInterval: time.Hour})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() {
		stop()
		close(s.gate)
		<-done
	})
	waitTaking(t, d)
	intake(t, s, d, w, 1)
	<-arrived
	s.shut.Store(true)
	d.Wake()
	<-s.entered
	stop()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if released, _ := s.counts(); released == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the request in flight was not cut at the grace while a claim held the stop")
		}
	}
}

// A claim that waits for a renewal batch (leaseMu, up to renewEvery on a
// connection gone silent) until after the stop is not made: the stop
// waits for a claim under way, ClaimTimeout from before the stop, and a
// claim begun after it would add the renewal's wait to the stop's bound
// (hookdStop in cmd/hookd/deploy_test.go), and lease deliveries only to
// give them back.
func TestStopMakesNoClaimThatWaitedForARenewal(t *testing.T) {
	s := newStore(t)
	d := New(Config{Store: s, PollInterval: time.Hour})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	d.leaseMu.Lock() // a renewal batch under way
	claimed := make(chan bool)
	go func() { claimed <- d.claim(ctx, true) }()
	stop()
	d.leaseMu.Unlock()
	<-claimed
	if n := s.claimed(); n != 0 {
		t.Errorf("%d claims made after the stop; want none", n)
	}
}

// A stop begins no request, also while a claim under way holds the claim
// loop: the task queued behind a request in flight is not sent when that
// request ends (it is given back, due now), and intake is leased
// nothing, so its deliveries are created pending for any node. Such a
// request would get what is left of the grace, and one cut there is sent
// again.
func TestStopBeginsNoRequestWhileAClaimFinishes(t *testing.T) {
	arrived, answer := make(chan struct{}, 2), make(chan struct{})
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-answer:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(target.Close)
	s := &gatedClaims{counting: newStore(t), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	w := createWebhook(t, s, target.URL)
	d := New(Config{Store: s, Client: target.Client(), Timeout: 10 * time.Second, StopGrace: 10 * time.Second,
		MaxInflightPerWebhook: 1, PollInterval: time.Hour})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	openGate := sync.OnceFunc(func() { close(s.gate) })
	t.Cleanup(func() {
		stop()
		openGate()
		close(answer)
		<-done
	})
	waitTaking(t, d)
	intake(t, s, d, w, 2) // one in flight, one queued behind it
	<-arrived
	s.shut.Store(true)
	d.Wake()
	<-s.entered // a claim under way
	stop()
	// Once the stop has begun (its grace timer is set), intake is leased
	// nothing.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		d.mu.Lock()
		running := d.running
		d.mu.Unlock()
		l := d.Reserve(1)
		d.Send(nil, l)
		if l.Limit == 0 {
			break
		}
		if time.Now().After(deadline) || !running {
			t.Fatalf("intake was leased %d deliveries after the stop, while a claim under way held the claim loop", l.Limit)
		}
	}
	answer <- struct{}{} // the request in flight ends
	// Its slot is freed, or handed to the task queued behind it.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		d.mu.Lock()
		inflight := d.inflight[w.ID]
		d.mu.Unlock()
		if inflight == 0 || len(arrived) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the request's slot was neither freed nor handed on")
		}
	}
	if len(arrived) > 0 {
		t.Error("the task queued behind the request in flight was sent after the stop")
	}
	openGate()
	<-done
	if released, completed := s.counts(); released != 1 || completed != 1 {
		t.Errorf("%d given back, %d recorded; want the queued task given back, the request in flight recorded", released, completed)
	}
}

// What a claim under way at the stop takes is given back, due now, and
// not sent, on SQLite too, whose claim finishes whether or not its caller
// waits: the stop lets requests in flight finish, it begins none.
func TestStopGivesBackWhatAClaimUnderWayTook(t *testing.T) {
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(target.Close)
	s := &gatedClaims{counting: newStore(t), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	w := createWebhook(t, s, target.URL)
	d := New(Config{Store: s, Client: target.Client(), PollInterval: time.Hour})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	waitTaking(t, d)
	const n = 2
	events := make([]*webhook.Event, n)
	for i := range events {
		events[i] = &webhook.Event{OrganizationID: w.OrganizationID, CreatedAt: time.Now().UTC(), Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
	}
	if _, err := s.EventsCreate(context.Background(), events, webhook.Lease{}); err != nil { // queued, for a claim
		t.Fatal(err)
	}
	s.shut.Store(true)
	d.Wake()
	<-s.entered // a claim under way
	stop()
	close(s.gate)
	<-done
	if released, _ := s.counts(); released != n || hits.Load() != 0 {
		t.Errorf("%d given back and %d sent of the %d deliveries the claim under way took; want all given back, none sent", released, hits.Load(), n)
	}
	pending, err := s.DeliveryList(context.Background(), webhook.DeliveryListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID,
		Status: webhook.DeliveryPending, Limit: 10})
	if err != nil || len(pending) != n {
		t.Fatalf("%d deliveries pending after the stop (%v); want the %d claimed, given back", len(pending), err, n)
	}
}
