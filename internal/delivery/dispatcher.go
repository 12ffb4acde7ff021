package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/hookd/hookd/internal/quietlog"
	"github.com/hookd/hookd/internal/signing"
	"github.com/hookd/hookd/internal/webhook"
)

// MaxResponseBody is how much of a target's answer is kept (and read).
const MaxResponseBody = 64 << 10

// Config tunes the dispatcher; zero values take the defaults.
type Config struct {
	Store    webhook.Store
	Client   *http.Client
	Schedule webhook.Schedule
	// Timeout bounds one request; the lease on a claimed delivery is
	// longer (and renewed while the dispatcher holds it, when it nears
	// its end), so a slow target never gets a second concurrent copy.
	Timeout time.Duration
	// MaxInflightPerWebhook bounds the concurrent requests to one webhook,
	// so a hanging target cannot take every worker.
	MaxInflightPerWebhook int
	// DisableAfter disables a webhook failing continuously for this long.
	DisableAfter time.Duration
	// SecretRotationGrace is how long after a webhook's secret changed
	// its requests are signed with the replaced secret too. Unlike the
	// others, zero is not defaulted: it means no grace.
	SecretRotationGrace time.Duration
	// StopGrace is how long requests in flight may go on after Run's
	// context ends; past it they are cancelled and given back, due now,
	// without counting as an attempt.
	StopGrace time.Duration
	// ResponseBodyTimeout bounds reading a target's answer body, which is
	// kept for the delivery log only (default 2s, at most Timeout).
	ResponseBodyTimeout time.Duration
	// PollInterval is how often the queue is checked without a wake-up:
	// it is what makes retries and other nodes' deliveries start on time.
	PollInterval time.Duration
	UserAgent    string
	Now          func() time.Time
	Rand         func() float64
	Log          *slog.Logger
	Registry     prometheus.Registerer
	// Tracer records a span per attempt, and its traceparent is sent to
	// the target (nil: neither).
	Tracer trace.Tracer
}

// Dispatcher claims due deliveries, sends them, and records the outcome.
type Dispatcher struct {
	cfg   Config
	rules webhook.OutcomeRules
	lease time.Duration // a fresh lease's length, at a claim, at intake or at a renewal
	// sendable is the least lease a task needs left to be sent: its
	// request (Timeout) and the time to record it (see holds).
	sendable time.Duration
	lastTick time.Time // of renew, which only renewLoop calls
	wake     chan struct{}
	m        *dispatchMetrics
	// leaseMu holds a claim, and each batch of a renewal, from its call
	// to the store until its result is applied here, so that the two
	// never interleave: a renewal that found lost a lease this
	// dispatcher's own claim had just taken (see adopt) would forget the
	// task in flight before the claim adopted it, and the claim would
	// send the delivery a second time.
	leaseMu sync.Mutex
	// userAgent is cfg.UserAgent, one slice for every request (see
	// contentType).
	userAgent []string

	mu      sync.Mutex
	running bool                        // between Run's start and its stop: tasks are taken
	leased  map[uuid.UUID]*webhook.Task // by delivery id: every task held, until its outcome is recorded; DueAt is the lease's end on our clock
	// recording holds the leased deliveries whose attempt is done and
	// whose outcome waits for the recorder, each with the lease token the
	// outcome is recorded under: a renewal that finds one no longer
	// running raced that outcome's commit, and lost nothing. By token, as
	// leased is by task: a task claimed again while an older one's outcome
	// is on its way (see adopt) is not taken for it, nor it for the older.
	recording map[uuid.UUID]int64
	inflight  map[uuid.UUID]int             // requests in flight per webhook
	queued    map[uuid.UUID][]*webhook.Task // claimed, waiting for a slot of their webhook
	held      int                           // tasks in memory (in flight + queued) and room reserved for them
	// forgotten holds the webhooks deleted lately (see Forget), each
	// until a lease after its delete, and holds refuses their tasks: one
	// claimed or leased at intake just before the delete may be handed
	// over just after Forget, or taken from the queue just before it.
	forgotten map[uuid.UUID]time.Time
	// edited holds the webhooks edited lately on this node (see Edited),
	// each with when and until a lease after, and holds gives back their
	// tasks read before: a claim or an intake commit that read the
	// webhook just before the edit may hand its tasks over just after.
	edited map[uuid.UUID]edit
	freed  chan struct{}
	// short is set while the last claim was held back (no room for a
	// full claim, or webhooks left out for their full queues): only then
	// does freed room wake the claim loop. Otherwise a claim after every
	// finished request would cost the one database writer a transaction
	// per delivery at low rates, and find nothing.
	short    bool
	releases sync.WaitGroup // releases under way, waited for by Run
	sends    sync.WaitGroup // sendAll goroutines, waited for by Run
	sendCtx  context.Context

	outcomes chan webhook.Outcome
	// nothingElse holds the webhooks left out of the last fruitless claim
	// and nothingSince when it was made (see claim). Only claim uses
	// them, on the claim loop's goroutine (or a test's): d.mu does not
	// guard them.
	nothingElse  []uuid.UUID
	nothingSince time.Time
	// Failures that repeat on every poll or tick while the database is
	// down, read-only or full.
	claimErrors, renewErrors quietlog.Log
}

