package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// The writer is group commit: every write transaction is a request to one
// goroutine, which runs all the requests waiting (up to maxGroup) in one
// BEGIN IMMEDIATE transaction, each inside its own SAVEPOINT, commits
// once, and then answers them all. A burst's intake batches, outcome
// batches, claims and renewals therefore share one commit (and one fsync)
// instead of queuing for the connection and paying one each. The
// goroutine runs the SQL and the decisions that must see the rows read in
// the same transaction (intake's plan, a claim's tasks); the callers
// encode their rows before, and render, sign and send on the other core.
//
// A member that fails rolls back to its savepoint and gets its own error;
// the others commit. (Groups of the queue's own writes go without
// savepoints until one fails: see group.) A caller hears success only once
// the commit holding its work returned, so nothing is reported accepted
// before it is on disk. A purge's batch is the one request that never
// joins a group: it runs in a transaction of its own (see purge).

// busyTimeout is how long a connection waits for a lock another holds
// (another process's write, a checkpoint waiting for readers) before its
// statement fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// StuckLimit is how long the writer may spend on one group before it is
// taken to be wedged (WriterStuckFor), and hookd with it: a group waits
// for a lock busyTimeout at most, once to begin and perhaps once behind a
// checkpoint, and its SQL takes milliseconds, or seconds on a slow disk.
// Past this, something in hookd itself holds it (a member that never
// returns, the write connection never given back) or the disk no longer
// answers; the writes queued behind it wait as long.
const StuckLimit = 6 * busyTimeout

// maxGroup bounds the members of one transaction, so that one commit
// never makes the first caller wait behind an unbounded queue.
const maxGroup = 32

// errClosed answers writes made while or after the database closes.
var errClosed = &webhook.Error{Code: webhook.EUnavailable, Message: "the database is closed"}

// A request goes from queued to taken (the writer runs it: the caller
// waits for the group's answer) or to abandoned (the caller's context
// ended first: the writer skips it). Exactly one of the two wins.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

type writeReq struct {
	ctx     context.Context
	fn      func(*txn) error
	durable bool
	rerun   bool // fn starts from scratch each time it runs: see group
	alone   bool // runs in a transaction of its own: see purge
	state   atomic.Int32
	done    chan error // buffered: the writer never waits on a caller
}

type writer struct {
	db      *DB
	reqs    chan *writeReq // unbuffered: a request is either with the writer or with its caller
	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once

	// conn is the driver connection of the last group and full whether it
	// is at synchronous=FULL, so the pragma is set only when it changes.
	// A connection the writer has not seen is at FULL, from the DSN.
	conn any
	full bool

	// groups counts the groups run, so a purge can tell whether anyone
	// else wrote between two of its batches.
	groups atomic.Uint64
	// busySince is when the writer took the work it is doing (UnixNano),
	// 0 while it waits for work.
	busySince atomic.Int64
}

func newWriter(db *DB) *writer {
	w := &writer{db: db, reqs: make(chan *writeReq), quit: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	return w
}

// close stops taking requests, lets the group under way commit and
// answer (and a purge's batch already taken after it, see gather), and
// waits for the goroutine. Callers still queued get errClosed.
func (w *writer) close() {
	w.once.Do(func() { close(w.quit) })
	<-w.stopped
}

// do runs fn in a group transaction and returns its error, or the
// group's if the commit failed. durable asks for synchronous=FULL.
func (w *writer) do(ctx context.Context, durable, rerun bool, fn func(*txn) error) error {
	return w.send(ctx, &writeReq{ctx: ctx, fn: fn, durable: durable, rerun: rerun, done: make(chan error, 1)})
}

// purge runs fn in a transaction of its own, without waiting for the
// disk. It is for the batches of a long delete (see deleteInBatches):
// they leave the writer to whatever queued meanwhile between any two, and
// never share a transaction with it, so a request waits behind one batch
// at most, never behind one and the next together.
func (w *writer) purge(ctx context.Context, fn func(*txn) error) error {
	return w.send(ctx, &writeReq{ctx: ctx, fn: fn, alone: true, done: make(chan error, 1)})
}

func (w *writer) send(ctx context.Context, r *writeReq) error {
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return errClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ctx.Err()
		}
		// Already running: its work commits or rolls back with the
		// group, and the caller must hear which.
		return <-r.done
	}
}

