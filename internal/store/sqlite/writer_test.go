package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/store/migration"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// openFresh opens a new database, not migrated, closed when t ends.
func openFresh(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "hookd.db"), storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// openScratch opens a database with one table of keys, k, and a child
// table whose foreign key the commit-failure test breaks.
func openScratch(t *testing.T) *DB {
	t.Helper()
	ctx := context.Background()
	db := openFresh(t)
	err := db.transact(ctx, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE k (k TEXT PRIMARY KEY)`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE child (k TEXT NOT NULL REFERENCES k (k))`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func insertKey(k string) func(*txn) error {
	return func(tx *txn) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO k (k) VALUES (?)`, k)
		return err
	}
}

// insertThenFail inserts k, then fails with err: a member whose own
// error must undo its insert.
func insertThenFail(k string, err error) func(*txn) error {
	return func(tx *txn) error {
		if ierr := insertKey(k)(tx); ierr != nil {
			return ierr
		}
		return err
	}
}

func keys(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.read.Query(`SELECT k FROM k`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func request(ctx context.Context, durable bool, fn func(*txn) error) *writeReq {
	return &writeReq{ctx: ctx, fn: fn, durable: durable, done: make(chan error, 1)}
}

// group runs batch as one group from the test goroutine (the writer's own
// goroutine is idle meanwhile: every request the test made was answered)
// and returns each request's answer, or nil for one never answered.
func group(t *testing.T, db *DB, batch ...*writeReq) []error {
	t.Helper()
	for rest := batch; len(rest) > 0; {
		rest = db.w.group(rest)
	}
	out := make([]error, len(batch))
	for i, r := range batch {
		select {
		case err := <-r.done:
			if err == nil {
				err = errNone
			}
			out[i] = err
		default:
		}
	}
	return out
}

var errNone = errors.New("(no error)")

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestWriterSavepoints: a member that fails, by its own error, a failed
// statement or a panic, undoes only its own work; the others commit.
func TestWriterSavepoints(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	mine := errors.New("mine")
	got := group(t, db,
		request(ctx, false, insertKey("a")),
		request(ctx, false, insertThenFail("b", mine)),
		request(ctx, false, func(tx *txn) error {
			if err := insertKey("c")(tx); err != nil {
				return err
			}
			return insertKey("a")(tx) // a duplicate: fails
		}),
		request(ctx, false, func(tx *txn) error {
			if err := insertKey("d")(tx); err != nil {
				return err
			}
			panic("a bug")
		}),
		request(ctx, true, insertKey("e")),
	)
	if got[0] != errNone || got[4] != errNone {
		t.Errorf("the good members got %v, %v", got[0], got[4])
	}
	if !errors.Is(got[1], mine) {
		t.Errorf("a member's own error came back as %v", got[1])
	}
	if webhook.ErrorCode(got[2]) != webhook.EConflict {
		t.Errorf("a duplicate key came back as %v, want a conflict", got[2])
	}
	if got[3] == nil || got[3] == errNone {
		t.Errorf("a panicking member got %v", got[3])
	}
	if k := keys(t, db); !equal(k, []string{"a", "e"}) {
		t.Errorf("stored %v, want [a e]", k)
	}
}

// TestWriterRerunMembers: a group made only of members that may run
// again goes without savepoints: when all succeed each runs once; when
// one fails, the transaction is undone and they run again with
// savepoints, so the answers and what is stored are those of
// TestWriterSavepoints, and nothing is stored twice.
func TestWriterRerunMembers(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	runs := map[string]int{}
	counted := func(name string, fn func(*txn) error) *writeReq {
		r := request(ctx, false, func(tx *txn) error {
			runs[name]++
			return fn(tx)
		})
		r.rerun = true
		return r
	}

	got := group(t, db, counted("x", insertKey("x")), counted("y", insertKey("y")))
	if got[0] != errNone || got[1] != errNone {
		t.Fatalf("members that succeed got %v", got)
	}
	if runs["x"] != 1 || runs["y"] != 1 {
		t.Fatalf("members that succeed ran %v times, want once each", runs)
	}

	mine := errors.New("mine")
	got = group(t, db,
		counted("a", insertKey("a")),
		counted("b", insertThenFail("b", mine)),
		counted("c", func(tx *txn) error {
			if err := insertKey("c")(tx); err != nil {
				return err
			}
			return insertKey("a")(tx) // a duplicate once a is in: fails
		}),
		counted("e", insertKey("e")),
	)
	if got[0] != errNone || got[3] != errNone {
		t.Errorf("the good members got %v, %v", got[0], got[3])
	}
	if !errors.Is(got[1], mine) {
		t.Errorf("a member's own error came back as %v", got[1])
	}
	if webhook.ErrorCode(got[2]) != webhook.EConflict {
		t.Errorf("a duplicate key came back as %v, want a conflict", got[2])
	}
	if k := keys(t, db); !equal(k, []string{"a", "e", "x", "y"}) {
		t.Errorf("stored %v, want [a e x y]", k)
	}
	// a and b ran without savepoints, then again with; c failed alone
	// in the next group without them and again with; e ran once.
	if runs["a"] != 2 || runs["b"] != 2 || runs["c"] != 2 || runs["e"] != 1 {
		t.Errorf("runs %v, want a, b and c twice, e once", runs)
	}
}

// TestWriterRerunBroken: when the pass with savepoints that follows a
// failed optimistic one breaks under a member, the members after it are
// still run and answered.
func TestWriterRerunBroken(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	gone, mine := errors.New("gone"), errors.New("mine")
	runs := 0
	breaksSecondTime := request(ctx, false, func(tx *txn) error {
		if runs++; runs == 1 {
			return insertKey("a")(tx)
		}
		if _, err := tx.ExecContext(ctx, `ROLLBACK`); err != nil {
			return err
		}
		return gone
	})
	fails := request(ctx, false, insertThenFail("b", mine))
	next := request(ctx, false, insertKey("c"))
	breaksSecondTime.rerun, fails.rerun, next.rerun = true, true, true
	got := group(t, db, breaksSecondTime, fails, next)
	if !errors.Is(got[0], gone) {
		t.Errorf("the member that broke the transaction got %v", got[0])
	}
	if !errors.Is(got[1], mine) {
		t.Errorf("the member after it got %v, want its own error", got[1])
	}
	if got[2] != errNone {
		t.Errorf("the member of the next group got %v", got[2])
	}
	if k := keys(t, db); !equal(k, []string{"c"}) {
		t.Errorf("stored %v, want [c]", k)
	}
}

// TestWriterCommitFails: when the commit fails, every member fails, none
// of their work stays, and the connection is not left inside the failed
// transaction for the next group.
func TestWriterCommitFails(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	got := group(t, db,
		request(ctx, true, insertKey("a")),
		request(ctx, true, func(tx *txn) error {
			// A deferred foreign key is checked at COMMIT only, and a
			// COMMIT failing on it leaves SQLite's transaction open.
			if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO child (k) VALUES ('nobody')`)
			return err
		}),
	)
	for i, err := range got {
		if err == errNone || err == nil {
			t.Errorf("member %d got %v after a failed commit", i, err)
		}
	}
	if k := keys(t, db); len(k) != 0 {
		t.Errorf("stored %v after a failed commit", k)
	}
	if err := db.transact(ctx, insertKey("b")); err != nil {
		t.Fatalf("the next transaction: %v", err)
	}
	if k := keys(t, db); !equal(k, []string{"b"}) {
		t.Errorf("stored %v, want [b]", k)
	}
}