const (
	// maxHeld bounds the claimed deliveries kept in memory (in flight or
	// queued behind their webhook's in-flight limit).
	maxHeld = 4096
	// maxQueuedPerWebhook stops claiming for a webhook that already has
	// this many deliveries waiting; the claim loop is woken when its
	// queue has drained to half.
	maxQueuedPerWebhook = 256
	// claimBatch is the most deliveries claimed in one transaction.
	claimBatch = 512
	// fruitlessFor is how long, in PollIntervals, a fruitless claim keeps
	// others like it from being made (see claim).
	fruitlessFor = 8
	// ClaimTimeout bounds a claim, which takes milliseconds: one whose
	// connection went silent (a network partition that drops packets)
	// would otherwise hold the claim loop for as long as TCP waits,
	// minutes, and its failure would go unlogged meanwhile. A claim cut
	// off may have leased what it claimed: those leases end and the
	// deliveries are claimed again, as after a crash. It bounds, too, how
	// long a stop waits for a claim under way (see claim): exported for
	// the bound of a whole stop, which deployments' grace periods cover.
	ClaimTimeout = 10 * time.Second
	// releaseTimeout bounds giving deliveries back. One that fails or
	// runs out leaves them leased: their leases end and they are claimed
	// again, so it only saves waiting for that.
	releaseTimeout = 10 * time.Second
	// recordTimeout bounds one try at recording a batch of outcomes, of
	// recordTries. Longer than a claim's: the batch holds attempts made,
	// which are sent again if none of the tries lands.
	recordTimeout = 30 * time.Second
	recordTries   = 3
)

// Leases. A task is sent only while its lease has sendable (Timeout +
// recordTime) left (see holds). Every renewEvery the dispatcher looks at
// the leases it holds and renews only those that would fall below
// sendable within renewAhead: most deliveries are sent and recorded
// within a second or two of being claimed, and renewing every one of them
// at every tick made the renewals the busiest statements of a shared
// PostgreSQL. A fresh lease is leaseMargin above sendable, so a delivery
// is first renewed once held for leaseMargin - renewAhead (7.5 s), and
// each renewal comes at a tick that finds the lease two to three ticks
// above sendable: if it fails, the next tick still finds the task a
// whole tick above sendable, and tries again; a second failure in a row
// leaves it at the edge. Another node takes a lease over only once it has
// ended, so the leases a tick skips are still ours. A delete of their
// webhook removes its deliveries at once, and Forget stops sending them
// here: the API calls it on the node that deleted the webhook, and on
// PostgreSQL the other nodes when notified. A node that misses that
// notification drops them when a renewal finds them gone, within 7.5 to
// 10 s of their last renewal.
//
// The price is paid after a crash: another node waits for the dead
// node's leases to end, at most Timeout + 20 s after it last claimed or
// renewed one (Timeout + 10 s when every lease was renewed at every tick).
const (
	recordTime  = 5 * time.Second
	renewEvery  = 2500 * time.Millisecond
	renewAhead  = 3 * renewEvery
	leaseMargin = 6 * renewEvery
)

// New returns a dispatcher; Run starts it.
func New(cfg Config) *Dispatcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.ResponseBodyTimeout <= 0 {
		cfg.ResponseBodyTimeout = min(cfg.Timeout, 2*time.Second)
	}
	if cfg.MaxInflightPerWebhook <= 0 {
		cfg.MaxInflightPerWebhook = 8
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = 120 * time.Hour
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = min(cfg.Timeout, 12*time.Second)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if len(cfg.Schedule) == 0 {
		cfg.Schedule, _ = webhook.ParseSchedule(webhook.DefaultSchedule)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if cfg.Client == nil {
		cfg.Client = NewHTTPClient(ClientOptions{Timeout: cfg.Timeout})
	}
	return &Dispatcher{
		cfg:   cfg,
		rules: webhook.OutcomeRules{Schedule: cfg.Schedule, DisableAfter: cfg.DisableAfter, Rand: cfg.Rand},
		// The lease covers one request (Timeout) and recording it, and is
		// renewed while the delivery is held, before it gets too short to
		// send (see leaseMargin): a queued delivery keeps it while it
		// waits, and a dead node's deliveries are taken over within
		// Timeout + 20 s. A delivery whose lease can no longer cover its
		// request is not sent (see holds), so no delivery is ever sent by
		// two workers at once.
		lease:     cfg.Timeout + recordTime + leaseMargin,
		sendable:  cfg.Timeout + recordTime,
		userAgent: []string{cfg.UserAgent},
		leased:    map[uuid.UUID]*webhook.Task{},
		recording: map[uuid.UUID]int64{},
		wake:      make(chan struct{}, 1),
		freed:     make(chan struct{}, 1),
		m:         newDispatchMetrics(cfg.Registry, cfg.Store, cfg.Now),
		inflight:  map[uuid.UUID]int{},
		queued:    map[uuid.UUID][]*webhook.Task{},
		forgotten: map[uuid.UUID]time.Time{},
		edited:    map[uuid.UUID]edit{},
		outcomes:  make(chan webhook.Outcome, 1024),
	}
}

// Wake tells the dispatcher deliveries may be due now. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Forget stops sending the deliveries of a webhook just deleted: it drops
// those waiting in its queue, freeing their room, and refuses any other
// not yet started (see forgotten). Their rows went with the webhook, so
// none is given back. Requests in flight finish; their outcomes find
// nothing to record and are dropped as stale.
func (d *Dispatcher) Forget(webhookID uuid.UUID) {
	// Logged after the lock is let go: every send and claim takes it.
	if n := d.forget(webhookID); n > 0 {
		// Not an error, but deliveries that will never be sent: say so.
		d.cfg.Log.Info("dropped the queued deliveries of a deleted webhook", "webhook", webhookID, "count", n)
	}
}

// forget is Forget under d.mu; it returns how many queued deliveries it
// dropped.
func (d *Dispatcher) forget(webhookID uuid.UUID) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.cfg.Now()
	// A lease after its delete, any task of a webhook leased before has
	// less than sendable left, and holds refuses it anyway.
	for id, until := range d.forgotten {
		if now.After(until) {
			delete(d.forgotten, id)
		}
	}
	d.forgotten[webhookID] = now.Add(d.lease)
	q := d.queued[webhookID]
	if len(q) == 0 {
		return 0
	}
	for _, t := range q {
		delete(d.leased, t.Delivery.ID)
	}
	d.held -= len(q)
	delete(d.queued, webhookID)
	d.signalFreed()
	return len(q)
}

