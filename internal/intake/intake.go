// Package intake commits accepted events in groups: concurrent intake
// requests share one transaction (and one fsync) instead of each paying
// for its own, which is what bounds intake on a durable database.
//
// It never answers a request before the transaction holding its event has
// committed: a receipt is a promise of delivery. And it never holds more
// than a fixed number of events in memory: when the database falls that
// far behind, it refuses (ErrBusy) instead of queueing without bound.
package intake

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/internal/webhook"
)

// Sender takes the deliveries leased at intake (see webhook.Lease) and
// sends them at once: they skip the queue, and the dispatcher the claim
// it would otherwise make for them. internal/delivery's Dispatcher is one.
type Sender interface {
	// Reserve sets room aside for up to n deliveries and returns the
	// lease to ask EventsCreate for (Limit: how many; 0, none).
	Reserve(n int) webhook.Lease
	// Send takes the deliveries leased under that lease (none when the
	// commit failed), and the lease as Reserve returned it.
	Send(tasks []*webhook.Task, lease webhook.Lease)
}

// maxLease is the most deliveries one transaction leases to the Sender.
const maxLease = 1024

// Committer groups events into EventsCreate calls.
type Committer struct {
	store    webhook.Store
	sender   Sender       // nil: nothing is leased at intake
	tracer   trace.Tracer // nil: no spans
	requests chan request
	maxBatch int
	workers  int
	maxWait  time.Duration
	done     chan struct{} // closed when the workers stopped
	drained  chan struct{} // closed when the requests queued by then are answered
}

type request struct {
	ctx   context.Context
	event *webhook.Event
	reply chan result
	at    time.Time // when Accept queued it (zero: unknown)
}

type result struct {
	receipt webhook.EventReceipt
	err     error
}

// Config is what a Committer needs.
type Config struct {
	Store webhook.Store
	// Sender, when not nil, is handed the new deliveries it has room for,
	// leased to it in the transaction that creates them.
	Sender Sender
	// Workers is the number of concurrent transactions: 1 for SQLite,
	// which has one writer; a few for PostgreSQL.
	Workers int
	// MaxBatch is the most events one transaction carries.
	MaxBatch int
	// MaxWait is how long Accept waits for room (DefaultMaxWait if zero).
	MaxWait time.Duration
	// Tracer, when not nil, records a span per transaction, linked to the
	// requests whose events it commits.
	Tracer trace.Tracer
}

// New returns a committer; Run starts it.
//
// Memory is bounded: at most Workers*MaxBatch events wait for a
// transaction, beside the Workers*MaxBatch being committed. Accept waits
// up to MaxWait for room among the waiting (a burst drains within a
// commit or two) and then refuses with ErrBusy: the database is behind,
// and more waiting would only pile events up in memory.
func New(cfg Config) *Committer {
	workers, maxBatch, maxWait := max(cfg.Workers, 1), max(cfg.MaxBatch, 1), cfg.MaxWait
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	return &Committer{
		store:    cfg.Store,
		sender:   cfg.Sender,
		tracer:   cfg.Tracer,
		requests: make(chan request, maxBatch*workers),
		maxBatch: maxBatch,
		workers:  workers,
		maxWait:  maxWait,
		done:     make(chan struct{}),
		drained:  make(chan struct{}),
	}
}

// DefaultMaxWait is how long Accept waits for room in a full queue. A
// commit of a whole batch takes milliseconds; a second without room
// means the database is saturated.
const DefaultMaxWait = time.Second

// ErrStopped is returned for events submitted after Run returned.
var ErrStopped = &webhook.Error{Code: webhook.EUnavailable, Message: "the server is shutting down; try again"}

// ErrBusy is returned, without storing the event, when the queue stayed
// full for the whole wait: the client should retry later (with the same
// Idempotency-Key), which spreads the load instead of holding it here.
var ErrBusy = &webhook.Error{Code: webhook.EUnavailable, RetryAfter: time.Second,
	Message: "the server is receiving events faster than its database can store them; retry after the Retry-After header's seconds"}