func (w *writer) run() {
	defer close(w.stopped)
	batch := make([]*writeReq, 0, maxGroup)
	var next *writeReq // one to run alone, met while gathering a group
	for {
		first := next
		if first == nil {
			select {
			case first = <-w.reqs:
			case <-w.quit:
				return
			}
		}
		w.busySince.Store(time.Now().UnixNano())
		batch, next = gather(append(batch[:0], first), w.reqs)
		for rest := batch; len(rest) > 0; {
			w.groups.Add(1)
			rest = w.group(rest)
		}
		// After the answers, so no caller waits for it.
		w.db.prepareMissed(context.Background())
		w.busySince.Store(0)
	}
}

// WriterStuckFor is how long, as of now, the writer has been on the work
// it is doing: 0 while it waits for work. Past StuckLimit it is wedged.
func (db *DB) WriterStuckFor(now time.Time) time.Duration {
	since := db.w.busySince.Load()
	if since == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, since)), 0)
}

// gather adds to batch (one request) the requests waiting in reqs, up to
// maxGroup, and returns it. A request that runs alone (a purge's) ends
// it: it comes back as next, for a group of its own. One that batch
// starts with is a group of its own already.
func gather(batch []*writeReq, reqs <-chan *writeReq) (_ []*writeReq, next *writeReq) {
	for len(batch) < maxGroup && !batch[0].alone {
		select {
		case r := <-reqs:
			if r.alone {
				return batch, r
			}
			batch = append(batch, r)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// group runs the requests of batch still wanted in one transaction. It
// returns the requests it did not reach because the transaction broke
// under an earlier one: they go in the next transaction.
//
// Each member runs in its own savepoint, so that one failing undoes only
// its own work, but a savepoint copies every page its member changes to
// a sub-journal first: in a fanout, where claims and outcomes change
// hundreds of rows each, that was 8 % of hookd's CPU. Members that start
// from scratch each time they run (rerun: the queue's own writes, which
// almost never fail) therefore run without savepoints when the whole
// group is made of them; if one fails after all, the transaction is
// rolled back, nobody is answered, and the same members run again, each
// in its own savepoint.
func (w *writer) group(batch []*writeReq) (rest []*writeReq) {
	if len(batch) > 1 && rerunnable(batch) {
		ran, rest, ok := w.pass(batch, false, true)
		if !ok {
			// They are taken: a pass that breaks under one of them leaves
			// those after it to another pass, never unanswered.
			for again := ran; len(again) > 0; {
				_, again, _ = w.pass(again, true, false)
			}
		}
		return rest
	}
	_, rest, _ = w.pass(batch, len(batch) > 1, false)
	return rest
}

func rerunnable(batch []*writeReq) bool {
	for _, r := range batch {
		if !r.rerun {
			return false
		}
	}
	return true
}

// pass runs batch in one transaction, each member in its own savepoint or
// not, and answers them. optimistic (no savepoints, every member rerun):
// when a member fails, pass rolls back and answers nobody, returning
// ok false and the members it ran, for a pass with savepoints.
// A member taken in an earlier pass runs again.
func (w *writer) pass(batch []*writeReq, savepoints, optimistic bool) (ran, rest []*writeReq, ok bool) {
	// Statements run with a context no caller can cancel: an interrupted
	// statement can roll back the whole transaction, others' work with
	// it. (It also spares the driver a watcher goroutine per statement.)
	ctx := context.Background()
	durable := false
	for _, r := range batch {
		if r.durable && r.state.Load() != reqAbandoned {
			durable = true
		}
	}
	fail := func(reqs []*writeReq, err error) {
		for _, r := range reqs {
			if r.state.Load() == reqTaken || r.state.CompareAndSwap(reqQueued, reqTaken) {
				r.done <- err
			}
		}
	}
	conn, err := w.db.write.Conn(ctx)
	if err != nil {
		fail(batch, translate(err))
		return nil, nil, true
	}
	defer conn.Close()
	if err := w.setSync(ctx, conn, durable); err != nil {
		fail(batch, translate(err))
		return nil, nil, true
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		fail(batch, translate(err))
		return nil, nil, true
	}
	t := &txn{tx: tx, db: w.db, ctx: ctx}
	var errs []error
	for i, r := range batch {
		if r.state.Load() != reqTaken && !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // abandoned: its caller has already returned
		}
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		err, broken := t.member(r.fn, savepoints)
		ran, errs = append(ran, r), append(errs, err)
		if broken {
			// The transaction is gone or unusable: everything run in it
			// is undone.
			if tx.Rollback() != nil {
				w.endTx(conn)
			}
			if optimistic {
				return ran, batch[i+1:], false
			}
			// Everything run in it fails with the error that broke it.
			for _, r := range ran {
				r.done <- err
			}
			return ran, batch[i+1:], true
		}
	}
	if len(ran) == 0 {
		tx.Rollback()
		return nil, nil, true
	}
	if err := tx.Commit(); err != nil {
		w.endTx(conn)
		err = translate(err)
		for _, r := range ran {
			r.done <- err
		}
		return ran, nil, true
	}
	for i, r := range ran {
		r.done <- errs[i]
	}
	return ran, nil, true
}

// member runs fn inside the group's transaction. broken reports that the
// transaction can no longer go on (SQLite rolled it back on an I/O error,
// or the savepoint could not be undone); err is fn's error then too.
func (t *txn) member(fn func(*txn) error, savepoint bool) (err error, broken bool) {
	if !savepoint {
		if err := call(fn, t); err != nil {
			return translate(err), true
		}
		return nil, false
	}
	if _, err := t.ExecContext(t.ctx, "SAVEPOINT member"); err != nil {
		return translate(err), true
	}
	if err := call(fn, t); err != nil {
		if _, rerr := t.ExecContext(t.ctx, "ROLLBACK TO member"); rerr != nil {
			return translate(err), true
		}
		if _, rerr := t.ExecContext(t.ctx, "RELEASE member"); rerr != nil {
			return translate(err), true
		}
		return translate(err), false
	}
	if _, err := t.ExecContext(t.ctx, "RELEASE member"); err != nil {
		return translate(err), true
	}
	return nil, false
}

// call runs fn, turning a panic into its error: the writer serves every
// caller, so one's bug must not take the others' answers down.
func call(fn func(*txn) error, t *txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlite: panic in a write transaction: %v", p)
		}
	}()
	return fn(t)
}