// edit is a webhook's edit as Edited heard of it: the webhook's new
// UpdatedAt, and until when tasks read before it may still come.
type edit struct{ at, until time.Time }

// Edited says a webhook was edited (a new URL or secret, disabled by a
// person or by hookd, see write): its deliveries held and not started,
// read as it was before (their Webhook.UpdatedAt is older than
// updatedAt), are given back, due now, so that the claim that takes
// them again reads it as it is now. Without this, those queued behind a
// slow target would go on being sent to the old URL, or to a webhook
// disabled (its target said 410 Gone), for as long as the queue takes
// to drain. Requests in flight finish.
func (d *Dispatcher) Edited(webhookID uuid.UUID, updatedAt time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.cfg.Now()
	for id, e := range d.edited {
		if now.After(e.until) {
			delete(d.edited, id)
		}
	}
	// Edits may be heard out of order (this node's own from the API, then
	// another node's earlier one from a listener that read it late): the
	// newest is kept, so a task that read an earlier edit's version is
	// still read before it.
	if e, ok := d.edited[webhookID]; ok && e.at.After(updatedAt) {
		updatedAt = e.at
	}
	// A lease after the edit, every task read before it has less than
	// sendable left, and holds refuses it anyway.
	d.edited[webhookID] = edit{at: updatedAt, until: now.Add(d.lease)}
	if !d.running {
		return // Run has given back what it queued
	}
	var back []webhook.DeliveryRef
	q := d.queued[webhookID][:0:0]
	for _, t := range d.queued[webhookID] {
		if t.Webhook.UpdatedAt.Before(updatedAt) {
			back = append(back, t.Ref())
			delete(d.leased, t.Delivery.ID)
			continue
		}
		q = append(q, t)
	}
	if len(back) == 0 {
		return
	}
	d.held -= len(back)
	d.setQueue(webhookID, q)
	d.signalFreed()
	d.releases.Go(func() { d.releaseDue(back) })
}

// Run delivers until ctx is done, then stops claiming (a claim under way
// finishes, ClaimTimeout at most, and starts nothing), lets requests in
// flight finish (for StopGrace from ctx's end at most), records their
// outcomes and gives back what was claimed but not sent. It returns once
// all of that is done, so nothing is lost or left leased.
func (d *Dispatcher) Run(ctx context.Context) error {
	recorded := make(chan struct{})
	go func() {
		d.record()
		close(recorded)
	}()

	// Requests are not cancelled with ctx: a stop lets them finish, for
	// StopGrace at most. The grace runs from the stop, not from the claim
	// loop's end: a claim under way at the stop finishes first (see
	// claim), and its wait must not lengthen the requests' (nor the
	// stop's, which app.run bounds).
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	d.mu.Lock()
	d.running, d.sendCtx = true, sendCtx
	d.mu.Unlock()
	// From the stop on no request begins, also while a claim under way
	// holds the claim loop (up to ClaimTimeout): intake is leased
	// nothing, and a request that ends hands its slot to no queued task
	// (see next); releaseQueued gives those back once the loop ends.
	graced := make(chan *time.Timer, 1)
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		d.running = false
		d.mu.Unlock()
		graced <- time.AfterFunc(d.cfg.StopGrace, cancelSends)
	})
	stopRenewing := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		d.renewLoop(stopRenewing)
		close(renewed)
	}()
	poll := time.NewTicker(d.cfg.PollInterval)
	defer poll.Stop()
	// The first claim and a wake-up's are made whatever the last claim
	// found (see claim).
	woken := true
	for ctx.Err() == nil {
		full := d.claim(ctx, woken)
		woken = false
		if full {
			continue // more may be due right now
		}
		select {
		case <-ctx.Done():
		case <-d.wake:
			woken = true
		case <-d.freed:
		case <-poll.C:
		}
	}

	// ctx has ended: the stop has marked the dispatcher stopped, or is
	// about to (see graced), and from then Send gives tasks back and next
	// starts none, so the queue given back stays empty.
	grace := <-graced
	d.releaseQueued()
	d.sends.Wait()
	grace.Stop()
	d.releases.Wait()
	close(d.outcomes)
	<-recorded
	close(stopRenewing)
	<-renewed
	return nil
}

