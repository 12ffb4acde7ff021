// Package sqlite is hookd's embedded backend: a webhook.Store on one SQLite
// file, safe to share with another hookd process (the CLI) on the same host,
// and served by one (server.go).
//
// Writes go through one goroutine on a single connection (writer.go),
// which runs the write transactions waiting together in one BEGIN
// IMMEDIATE transaction, so a read-then-write never fails half way on a
// lock and a burst pays one commit for many callers; reads use a
// separate pool of read-only connections, which WAL lets run beside the
// writer. It must never hold a write transaction open across anything
// but SQL (no network, no waiting on callers, no encoding or decoding
// that can be done before or after).
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/store/purge"
	"github.com/hookd/hookd/internal/webhook"
)

// DB is a webhook.Store on a SQLite file.
type DB struct {
	// write is one connection: SQLite has one writer anyway, and queuing
	// here beats SQLITE_BUSY. Writes go through w, which owns it but for
	// maintenance outside any transaction (Compact).
	write *sql.DB
	read  *sql.DB
	w     *writer

	checkpoints *checkpointer         // the WAL's, off the writer's path
	purger      *purge.Purger[orphan] // deleted webhooks' deliveries, in the background (purge.go)
	// purgeFailed hears of the purger's failed passes (ReportPurgeErrors).
	purgeFailed func(error)

	// stmts caches statements prepared on the writer: parsing SQL was a
	// fifth of the CPU time of the write path before it.
	stmtsMu sync.Mutex
	stmts   map[string]*sql.Stmt
	missed  map[string]bool

	// keys seal the secrets of webhooks and sources as their rows are
	// written and open them as they are read (webhookRow, scanSource):
	// nothing else in the package sees a sealed value.
	keys *secrets.Keyring

	// hooks holds the webhooks the writer opened for intake and claims;
	// only the writer's goroutine touches it (see webhookCache).
	hooks webhookCache

	server *ServerLock // held by a server (HoldServerLock) until Close
}

// maxCachedStmts bounds the cache; statements with variable-length lists
// beyond it are prepared per use.
const maxCachedStmts = 256

// txn is a member's view of the writer's group transaction (writer.go);
// its statements come from the cache.
type txn struct {
	tx *sql.Tx
	db *DB
	// ctx is the group's, used for every statement in place of the one a
	// member passes: a member's caller giving up mid-statement would
	// interrupt SQLite and could roll back the other members' work.
	ctx context.Context
}

// stmt returns the cached statement for query, bound to the transaction,
// or nil when it is not cached yet. It cannot prepare one here: the
// transaction holds the writer's only connection, so a prepare on the
// pool would wait for itself. Misses are prepared after the group.
func (t *txn) stmt(query string) *sql.Stmt {
	if strings.HasPrefix(query, "PRAGMA") {
		// SQLite runs a pragma, or reads its value, when it prepares it:
		// a cached one would answer or do what it did back then.
		return nil
	}
	t.db.stmtsMu.Lock()
	st, ok := t.db.stmts[query]
	if !ok && len(t.db.stmts)+len(t.db.missed) < maxCachedStmts {
		t.db.missed[query] = true
	}
	t.db.stmtsMu.Unlock()
	if !ok {
		return nil
	}
	// Prepared on the transaction's own connection: no new prepare.
	return t.tx.StmtContext(t.ctx, st)
}

// prepareMissed prepares the statements transactions missed in the cache.
// A failure only means they are prepared per use a while longer.
func (db *DB) prepareMissed(ctx context.Context) {
	db.stmtsMu.Lock()
	var queries []string
	for q := range db.missed {
		queries = append(queries, q)
		delete(db.missed, q)
	}
	db.stmtsMu.Unlock()
	// Not under stmtsMu: preparing waits for the writer connection, which a
	// transaction may hold while it looks up the cache.
	for _, q := range queries {
		st, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		db.stmtsMu.Lock()
		if _, dup := db.stmts[q]; dup {
			st.Close()
		} else {
			db.stmts[q] = st
		}
		db.stmtsMu.Unlock()
	}
}

// The ctx arguments of these methods are ignored for t.ctx (see txn).

func (t *txn) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(query); st != nil {
		return st.ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, query, args...)
}

func (t *txn) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(query); st != nil {
		return st.QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, query, args...)
}