// TestWriterDurability: a group commits at FULL (2) if any member is
// durable, at NORMAL (1) if none is, whatever the group before set.
func TestWriterDurability(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	for n, c := range []struct {
		durable []bool
		want    int
	}{
		{[]bool{false, false}, 1},
		{[]bool{false, true, false}, 2},
		{[]bool{false}, 1},
		{[]bool{false}, 1},
		{[]bool{true}, 2},
		{[]bool{true, true}, 2},
		{[]bool{false, false}, 1},
	} {
		var batch []*writeReq
		for i, d := range c.durable {
			batch = append(batch, request(ctx, d, insertKey(fmt.Sprint(n, "-", i))))
		}
		// Read inside the group: the setting its commit runs under.
		seen, temp := 0, 0
		batch = append(batch, request(ctx, false, func(tx *txn) error {
			if err := tx.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&temp); err != nil {
				return err
			}
			return tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&seen)
		}))
		for _, err := range group(t, db, batch...) {
			if err != errNone {
				t.Fatal(err)
			}
		}
		if temp != 2 {
			t.Errorf("temp_store = %d, want 2 (MEMORY): savepoints journal to a file", temp)
		}
		if seen != c.want {
			t.Errorf("durable %v: synchronous = %d, want %d", c.durable, seen, c.want)
		}
	}
}

// TestWriterCancelled: a request whose context ended before its turn is
// not run and gets the context's error; an abandoned one is skipped.
func TestWriterCancelled(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	abandoned := request(ctx, true, func(*txn) error { ran = true; return nil })
	abandoned.state.Store(reqAbandoned)
	got := group(t, db,
		request(ctx, false, insertKey("a")),
		request(cancelled, true, func(*txn) error { ran = true; return nil }),
		abandoned,
		request(ctx, false, insertKey("b")),
	)
	if ran {
		t.Error("a cancelled or abandoned request ran")
	}
	if got[0] != errNone || got[3] != errNone {
		t.Errorf("the live members got %v, %v", got[0], got[3])
	}
	if !errors.Is(got[1], context.Canceled) {
		t.Errorf("the cancelled request got %v", got[1])
	}
	if got[2] != nil {
		t.Errorf("the abandoned request was answered %v", got[2])
	}
	if err := db.transact(cancelled, func(*txn) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Errorf("transact with a cancelled context: %v, ran %v", err, ran)
	}
	if k := keys(t, db); !equal(k, []string{"a", "b"}) {
		t.Errorf("stored %v, want [a b]", k)
	}
}