// claim leases as many due deliveries as there is room for and starts
// them; it reports whether it got all it asked for (more may be due).
//
// A fruitless claim, one that left webhooks out (their queues are full)
// and found nothing else due, passed over every due delivery of those
// webhooks: in a backlog's drain 60 to 150 ms of the one SQLite writer,
// and one followed most full claims and polls once every webhook's queue
// had filled, a third of the writer's time. So for fruitlessFor polls'
// time after one, a claim that would leave out at least the same
// webhooks is not made, unless woken: a wake-up is new work, which may be
// anyone's. What only time makes due meanwhile (a retry, a lease
// ending, another node's work whose notification was lost) waits for
// that long at most, and only while this node's queues are full. With
// intake going on, its wake-ups still force a claim per request batch
// whose deliveries were not leased at intake.
func (d *Dispatcher) claim(ctx context.Context, woken bool) bool {
	d.mu.Lock()
	room := maxHeld - d.held
	var exclude []uuid.UUID
	for id, q := range d.queued {
		if len(q) >= maxQueuedPerWebhook {
			exclude = append(exclude, id)
		}
	}
	// Set before the claim, so room freed while it runs wakes the next.
	d.short = room < claimBatch || len(exclude) > 0
	d.mu.Unlock()
	if woken {
		d.nothingElse = nil
	}
	// On the monotonic clock, not cfg.Now: a wall clock set back must not
	// stretch the window, and the poll that ends it ticks in real time.
	if room <= 0 || covers(exclude, d.nothingElse) && time.Since(d.nothingSince) < fruitlessFor*d.cfg.PollInterval {
		return false
	}
	limit := min(room, claimBatch)
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	// A claim that waited here for a renewal batch (renewEvery at most)
	// until after the stop is not made: the stop waits for a claim under
	// way, ClaimTimeout from before the stop, not for one that begins
	// after it, which would add that wait to the stop's bound (hookdStop
	// in cmd/hookd/deploy_test.go).
	if ctx.Err() != nil {
		return false
	}
	now, started := d.cfg.Now(), time.Now()
	// Not cut off by the stop: PostgreSQL's claim commits its leases
	// before it reads their events and webhooks, and one cancelled in
	// between left up to claimBatch deliveries leased, sent by nobody
	// until their leases ended. The stop waits for it instead (see Run),
	// ClaimTimeout at most, and gives its tasks back.
	claimCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ClaimTimeout)
	tasks, err := d.cfg.Store.DeliveryClaim(claimCtx, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(d.lease), Limit: limit, ExcludeWebhooks: exclude})
	cancel()
	for _, t := range tasks {
		// The store's DueAt may be on another clock (the database's): our
		// lease ends no later than this on ours.
		t.Delivery.DueAt = now.Add(d.lease)
	}
	if err != nil {
		d.claimErrors.Error(d.cfg.Log, now, "claiming deliveries failed", "err", err)
		return false
	}
	var back []webhook.DeliveryRef
	d.mu.Lock()
	// A claim that ends after the stop began starts no request: the stop
	// lets requests in flight finish, it does not begin new ones. (One
	// that ends just before starts them; they get what is left of the
	// grace, which runs from the stop.)
	stopping := ctx.Err() != nil
	// Intake may have reserved room meanwhile: held can pass maxHeld by
	// at most one claim.
	d.held += len(tasks)
	for _, t := range tasks {
		if held := d.leased[t.Delivery.ID]; held != nil && !d.isRecording(held) && d.adopt(held, t) {
			d.held--
			continue
		}
		if stopping {
			back = append(back, t.Ref())
			d.held--
			continue
		}
		d.start(t)
	}
	d.mu.Unlock()
	if len(back) > 0 {
		// Run waits for it, beside the other releases of the stop.
		d.releases.Go(func() { d.release(back) })
	}
	if len(tasks) == 0 && len(exclude) > 0 {
		d.nothingElse, d.nothingSince = exclude, started
	}
	return len(tasks) == limit
}

// adopt takes t, just claimed, for held, the task this dispatcher
// already holds for the same delivery, whose outcome is not on its way to
// the store; d.mu is held. Its lease ended in the store before it did on
// our clock (the wall clock stepped forward past it, or the node was
// paused or cut off from the database past it), and the claim took it
// again. Queued, held gives its place to t, the delivery as the store has
// it now (another worker may have attempted it meanwhile, its webhook may
// have been edited). In flight (or between its queue and its request),
// held takes t's lease, under which its outcome is recorded, and is not
// sent twice; unless another worker leased it meanwhile (a lease token
// other than the next): then held's request, numbered and scheduled as an
// attempt made since, is out under a lost lease, its outcome is dropped,
// and adopt reports false, for t to be held and sent. (One whose outcome
// is on its way under the old lease is not adopted either: the store
// drops that outcome, and t sends it again.)
func (d *Dispatcher) adopt(held, t *webhook.Task) bool {
	q := d.queued[held.Webhook.ID]
	if i := slices.Index(q, held); i >= 0 {
		q[i] = t
		d.leased[t.Delivery.ID] = t
		return true
	}
	if t.Delivery.Lease != held.Delivery.Lease+1 {
		return false
	}
	held.Delivery.Lease, held.Delivery.DueAt = t.Delivery.Lease, t.Delivery.DueAt
	return true
}

// covers reports whether set holds every id of some, which is not empty.
func covers(set, some []uuid.UUID) bool {
	if len(some) == 0 {
		return false
	}
	for _, id := range some {
		if !slices.Contains(set, id) {
			return false
		}
	}
	return true
}

// Reserve sets room aside for up to n deliveries that intake is about to
// lease to this dispatcher, and returns the lease to ask for: for how
// many (Limit) and until when, from one reading of the clock (see
// webhook.Lease). It grants none unless Run is delivering, and only
// while the dispatcher is less than half full, so that claims (retries,
// other nodes' deliveries, what intake could not lease) always find room.
func (d *Dispatcher) Reserve(n int) webhook.Lease {
	d.mu.Lock()
	defer d.mu.Unlock()
	n = min(n, maxHeld/2-d.held)
	if !d.running || n <= 0 {
		return webhook.Lease{}
	}
	d.held += n
	now := d.cfg.Now()
	return webhook.Lease{Now: now, Until: now.Add(d.lease), Limit: n}
}

// Send takes the deliveries leased at intake under a reservation (lease,
// as Reserve returned it: fewer tasks than its Limit, or none when the
// commit failed, frees the rest) and sends
// them like claimed ones. It gives back, due now, those it should not
// hold: all of them if Run has stopped meanwhile; those of a webhook
// whose queue is full (a slow target must not fill the dispatcher, as
// claims skip such webhooks); and those whose lease can no longer cover a
// request (a commit that took very long), which another node may claim.
// One this dispatcher's own claim took again before it was handed over
// (see adopt) is dropped: the claim's task sends it.
func (d *Dispatcher) Send(tasks []*webhook.Task, lease webhook.Lease) {
	until := lease.Until
	d.mu.Lock()
	d.held -= lease.Limit - len(tasks)
	running := d.running
	long := !until.Before(d.cfg.Now().Add(d.sendable))
	var back []webhook.DeliveryRef
	for _, t := range tasks {
		// The store's DueAt is the lease as written, a wall-clock time
		// (the database's on PostgreSQL), which a stepped clock moves:
		// ours ends no later than the reservation's until, read on our
		// monotonic clock, by which renewals and holds judge it (as a
		// claim's tasks by the claim's).
		t.Delivery.DueAt = until
		if held := d.leased[t.Delivery.ID]; held != nil && held.Delivery.Lease > t.Delivery.Lease {
			// Our own claim took it again first (the wall clock stepped
			// past the lease, or the node was paused, between the commit
			// and now): the claim's task sends it, and this one's lease is
			// lost, nothing to give back.
			d.held--
			continue
		}
		if running && long && len(d.queued[t.Webhook.ID]) < maxQueuedPerWebhook {
			d.start(t)
			continue
		}
		back = append(back, t.Ref())
	}
	d.held -= len(back)
	if running && len(back) > 0 {
		d.releases.Add(1) // under d.mu while running, so Run waits for it
	}
	d.mu.Unlock()
	switch {
	case len(back) == 0:
	case running:
		// Not on the caller's time: intake answers its requests after Send.
		// The claim loop looks again once they are back: its last claim
		// may not have been short of room, so freed room would not wake it.
		go func() {
			defer d.releases.Done()
			d.releaseDue(back)
		}()
	default:
		d.release(back) // Run has stopped: nobody else would wait for it
	}
}