// Accept commits ev and returns its receipt once it is durable. If ctx
// ends first the caller gets its error; the event may still be committed
// (an Idempotency-Key makes the retry safe). If the queue stays full for
// maxWait, it returns ErrBusy and the event is not stored. ctx's deadline
// bounds the transaction too (see commit).
func (c *Committer) Accept(ctx context.Context, ev *webhook.Event) (webhook.EventReceipt, error) {
	r := request{ctx: ctx, event: ev, reply: make(chan result, 1), at: time.Now()}
	select {
	case c.requests <- r:
	default:
		wait := time.NewTimer(c.maxWait)
		defer wait.Stop()
		select {
		case c.requests <- r:
		case <-wait.C:
			return webhook.EventReceipt{}, ErrBusy
		case <-ctx.Done():
			return webhook.EventReceipt{}, ctx.Err()
		case <-c.done:
			return webhook.EventReceipt{}, ErrStopped
		}
	}
	select {
	case res := <-r.reply:
		return res.receipt, res.err
	case <-ctx.Done():
		// An answer that came as ctx ended wins: refused, an event its
		// commit stored would be sent again by a sender without an
		// Idempotency-Key, and delivered twice.
		select {
		case res := <-r.reply:
			return res.receipt, res.err
		default:
			return webhook.EventReceipt{}, ctx.Err()
		}
	case <-c.drained:
		// Queued as Run stopped: answered if the last drain took it,
		// otherwise never committed (and so never promised).
		select {
		case res := <-r.reply:
			return res.receipt, res.err
		default:
			return webhook.EventReceipt{}, ErrStopped
		}
	}
}

// Run commits until ctx ends, then commits what is already queued and
// returns. Callers must stop submitting (shut the API down) before ctx
// ends, so nothing is left unanswered.
func (c *Committer) Run(ctx context.Context) {
	finished := make(chan struct{})
	for range c.workers {
		go func() {
			c.work(ctx)
			finished <- struct{}{}
		}()
	}
	for range c.workers {
		<-finished
	}
	close(c.done)
	defer close(c.drained)
	// Requests that raced with the stop.
	for {
		select {
		case r := <-c.requests:
			c.commit([]request{r})
		default:
			return
		}
	}
}

func (c *Committer) work(ctx context.Context) {
	batch := make([]request, 0, c.maxBatch)
	var rate arrivals
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-c.requests:
			batch = append(batch[:0], r)
			rate.observe(r.at)
		}
		// Whatever queued while the previous transaction committed goes
		// into this one: batches grow with load.
	fill:
		for len(batch) < c.maxBatch {
			select {
			case r := <-c.requests:
				batch = append(batch, r)
				rate.observe(r.at)
			default:
				break fill
			}
		}
		// At a low but steady rate every request would otherwise pay a
		// transaction (and an fsync) of its own: when requests come often
		// enough that company is due within maxLinger, wait for it, but
		// only while requests keep coming. A lone request at a low rate is
		// committed at once.
		if rate.often() {
			batch = c.linger(ctx, batch, &rate, timer)
		}
		c.commit(batch)
	}
}

// maxLinger is the longest the oldest request of a batch waits for company
// before its transaction starts. It is added to intake's latency at rates
// of a few hundred to a few thousand events a second, where a commit takes
// a millisecond or less: small beside the 10 ms p99 hookd keeps at 1,000
// events/s, and at that rate it makes a transaction carry two or three
// events instead of one.
const maxLinger = 2 * time.Millisecond

// linger adds requests to batch until maxLinger after its first arrived,
// the batch is full, or no request came within twice the usual gap
// between them (the burst that filled it has ended).
func (c *Committer) linger(ctx context.Context, batch []request, rate *arrivals, timer *time.Timer) []request {
	deadline := batch[0].at.Add(maxLinger)
	if batch[0].at.IsZero() {
		deadline = time.Now().Add(maxLinger)
	}
	for len(batch) < c.maxBatch {
		wait := min(time.Until(deadline), 2*rate.gap)
		if wait <= 0 {
			break
		}
		timer.Reset(wait)
		select {
		case r := <-c.requests:
			batch = append(batch, r)
			rate.observe(r.at)
		case <-timer.C:
			return batch
		case <-ctx.Done():
			timer.Stop()
			return batch
		}
	}
	timer.Stop()
	return batch
}