// TestWriterCancelWhileRunning: a caller whose context ends while its
// work runs still hears how the group ended.
func TestWriterCancelWhileRunning(t *testing.T) {
	db := openScratch(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := db.transact(ctx, func(tx *txn) error {
		cancel()
		// The statement runs under the group's context, not the cancelled one.
		return insertKey("a")(tx)
	})
	if err != nil {
		t.Fatalf("got %v, want the commit's nil", err)
	}
	if k := keys(t, db); !equal(k, []string{"a"}) {
		t.Errorf("stored %v, want [a]", k)
	}
}

// TestWriterClose: Close lets the group under way commit and answer, and
// fails or runs what was queued; writes after it fail.
func TestWriterClose(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	running, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.transact(ctx, func(tx *txn) error {
			close(running)
			<-release
			return insertKey("a")(tx)
		})
	}()
	<-running
	queued := make(chan error, 1)
	go func() { queued <- db.transact(ctx, insertKey("b")) }()
	closed := make(chan error, 1)
	go func() { db.w.close(); closed <- nil }()
	close(release)
	if err := <-first; err != nil {
		t.Errorf("the running write: %v", err)
	}
	<-closed
	qerr := <-queued
	if qerr != nil && webhook.ErrorCode(qerr) != webhook.EUnavailable {
		t.Errorf("the queued write: %v", qerr)
	}
	if err := db.transact(ctx, insertKey("c")); webhook.ErrorCode(err) != webhook.EUnavailable {
		t.Errorf("a write after Close: %v", err)
	}
	want := []string{"a"}
	if qerr == nil {
		want = []string{"a", "b"}
	}
	if k := keys(t, db); !equal(k, want) {
		t.Errorf("stored %v, want %v", k, want)
	}
	if err := db.Close(); err != nil {
		t.Error(err)
	}
}

// TestWriterBrokenGroup: when the transaction ends under a member (as
// SQLite ends it on an I/O error or a full disk), the members run in it
// fail with that member's error, since their work is gone, and the
// members not reached yet run in the next transaction.
func TestWriterBrokenGroup(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	gone := errors.New("gone")
	got := group(t, db,
		request(ctx, false, insertKey("a")),
		request(ctx, true, func(tx *txn) error {
			if _, err := tx.ExecContext(ctx, `ROLLBACK`); err != nil {
				return err
			}
			return gone
		}),
		request(ctx, false, insertKey("c")),
	)
	if !errors.Is(got[0], gone) || !errors.Is(got[1], gone) {
		t.Errorf("the members run in the broken transaction got %v, %v", got[0], got[1])
	}
	if got[2] != errNone {
		t.Errorf("the member after it got %v", got[2])
	}
	if k := keys(t, db); !equal(k, []string{"c"}) {
		t.Errorf("stored %v, want [c]", k)
	}
	if err := db.transact(ctx, insertKey("d")); err != nil {
		t.Fatalf("the next transaction: %v", err)
	}
}