// start sends t, or queues it if its webhook has all its in-flight
// slots taken; d.mu is held, d.running is true, and d.held counts t
// already.
func (d *Dispatcher) start(t *webhook.Task) {
	d.leased[t.Delivery.ID] = t
	id := t.Webhook.ID
	if d.inflight[id] < d.cfg.MaxInflightPerWebhook {
		d.inflight[id]++
		d.sends.Add(1)
		go d.sendAll(d.sendCtx, t)
	} else {
		d.queued[id] = append(d.queued[id], t)
	}
}

// sendAll sends t, then the webhook's queued deliveries one after the
// other, holding one of the webhook's in-flight slots throughout.
func (d *Dispatcher) sendAll(ctx context.Context, t *webhook.Task) {
	defer d.sends.Done()
	for t != nil {
		if d.holds(t) {
			o := d.tracedAttempt(ctx, t)
			if ctx.Err() != nil && o.Attempt.StatusCode == 0 {
				// Cut off by the stop's grace, not by the target: recorded,
				// it would count against the webhook's health and fail a
				// last attempt for good. Given back, due now, like an
				// unsent task (the target may have it: at least once).
				d.giveBack(t)
				t = d.next(t.Webhook.ID)
				continue
			}
			d.mu.Lock()
			o.Lease = t.Delivery.Lease // a claim may have renewed it (see claim)
			if d.leased[t.Delivery.ID] == t {
				// Only the task held is asked about (claim, renewed): one
				// whose lease was lost in flight would put its older token
				// in place of a task claimed since, its outcome on its way.
				d.recording[t.Delivery.ID] = o.Lease
			}
			d.mu.Unlock()
			d.outcomes <- o
		}
		t = d.next(t.Webhook.ID)
	}
}

// holds reports whether t may be sent now: its lease is still ours (a
// renewal did not find it taken over), its webhook was not deleted nor
// edited since t read it (then t is given back, see Edited), and
// the lease lasts long enough to cover the request and its recording. One
// that may not is forgotten, and given back if its lease was not lost and
// its row not deleted: a node paused past its lease must not send what
// another node has taken over.
func (d *Dispatcher) holds(t *webhook.Task) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if until, gone := d.forgotten[t.Webhook.ID]; gone && d.cfg.Now().Before(until) {
		if d.leased[t.Delivery.ID] == t {
			delete(d.leased, t.Delivery.ID)
		}
		return false
	}
	if e, ok := d.edited[t.Webhook.ID]; ok && t.Webhook.UpdatedAt.Before(e.at) {
		d.giveBackLocked(t) // read before an edit: claimed again as it is now
		return false
	}
	if d.leased[t.Delivery.ID] == t && !t.Delivery.DueAt.Before(d.cfg.Now().Add(d.sendable)) {
		return true
	}
	d.giveBackLocked(t)
	return false
}

// giveBack stops holding t and gives it back to the queue, due now, if
// its lease is still ours.
func (d *Dispatcher) giveBack(t *webhook.Task) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.giveBackLocked(t)
}

// giveBackLocked is giveBack with d.mu held.
func (d *Dispatcher) giveBackLocked(t *webhook.Task) {
	if d.leased[t.Delivery.ID] == t {
		delete(d.leased, t.Delivery.ID)
		ref := t.Ref()
		d.releases.Go(func() { d.releaseDue([]webhook.DeliveryRef{ref}) })
	}
}

// next frees the slot of a finished request and hands it the webhook's
// next queued delivery that still has time to be sent within its lease.
func (d *Dispatcher) next(id uuid.UUID) *webhook.Task {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.held--
	var expired []webhook.DeliveryRef
	defer func() {
		if len(expired) > 0 {
			d.releases.Go(func() { d.releaseDue(expired) })
		}
	}()
	if !d.running {
		// Stopping: no request begins; Run gives the queue back
		// (releaseQueued).
		if d.inflight[id]--; d.inflight[id] == 0 {
			delete(d.inflight, id)
		}
		return nil
	}
	q := d.queued[id]
	// A request that starts now may last Timeout and must be recorded
	// before its lease ends.
	latest := d.cfg.Now().Add(d.sendable)
	for len(q) > 0 {
		t := q[0]
		q = q[1:]
		if t.Delivery.DueAt.Before(latest) {
			expired = append(expired, t.Ref())
			delete(d.leased, t.Delivery.ID)
			d.held--
			continue
		}
		d.setQueue(id, q)
		return t
	}
	d.setQueue(id, nil)
	if d.inflight[id]--; d.inflight[id] == 0 {
		delete(d.inflight, id)
	}
	d.signalFreed()
	return nil
}