// arrivals tracks the usual gap between requests, as a moving average,
// so a worker knows whether waiting for company is worth it. A gap counts
// as rareGap at most: a pause says the rate fell, not by how much, and the
// average must come back below maxLinger within a dozen requests once the
// rate is up again.
type arrivals struct {
	last time.Time
	gap  time.Duration
}

const rareGap = 4 * maxLinger

func (a *arrivals) observe(at time.Time) {
	if at.IsZero() {
		return
	}
	if a.last.IsZero() {
		a.last, a.gap = at, rareGap
		return
	}
	g := min(max(at.Sub(a.last), 0), rareGap)
	a.gap += (g - a.gap) / 8
	if at.After(a.last) { // requests of concurrent Accepts queue in any order
		a.last = at
	}
}

// often reports whether the next request is expected within maxLinger.
func (a *arrivals) often() bool { return !a.last.IsZero() && a.gap < maxLinger }

// commit writes a batch in one transaction. If the batch fails, each event
// is retried alone so that one bad event fails only its own request.
//
// The transaction has until the latest deadline of its requests'
// contexts (the API gives each intake request one), and is not cancelled
// by a client that leaves, since others share it. Past that deadline
// every request of the batch is answered webhook.ErrUnreachable at once:
// a connection gone silent (a partition that drops packets) would
// otherwise hold them for as long as TCP waits, minutes. Not the
// earliest: a request near its own end (its body was slow to come) would
// cut the transaction of the others short, and answer them 503 for an
// event that may be stored all the same, which a sender without an
// Idempotency-Key sends again. A request whose own deadline passes first
// is answered then (Accept). Such a commit is ambiguous, like one whose
// connection was reset: its COMMIT may still land, and the deliveries it
// leased are claimed once their lease ends.
func (c *Committer) commit(batch []request) {
	live := batch[:0:0]
	events := make([]*webhook.Event, 0, len(batch))
	var deadline time.Time
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.reply <- result{err: r.ctx.Err()} // gave up waiting: not stored, not promised
			continue
		}
		if d, ok := r.ctx.Deadline(); ok && d.After(deadline) {
			deadline = d
		}
		live = append(live, r)
		events = append(events, r.event)
	}
	if len(live) == 0 {
		return
	}
	var lease webhook.Lease
	if c.sender != nil {
		lease = c.sender.Reserve(maxLease)
	}
	ctx, span := c.startCommitSpan(live, lease)
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	receipts, err := c.store.EventsCreate(ctx, events, lease)
	if err != nil && ctx.Err() != nil {
		// Each backend words its driver's timeout its own way (PostgreSQL's
		// as an internal error): to the sender, as to the retry below, it
		// is a database that did not answer.
		err = fmt.Errorf("intake: no answer from the database in time: %w: %w", webhook.ErrUnreachable, err)
	}
	endCommitSpan(span, receipts, err)
	if c.sender != nil {
		// Handed over before anyone is answered, so a stop that follows
		// the answers finds them with the Sender. After a failed commit
		// nothing was leased (an ambiguous one leaves leases that expire).
		var tasks []*webhook.Task
		if err == nil {
			for _, r := range receipts {
				tasks = append(tasks, r.Tasks...)
			}
		}
		c.sender.Send(tasks, lease)
	}
	if err == nil {
		for i, r := range live {
			r.reply <- result{receipt: receipts[i]}
		}
		return
	}
	if len(live) == 1 {
		live[0].reply <- result{err: err}
		return
	}
	var we *webhook.Error
	if errors.As(err, &we) && we.Code == webhook.EUnavailable {
		// The database is busy or gone: retrying one by one would only
		// make it worse.
		for _, r := range live {
			r.reply <- result{err: err}
		}
		return
	}
	for _, r := range live {
		c.commit([]request{r})
	}
}