func (t *txn) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(query); st != nil {
		return st.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

var _ webhook.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path, sealing
// secrets with keys (an empty Keyring stores them in clear, as hookd did
// before encryption; nil is refused, so forgetting the keys cannot).
// Call Migrate before using it.
func Open(ctx context.Context, path string, keys *secrets.Keyring) (*DB, error) {
	if keys == nil {
		return nil, errors.New("sqlite: no keyring to seal secrets with")
	}
	if path == "" || strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: invalid database path %q", path)
	}
	common := url.Values{}
	// An accepted event must survive a power cut, hence synchronous=FULL
	// even in WAL mode, where NORMAL would only risk the last commits.
	common.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous(FULL)")

	w := cloneValues(common)
	w.Add("_pragma", "journal_mode(WAL)")
	// Checkpoints run on the checkpointer's connection, never in a
	// commit of the writer (see checkpoint.go).
	w.Add("_pragma", "wal_autocheckpoint(0)")
	w.Add("_pragma", "journal_size_limit("+strconv.Itoa(journalSizeLimit)+")")
	w.Set("_txlock", "immediate")
	write, err := sql.Open("sqlite", path+"?"+w.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// The writer connects first so the file is in WAL mode before any
	// reader opens it.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	r := cloneValues(common)
	r.Add("_pragma", "query_only(1)")
	read, err := sql.Open("sqlite", path+"?"+r.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	cp, err := startCheckpointer(ctx, path, write)
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db := &DB{write: write, read: read, checkpoints: cp, stmts: map[string]*sql.Stmt{}, missed: map[string]bool{}, keys: keys}
	db.w = newWriter(db)
	return db, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Close stops the purger, then the writer, once the group under way has
// committed (the writes still queued fail), then the checkpointer, closes
// the pools, and lets the server lock go.
func (db *DB) Close() error {
	db.purger.Close()
	db.w.close()
	// The server lock last: the next server may take over once it is let go.
	return errors.Join(db.checkpoints.close(), db.read.Close(), db.write.Close(), db.server.Close())
}

// Ping checks both pools can reach the file.
func (db *DB) Ping(ctx context.Context) error {
	// A statement that writes nothing still needs a write transaction, so
	// a read-only file fails here rather than on the first event.
	err := db.transact(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM deliveries WHERE 0")
		return err
	})
	if err != nil {
		return err
	}
	return translate(db.read.PingContext(ctx))
}

// transact runs fn in a write transaction (a member of the writer's next
// group, see writer.go), committing if fn returns nil, with the commit
// on disk before it returns. fn must do only SQL: every other writer
// waits while it runs.
func (db *DB) transact(ctx context.Context, fn func(tx *txn) error) error {
	return db.w.do(ctx, true, false, fn)
}

// transactLazy is transact without waiting for the disk: the commit
// survives a crash of the process (it is in the WAL) but not of the
// machine. It is for queue bookkeeping, never for accepted events: losing
// a lease or an outcome to a power cut only means a delivery is sent
// again, which at-least-once allows, and skipping the fsync is what lets
// the dispatcher claim and record thousands of deliveries a second.
// The next durable commit syncs the WAL, these frames included; a group
// holding any transact member commits durably as a whole.
func (db *DB) transactLazy(ctx context.Context, fn func(tx *txn) error) error {
	return db.w.do(ctx, false, false, fn)
}

// queueWrite is transactLazy for the queue's bookkeeping (claims,
// outcomes, releases, renewals), run in every group of a burst and almost
// never failing: fn may run twice (see writer.group), so it starts from
// scratch each time, resetting whatever it collects. EventsCreate, durable
// and sometimes refused on purpose, asks the writer itself.
func (db *DB) queueWrite(ctx context.Context, fn func(tx *txn) error) error {
	return db.w.do(ctx, false, true, fn)
}

// translate turns driver errors into webhook errors; it is the only place
// that knows SQLite's result codes. Errors that already are *webhook.Error
// pass through.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var we *webhook.Error
	if errors.As(err, &we) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return webhook.Errorf(webhook.ENotFound, "not found")
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return webhook.Errorf(webhook.EConflict, "already exists")
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return webhook.Errorf(webhook.ENotFound, "a referenced row does not exist")
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY_SNAPSHOT, sqlite3.SQLITE_BUSY_TIMEOUT, sqlite3.SQLITE_LOCKED:
			return &webhook.Error{Code: webhook.EUnavailable, Message: "the database is busy, try again"}
		}
		switch se.Code() & 0xff { // the primary code, whatever the extended one
		case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			return webhook.ErrUnwritable
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("sqlite: %w", err)
}

func notFound(what string) error {
	return webhook.Errorf(webhook.ENotFound, "%s not found", what)
}

// Times are stored as unix microseconds; reading them back in UTC keeps
// them comparable with reflect.DeepEqual and time.Time's ==.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// nullMicros stores the zero time as NULL, for the optional timestamps.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// jsonList encodes a string list; a nil list is stored as [] so that it
// reads back as an empty, non-nil slice.
func jsonList[T ~string](s []T) string {
	if len(s) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(s) // strings always marshal
	return string(b)
}

func parseList[T ~string](s string) ([]T, error) {
	out := []T{}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("sqlite: bad list %q: %w", s, err)
	}
	if out == nil {
		out = []T{}
	}
	return out, nil
}

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