// setQueue stores a webhook's queue; d.mu is held. Draining to half of
// maxQueuedPerWebhook wakes the claim loop, which had stopped claiming
// for that webhook.
func (d *Dispatcher) setQueue(id uuid.UUID, q []*webhook.Task) {
	if len(q) == 0 {
		delete(d.queued, id)
		return
	}
	if len(q) == maxQueuedPerWebhook/2 {
		d.signalFreed()
	}
	d.queued[id] = q
}

// signalFreed wakes the claim loop for room freed, if its last claim was
// short of room (see short); d.mu is held.
func (d *Dispatcher) signalFreed() {
	if !d.short {
		return
	}
	select {
	case d.freed <- struct{}{}:
	default:
	}
}

// release gives deliveries back to the queue, due now.
func (d *Dispatcher) release(refs []webhook.DeliveryRef) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := d.cfg.Store.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: refs, Now: d.cfg.Now()}); err != nil {
		// Their leases expire anyway; then they are claimed again.
		d.cfg.Log.Error("releasing deliveries failed", "err", err, "count", len(refs))
	}
}

// releaseDue gives deliveries back, due now, and wakes the claim loop to
// take them again.
func (d *Dispatcher) releaseDue(refs []webhook.DeliveryRef) {
	d.release(refs)
	d.Wake()
}

// releaseQueued gives back the deliveries claimed but not started.
func (d *Dispatcher) releaseQueued() {
	d.mu.Lock()
	var refs []webhook.DeliveryRef
	for id, q := range d.queued {
		for _, t := range q {
			refs = append(refs, t.Ref())
			delete(d.leased, t.Delivery.ID)
		}
		d.held -= len(q)
		delete(d.queued, id)
	}
	d.mu.Unlock()
	if len(refs) > 0 {
		d.release(refs)
	}
}

// Outcomes are recorded in batches. A batch smaller than recordEnough
// waits up to recordLinger for company: each transaction costs the one
// SQLite writer a commit, a rewrite of the same few pages into the WAL
// and its own statements, so fewer, fuller batches spend less of it per
// outcome. The wait delays only the delivery log, never a send: the
// delivery is held (and its lease renewed) until it is recorded. At a
// steady 1,000 deliveries a second, 25 ms makes one transaction of about
// 25 outcomes instead of five of five; a crash within it costs at most
// those attempts made again, as any unrecorded outcome does.
const (
	recordEnough = 64
	recordLinger = 25 * time.Millisecond
)

// record writes outcomes in batches: one transaction for everything that
// finished since the last write, or within recordLinger of the first.
func (d *Dispatcher) record() {
	batch := make([]webhook.Outcome, 0, 256)
	linger := time.NewTimer(recordLinger)
	linger.Stop()
	for o := range d.outcomes {
		batch = append(batch[:0], o)
		linger.Reset(recordLinger)
	fill:
		for len(batch) < cap(batch) {
			if len(batch) >= recordEnough {
				select {
				case o, ok := <-d.outcomes:
					if !ok {
						break fill
					}
					batch = append(batch, o)
					continue
				default:
					break fill
				}
			}
			select {
			case o, ok := <-d.outcomes:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			case <-linger.C:
				break fill
			}
		}
		linger.Stop()
		d.write(batch)
	}
}

func (d *Dispatcher) write(batch []webhook.Outcome) {
	// Held (and renewed) until recorded, whether or not that works:
	// unrecorded outcomes are not lost, their leases expire and the
	// deliveries are sent again (at least once, never zero times).
	defer d.recorded(batch)
	var res webhook.CompleteResult
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		var err error
		res, err = d.cfg.Store.DeliveryComplete(ctx, batch)
		cancel()
		if err == nil {
			break
		}
		d.cfg.Log.Error("recording delivery outcomes failed", "err", err, "count", len(batch), "try", try+1)
		if try == recordTries-1 {
			return
		}
		time.Sleep(time.Duration(try+1) * 500 * time.Millisecond)
	}
	stale := res.Stale
	dropped := deliveryIDs(stale)
	if len(stale) > 0 {
		ids := make([]string, 0, min(len(stale), 10))
		for _, r := range stale[:cap(ids)] {
			ids = append(ids, r.ID.String())
		}
		// This node lost those leases (paused, cut off, or slower than its
		// lease) and another worker took the deliveries over, or they were
		// deleted: what it did is not theirs to record any more.
		d.cfg.Log.Warn("dropped outcomes of attempts whose lease was lost", "count", len(stale), "deliveries", ids)
	}
	outdated := deliveryIDs(res.Outdated) // rare: nil for most batches
	if len(outdated) > 0 {
		d.Wake() // most are due again at once, not at the next poll
	}
	for _, o := range batch {
		if dropped[o.Attempt.DeliveryID] {
			continue
		}
		if outdated[o.Attempt.DeliveryID] {
			// Stored as a retry (see webhook.Outcome.Against,
			// webhook.AgainstStored): not a delivery failed for good.
			o.Status = webhook.DeliveryPending
		}
		d.m.observe(o)
	}
	d.m.stale.Add(float64(len(stale)))
	// hookd's disable is an edit: the tasks held that read the webhook
	// enabled (up to a queue of them behind a target that answered 410)
	// are given back, to fail unsent once claimed again, as after a
	// person's disable. On PostgreSQL the other nodes hear it too. Before
	// the count, so that a disable counted has had its queue given back.
	for _, w := range res.Disabled {
		d.Edited(w.ID, w.UpdatedAt)
	}
	// The store's count, not the outcomes': the requests in flight to a
	// target that answers 410 each decide to disable it, on every node,
	// and the store disables it once (again once a person enabled it).
	d.m.disabled.Add(float64(len(res.Disabled)))
}

// deliveryIDs is the set of the refs' delivery ids; nil for none, as
// for most batches.
func deliveryIDs(refs []webhook.DeliveryRef) map[uuid.UUID]bool {
	if len(refs) == 0 {
		return nil
	}
	ids := make(map[uuid.UUID]bool, len(refs))
	for _, r := range refs {
		ids[r.ID] = true
	}
	return ids
}