// endTx makes sure the connection is out of any transaction after a
// failed commit or a broken group (a failed COMMIT can leave SQLite's
// transaction open), or else drops it: the next group must not begin
// inside this one's leftovers.
func (w *writer) endTx(conn *sql.Conn) {
	_, err := conn.ExecContext(context.Background(), "ROLLBACK")
	if err != nil && !isNoTransaction(err) {
		conn.Raw(func(any) error { return driver.ErrBadConn })
		w.conn = nil
	}
}

func isNoTransaction(err error) bool {
	// SQLITE_ERROR with this text is how SQLite says there was nothing to roll back.
	return err != nil && strings.Contains(err.Error(), "no transaction is active")
}

// setSync sets synchronous for the group: FULL if any member needs its
// commit on disk (accepted events, API writes), NORMAL for queue
// bookkeeping and purges alone (see transactLazy).
func (w *writer) setSync(ctx context.Context, conn *sql.Conn, full bool) error {
	var dc any
	if err := conn.Raw(func(c any) error { dc = c; return nil }); err != nil {
		return err
	}
	if dc != w.conn {
		// A connection new to the writer. Savepoints (and multi-row
		// statements) copy each page they change to a sub-journal, a
		// temporary file past 64 KiB: kept in memory, it cost a tenth of
		// the writer's time in pwrite calls.
		if _, err := conn.ExecContext(ctx, "PRAGMA temp_store=MEMORY"); err != nil {
			return err
		}
		w.conn, w.full = dc, true
	}
	if w.full == full {
		return nil
	}
	q := "PRAGMA synchronous=NORMAL"
	if full {
		q = "PRAGMA synchronous=FULL"
	}
	if _, err := conn.ExecContext(ctx, q); err != nil {
		// Its setting is unknown now: never hand it to a durable write.
		conn.Raw(func(any) error { return driver.ErrBadConn })
		w.conn = nil
		return err
	}
	w.full = full
	return nil
}