// Migration scripts run once: none may take a place in the statement
// cache, which the write path's statements need.
func TestMigrationsNotCached(t *testing.T) {
	ctx := context.Background()
	db := openMigrated(t)
	ms, err := migration.Load(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	cached := func(q string) bool {
		db.stmtsMu.Lock()
		defer db.stmtsMu.Unlock()
		return db.stmts[q] != nil || db.missed[q]
	}
	for _, m := range ms {
		if cached(m.SQL) {
			t.Errorf("migration %s is in the statement cache", m.Name)
		}
	}
	db.prepareMissed(ctx)
	for _, m := range ms {
		if cached(m.SQL) {
			t.Errorf("migration %s was prepared for the statement cache", m.Name)
		}
	}
}

// TestWriterPurgeRunsAlone: a purge's batch never shares a transaction. A
// group gathered before it ends where it waits, it runs next on its own,
// and what queued behind it makes the group after it.
func TestWriterPurgeRunsAlone(t *testing.T) {
	ctx := context.Background()
	a, b, c := request(ctx, true, nil), request(ctx, false, nil), request(ctx, true, nil)
	p := &writeReq{ctx: ctx, alone: true, done: make(chan error, 1)}
	reqs := make(chan *writeReq, 8)
	for _, r := range []*writeReq{b, p, c} {
		reqs <- r
	}
	batch, next := gather([]*writeReq{a}, reqs)
	if len(batch) != 2 || batch[0] != a || batch[1] != b || next != p {
		t.Fatalf("first group: %d requests, next is the purge: %v; want a and b, then the purge", len(batch), next == p)
	}
	batch, next = gather([]*writeReq{next}, reqs)
	if len(batch) != 1 || batch[0] != p || next != nil {
		t.Fatalf("the purge's group has %d requests (next %v); want it alone", len(batch), next)
	}
	if batch, next = gather([]*writeReq{<-reqs}, reqs); len(batch) != 1 || batch[0] != c || next != nil {
		t.Fatalf("the group after the purge has %d requests; want c alone (nothing else queued)", len(batch))
	}

	// A group takes maxGroup requests at most; the rest wait for the next.
	many := make(chan *writeReq, maxGroup+1)
	for range maxGroup + 1 {
		many <- request(ctx, false, nil)
	}
	if batch, next = gather([]*writeReq{<-many}, many); len(batch) != maxGroup || next != nil || len(many) != 1 {
		t.Fatalf("a group of %d with %d left queued; want %d and 1", len(batch), len(many), maxGroup)
	}

	// Through the writer: a purge and a transaction queued beside it see
	// two transactions.
	db := openScratch(t)
	seen := make(chan *txn, 2)
	block, release := make(chan struct{}), make(chan struct{})
	go db.transact(ctx, func(tx *txn) error { close(block); <-release; return nil })
	<-block
	errs := make(chan error, 2)
	go func() {
		errs <- db.w.purge(ctx, func(tx *txn) error { seen <- tx; return insertKey("purged")(tx) })
	}()
	go func() {
		errs <- db.transact(ctx, func(tx *txn) error { seen <- tx; return insertKey("kept")(tx) })
	}()
	// Both queue for the writer while it holds the first transaction;
	// gathered together, they would share the next one.
	time.Sleep(200 * time.Millisecond)
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if first, second := <-seen, <-seen; first == second {
		t.Error("the purge ran in the same transaction as another request")
	}
	if got := keys(t, db); !equal(got, []string{"kept", "purged"}) {
		t.Errorf("keys %v; want both committed", got)
	}
}

// TestWriterStuckFor: a writer held inside one group (here a member that
// never returns, as a deadlock in hookd's own code would) says for how
// long, while the writes queued behind it wait; once it moves on, and
// while it waits for work, it is stuck for no time at all.
func TestWriterStuckFor(t *testing.T) {
	ctx := context.Background()
	db := openScratch(t)
	awaitWriterIdle(t, db, "an idle writer")
	release, held := make(chan struct{}), make(chan struct{})
	wedged := make(chan error, 1)
	go func() {
		wedged <- db.transact(ctx, func(tx *txn) error {
			close(held)
			<-release
			return insertKey("held")(tx)
		})
	}()
	<-held
	queued := make(chan error, 1)
	go func() { queued <- db.transact(ctx, insertKey("queued")) }()
	start := time.Now()
	if d := db.WriterStuckFor(start.Add(time.Minute)); d < time.Minute {
		t.Errorf("a writer held for a minute (as seen a minute on) says it is stuck for %v", d)
	}
	select {
	case err := <-queued:
		t.Fatalf("a write behind the stuck one finished: %v", err)
	default:
	}
	close(release)
	for _, ch := range []chan error{wedged, queued} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	awaitWriterIdle(t, db, "a writer that moved on")
}

// awaitWriterIdle waits until the writer waits for work: it prepares
// missed statements after answering, so a moment after at most.
func awaitWriterIdle(t *testing.T, db *DB, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); db.WriterStuckFor(time.Now().Add(time.Hour)) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the writer is still busy 5s on", what)
		}
	}
}

// TestWriterNotStuckBehindForeignLock: another process holding the
// database's write lock (a backup tool, sqlite3 at a prompt) fails hookd's
// writes after the busy timeout; the writer moves on, so it is never
// stuck longer than that: restarting hookd would not free that lock.
func TestWriterNotStuckBehindForeignLock(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 10s busy timeout")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db, err := Open(ctx, path, storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.transact(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE k (k TEXT PRIMARY KEY)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `INSERT INTO k (k) VALUES ('other')`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := db.transact(ctx, insertKey("ours")); err == nil {
		t.Fatal("a write went through while another process held the lock")
	}
	took := time.Since(start)
	awaitWriterIdle(t, db, "a writer whose write failed")
	if took >= StuckLimit/2 {
		t.Errorf("a write behind a foreign lock took %v to fail: too near StuckLimit (%v) to tell the two apart", took, StuckLimit)
	}
}