// recorded stops holding (and renewing) the deliveries of recorded outcomes.
func (d *Dispatcher) recorded(batch []webhook.Outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range batch {
		if t := d.leased[o.Attempt.DeliveryID]; t != nil && t.Delivery.Lease == o.Lease {
			delete(d.leased, o.Attempt.DeliveryID)
		}
		if l, ok := d.recording[o.Attempt.DeliveryID]; ok && l == o.Lease {
			delete(d.recording, o.Attempt.DeliveryID)
		}
	}
}

// isRecording reports whether t's outcome is on its way to the store;
// d.mu is held.
func (d *Dispatcher) isRecording(t *webhook.Task) bool {
	l, ok := d.recording[t.Delivery.ID]
	return ok && l == t.Delivery.Lease
}

// renewBatch is the most leases renewed in one statement.
const renewBatch = 1000

// renewLoop renews the leases held that near their end, every
// renewEvery until stop is closed.
func (d *Dispatcher) renewLoop(stop <-chan struct{}) {
	tick := time.NewTicker(renewEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			d.renew()
		}
	}
}

// renew extends the leases held that would fall below sendable within
// renewAhead (see leaseMargin); the others have time until a later tick,
// and most are recorded (and forgotten) before it. A delivery whose lease
// is lost (taken over after it expired while this node could not renew
// it) is forgotten: dropped from its webhook's queue if it waits there,
// and never sent or given back.
func (d *Dispatcher) renew() {
	d.mu.Lock()
	now := d.cfg.Now()
	// A tick that comes much later than due on the wall clock (a machine
	// suspended, whose monotonic clock stood still) says our view of the
	// leases may lag theirs in the database: renew every one, so those
	// taken over meanwhile are found and dropped now, as when every tick
	// renewed them all.
	late := !d.lastTick.IsZero() && now.Round(0).Sub(d.lastTick.Round(0)) > 2*renewEvery
	d.lastTick = now
	soon := now.Add(d.sendable + renewAhead)
	var refs []webhook.DeliveryRef
	for _, t := range d.leased {
		if late || t.Delivery.DueAt.Before(soon) {
			refs = append(refs, t.Ref())
		}
	}
	d.mu.Unlock()
	for len(refs) > 0 {
		batch := refs[:min(len(refs), renewBatch)]
		refs = refs[len(batch):]
		if !d.renewBatch(batch) {
			return
		}
	}
}

// renewBatch renews batch's leases in the store and applies the result,
// under leaseMu, and reports whether the store answered.
func (d *Dispatcher) renewBatch(batch []webhook.DeliveryRef) bool {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	now := d.cfg.Now()
	ctx, cancel := context.WithTimeout(context.Background(), renewEvery)
	lost, err := d.cfg.Store.DeliveryRenew(ctx, webhook.RenewParams{Refs: batch, Now: now, LeaseUntil: now.Add(d.lease)})
	cancel()
	if err != nil {
		// The leases run on; the next tick tries again, and a delivery
		// whose lease gets too short is not sent (see holds).
		d.renewErrors.Error(d.cfg.Log, now, "renewing delivery leases failed", "err", err, "count", len(batch))
		return false
	}
	d.m.renewed.Add(float64(len(batch) - len(lost)))
	d.renewed(batch, lost, now.Add(d.lease))
	return true
}

// renewed applies a renewal's result: the leases held end at until, but
// those lost.
func (d *Dispatcher) renewed(refs, lost []webhook.DeliveryRef, until time.Time) {
	gone := deliveryIDs(lost)
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, r := range refs {
		t := d.leased[r.ID]
		if t == nil || t.Delivery.Lease != r.Lease {
			continue // recorded meanwhile
		}
		if !gone[r.ID] {
			t.Delivery.DueAt = until
			continue
		}
		if d.isRecording(t) {
			continue // its outcome committed first: recorded drops it
		}
		n++
		delete(d.leased, r.ID)
		q := d.queued[t.Webhook.ID]
		if i := slices.Index(q, t); i >= 0 {
			d.setQueue(t.Webhook.ID, slices.Delete(slices.Clone(q), i, i+1))
			d.held--
			// Room freed, as Forget and next free it: a claim held back
			// for want of it may go on.
			d.signalFreed()
		}
	}
	if n > 0 {
		d.cfg.Log.Warn("lost the leases of deliveries held: another worker took them over", "count", n)
	}
}

// attempt sends one request for t and decides what happens next.
func (d *Dispatcher) attempt(ctx context.Context, t *webhook.Task) webhook.Outcome {
	start := d.cfg.Now()
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	a := webhook.Attempt{
		ID:             id,
		OrganizationID: t.Delivery.OrganizationID,
		WebhookID:      t.Delivery.WebhookID, // with DeliveryID, the name the store finds it by
		DeliveryID:     t.Delivery.ID,
		EventID:        t.Event.ID,
		CreatedAt:      start.UTC().Truncate(time.Microsecond),
		Number:         t.Delivery.Attempts + 1,
		Kind:           t.Webhook.Kind,
		TargetURL:      webhook.RedactedURL(t.Webhook.TargetURL),
	}
	if !t.Webhook.Enabled {
		// Disabled since the delivery was made (by a person, or by hookd
		// after a 410): nothing more is sent to it.
		a.Error = "not sent: the webhook is disabled"
		return d.rules.Decide(&t.Webhook, a, 0)
	}
	status, body, err := d.send(ctx, t, start)
	a.Duration = d.cfg.Now().Sub(start)
	a.StatusCode, a.ResponseBody = status.code, body
	if err != nil {
		a.Error = clipError(err.Error())
	}
	return d.rules.Decide(&t.Webhook, a, status.retryAfter)
}

// maxErrorLength bounds an attempt's recorded error. Go's transport
// quotes what a target sent in place of a status line or a header, up to
// the 64 KiB of headers it reads (MaxResponseHeaderBytes), four times that
// once control bytes are escaped: every attempt to such a target would
// keep a quarter of a megabyte in the delivery log and in its span, where
// the answer's body is cut at MaxResponseBody.
const maxErrorLength = 1 << 10

// clipError cuts a recorded error to maxErrorLength bytes, never inside a
// character.
func clipError(s string) string {
	if len(s) <= maxErrorLength {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorLength], "") + "…"
}

type answer struct {
	code       int
	retryAfter time.Duration
}

// send makes the HTTP request. Its error explains a failure without an
// answer; a non-2xx answer is not an error here.
func (d *Dispatcher) send(ctx context.Context, t *webhook.Task, now time.Time) (answer, string, error) {
	body := webhook.Render(t.Webhook.Kind, &t.Event)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Webhook.TargetURL, bytes.NewReader(body))
	if err != nil {
		return answer{}, "", fmt.Errorf("invalid target URL: %w", err)
	}
	req.Header["Content-Type"], req.Header["User-Agent"] = contentType, d.userAgent
	if trace.SpanFromContext(ctx).IsRecording() {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	if t.Webhook.Kind == webhook.KindStandard {
		SetHeaders(req.Header, t.Event.ID.String(), t.Webhook.SigningSecrets(now, d.cfg.SecretRotationGrace), now, body)
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return answer{}, "", describe(err)
	}
	defer resp.Body.Close()
	// Go's HTTP/2 client takes any integer a server sends as :status, its
	// HTTP/1 client any three digits. The store keeps 0 to 999 and refuses
	// a batch of outcomes holding one out of range: one target's answer
	// would keep other webhooks' outcomes from being recorded, and them
	// from being sent only once. Below 100 is no status either (0 would
	// read as no answer in the delivery log).
	if resp.StatusCode < 100 || resp.StatusCode > 999 {
		return answer{}, "", fmt.Errorf("invalid HTTP status code %d", resp.StatusCode)
	}
	a := answer{code: resp.StatusCode}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	// The body is only read for the delivery log: it gets its own short
	// deadline, and a 2xx is a success once its status line arrived,
	// whatever the body does next. Sending again a delivery the target
	// took would be a duplicate for a receiver that did its work.
	cut := time.AfterFunc(d.cfg.ResponseBodyTimeout, func() { resp.Body.Close() })
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if !cut.Stop() && err != nil {
		err = fmt.Errorf("the body did not end within %s", d.cfg.ResponseBodyTimeout)
	}
	if err != nil && (a.code < 200 || a.code > 299) {
		return a, string(b), fmt.Errorf("reading the response: %w", describe(err))
	}
	return a, string(b), nil
}

// SetHeaders sets the signature headers of a STANDARD request: the
// Standard Webhooks trio (webhook-id is the event id, the same on every
// retry, so receivers can de-duplicate) with one signature per secret
// (the current one first, then the one it replaced while a rotation's
// grace lasts) and, with a secret, Qovery's, which carry the current
// secret alone.
func SetHeaders(h http.Header, eventID string, secrets []string, now time.Time, body []byte) {
	// The values share one array, as http.Header.Clone's do, each header
	// a slice of it full to its capacity: an append to one (Header.Add)
	// copies it rather than write over the next.
	v := make([]string, 4)
	v[0], v[1] = eventID, strconv.FormatInt(now.Unix(), 10)
	h["webhook-id"], h["webhook-timestamp"] = v[0:1:1], v[1:2:2]
	if len(secrets) == 0 {
		return
	}
	v[2], v[3] = signing.SignAll(secrets, eventID, now, body), secrets[0]
	h["webhook-signature"], h["Qovery-Signature"], h["Qovery-Secret"] = v[2:3:3], v[3:4:4], v[3:4:4]
}

// contentType is every request's Content-Type header, and a dispatcher's
// userAgent its User-Agent: one slice shared by all requests, where
// Header.Set makes one each. Nothing writes into a header's values:
// net/http's transports must not modify a request (http.RoundTripper),
// and hookd only replaces them.
var contentType = []string{"application/json"}

// describe turns a transport error into a sentence for the delivery log,
// which the webhook's owner reads: it keeps the refusal, drops Go's URL
// wrapping (which would repeat the target URL, credentials included),
// and never names an address hookd's network told it (the address a
// refused name resolved to, or the resolver's) nor hookd's own.
func describe(err error) error {
	var refused *RefusedAddressError
	if errors.As(err, &refused) {
		return refused
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		// dnsErr.Server is the resolver's address, and dnsErr.Err may
		// quote it (a read from 10.0.0.2:53 that failed).
		switch {
		case dnsErr.IsNotFound:
			return fmt.Errorf("could not resolve %q: no such host", dnsErr.Name)
		case dnsErr.IsTimeout:
			return fmt.Errorf("could not resolve %q: the lookup timed out", dnsErr.Name)
		}
		return fmt.Errorf("could not resolve %q: the lookup failed", dnsErr.Name)
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return errors.New("timed out waiting for the target")
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("the target closed the connection") // Go says "EOF"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Source != nil {
		// A read or write on the connection names hookd's own end of it
		// (its address on its network, and the port) before the target's.
		c := *op
		c.Source = nil
		return &c
	}
	var uerr interface{ Unwrap() error }
	if errors.As(err, &uerr) {
		if inner := uerr.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// parseRetryAfter reads seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	// A delay longer than a Duration holds (ParseInt's range error keeps
	// the largest int64) is as long as one can be, for the schedule to
	// bound: multiplied as it is, it could wrap around to a short one.
	if s, err := strconv.ParseInt(v, 10, 64); (err == nil || errors.Is(err, strconv.ErrRange)) && s >= 0 {
		return time.Duration(min(s, int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
