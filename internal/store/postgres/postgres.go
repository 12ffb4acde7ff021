// Package postgres is hookd's multi-node backend: webhook.Store on
// PostgreSQL through pgx. Several hookd processes may share one database;
// the delivery queue is claimed with FOR UPDATE SKIP LOCKED so they split
// the work without handing a delivery to two of them.
//
// It must never read the caller's identity from the context: every
// organization-owned row is addressed by the organization id passed in.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/store/purge"
	"github.com/hookd/hookd/internal/webhook"
)

// DB is a pool of connections to one hookd database.
type DB struct {
	pool     *pgxpool.Pool
	notifier *notifier
	purger   *purge.Purger[orphan] // deleted webhooks' deliveries, in the background (purge.go)
	// purgeFailed hears of the purger's failed passes (ReportPurgeErrors).
	purgeFailed func(error)
	// callerClock makes the times callers pass the queue's clock, as on
	// SQLite (see UseCallerClock); otherwise the queue runs on now().
	callerClock bool
	// listenURL, when set, is where Listen connects (see ListenOn).
	listenURL string
	// keys seal the secrets of webhooks and sources as their rows are
	// written and open them as they are read (webhookScan, scanSource):
	// nothing else in the package sees a sealed value.
	keys *secrets.Keyring
	// retentionBatch is how many events DeleteBefore deletes in one
	// transaction (defaultRetentionBatch; tests make it small).
	retentionBatch int
}

// ListenOn makes Listen connect to url rather than where the pool
// does: behind a pooler in transaction mode, notifications only arrive
// on a direct connection to the server. Call it before Listen.
func (db *DB) ListenOn(url string) { db.listenURL = url }

var _ webhook.Store = (*DB)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// string) and checks that it answers. It does not migrate. Secrets are
// sealed with keys (an empty Keyring stores them in clear, as hookd did
// before encryption; nil is refused, so forgetting the keys cannot).
func Open(ctx context.Context, url string, keys *secrets.Keyring) (*DB, error) {
	if keys == nil {
		return nil, errors.New("postgres: no keyring to seal secrets with")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	// A node paused (SIGSTOP, a frozen VM) or cut off in the middle of a
	// transaction would keep its row locks, stalling every other node
	// that needs those rows, for as long as the pause lasts. The server
	// ends such a session instead, and the node's work is taken over as
	// when its leases expire. Unless the URL says otherwise, or names a
	// query mode for a pooler (default_query_exec_mode=exec or
	// simple_protocol), which would refuse the parameter: there, set it on
	// the role (ALTER ROLE ... SET idle_in_transaction_session_timeout).
	pooled := cfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeExec ||
		cfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeSimpleProtocol
	if _, ok := cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; !ok && !pooled {
		cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "5s"
	}
	guardConnections(&cfg.ConnConfig.Config)
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = pingTimeout
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		// Left to itself, pgx sends a uuid.UUID through its driver.Valuer:
		// formatted as text, then parsed back, one element at a time in an
		// array (about a tenth of hookd's CPU in a PostgreSQL burst).
		// pgxuuid sends it with pgx's binary uuid codec. (Reading one back
		// still goes through uuid's sql.Scanner, which pgx prefers: about
		// 2 % of hookd's CPU there, left as is.)
		pgxuuid.Register(conn.TypeMap())
		if pooled {
			// Without prepared statements pgx takes each argument's type
			// from its Go type: name the UUID ones, which it does not know.
			conn.TypeMap().RegisterDefaultPgType(uuid.UUID{}, "uuid")
			conn.TypeMap().RegisterDefaultPgType([]uuid.UUID{}, "_uuid")
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return &DB{pool: pool, notifier: &notifier{pool: pool}, keys: keys, retentionBatch: defaultRetentionBatch}, nil
}

// UseCallerClock makes the queue compare due times and leases with the
// times passed in (ClaimParams.Now and the like) rather than with the
// database's clock: for tests that need a clock they control, like the
// conformance suite. Call it before any other method.
func (db *DB) UseCallerClock() { db.callerClock = true }

// clock is the argument for a statement's coalesce($n::timestamptz,
// now()): NULL, so the database's clock, unless UseCallerClock was called.
func (db *DB) clock(t time.Time) any {
	if db.callerClock {
		return ts(t)
	}
	return nil
}

// Pool returns the underlying pool, for what the Store does not cover
// (LISTEN/NOTIFY).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks the database is reachable and accepts writes: a statement
// that writes nothing still fails on a standby or a read-only database.
func (db *DB) Ping(ctx context.Context) error {
	_, err := db.pool.Exec(ctx, "DELETE FROM deliveries WHERE false")
	return translate(err)
}

// Close stops the purger, then waits for connections in use to be
// returned and closes them all.
func (db *DB) Close() error {
	db.purger.Close()
	db.pool.Close()
	return nil
}

// transact runs fn in a transaction, committed when fn returns nil and
// rolled back otherwise.
func (db *DB) transact(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return translate(pgx.BeginFunc(ctx, db.pool, fn))
}

// pipe is a transaction for the queue's hot paths (intake, outcomes)
// that waits for the server only for its statements: BEGIN goes out
// ahead of its first batch and COMMIT behind its last (sendLast), where
// pgx.BeginFunc waits for the server's answer to each (pgx's
// Batch.BeginTx saves the first of those two round trips, not the
// second). With its statements already prepared on the connection, an
// outcome batch, like an intake batch without idempotency keys, costs
// two round trips instead of four: half the waits for the server, and
// half the system calls and wake-ups on both sides.
type pipe struct {
	conn              *pgxpool.Conn
	begun, committing bool
}

// pipelined runs fn in a pipe on a connection of the pool. fn's last
// batch commits (sendLast), or pipelined commits after it; if fn or the
// commit fails, the transaction is rolled back.
func (db *DB) pipelined(ctx context.Context, fn func(*pipe) error) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return translate(err)
	}
	p := &pipe{conn: conn}
	defer p.end(ctx)
	if err := fn(p); err != nil {
		return translate(err)
	}
	return translate(p.commit(ctx))
}

// end rolls back whatever is left open and gives the connection back.
func (p *pipe) end(ctx context.Context) {
	// A failed ROLLBACK (on a context that ended, say) leaves the
	// connection out of its idle state, and Release closes such a
	// connection, which ends the transaction too.
	if p.conn.Conn().PgConn().TxStatus() != 'I' {
		_, _ = p.conn.Exec(ctx, "ROLLBACK")
	}
	p.conn.Release()
}

// send sends b in the transaction, beginning it first if b is its first
// batch. The results read are b's own.
func (p *pipe) send(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return p.sendBatch(ctx, b, false)
}

// sendLast sends b and then COMMIT; Close reads the commit's answer and
// reports its error. The COMMIT leaves with b, so nothing read from b's
// results, nor anything the caller does after, can stop it: b must hold
// only statements whose failure aborts the transaction (no callback that
// refuses a result), and nothing may still be able to fail once it is
// sent.
func (p *pipe) sendLast(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return p.sendBatch(ctx, b, true)
}

func (p *pipe) sendBatch(ctx context.Context, b *pgx.Batch, last bool) pgx.BatchResults {
	if p.committing {
		return pgx.FailedBatchResults(b, errors.New("postgres: batch sent after the transaction's last"))
	}
	var begin, commit []*pgx.QueuedQuery
	if !p.begun {
		begin = []*pgx.QueuedQuery{{SQL: "BEGIN"}}
	}
	if last {
		c := &pgx.QueuedQuery{SQL: "COMMIT"}
		c.Exec(func(tag pgconn.CommandTag) error {
			// What COMMIT answers in a transaction that had failed.
			if tag.String() == "ROLLBACK" {
				return pgx.ErrTxCommitRollback
			}
			return nil
		})
		commit = []*pgx.QueuedQuery{c}
	}
	br := p.conn.SendBatch(ctx, &pgx.Batch{QueuedQueries: slices.Concat(begin, b.QueuedQueries, commit)})
	p.committing = last
	if p.begun {
		return br
	}
	p.begun = true
	if _, err := br.Exec(); err != nil {
		br.Close()
		return pgx.FailedBatchResults(b, err)
	}
	return br
}

// commit commits unless the last batch did.
func (p *pipe) commit(ctx context.Context) error {
	if p.committing || !p.begun {
		return nil
	}
	return p.sendLast(ctx, &pgx.Batch{}).Close()
}

// translate turns a driver error into a *webhook.Error where the caller
// can act on it; anything else stays an internal error (wrapped, so
// context errors still match errors.Is). It is the only place that knows
// PostgreSQL's error codes.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var we *webhook.Error
	if errors.As(err, &we) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return webhook.Errorf(webhook.ENotFound, "not found")
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return webhook.Errorf(webhook.EConflict, "already exists")
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return webhook.Errorf(webhook.EUnavailable, "concurrent update; try again")
		case "23502", "23514", "22P02", "22001", "22007", "22008", "22021", "22P05":
			// not null, check, invalid text (e.g. malformed json), too long,
			// bad date, bad encoding: the value sent cannot be stored.
			return webhook.Errorf(webhook.EInvalid, "invalid value")
		case "53300", "57P01", "57P02", "57P03": // too many connections, shutting down
			return webhook.Errorf(webhook.EUnavailable, "database unavailable")
		case "53100", "25006", "58030": // disk full, read-only transaction (a standby), I/O error
			return webhook.ErrUnwritable
		}
		return fmt.Errorf("postgres: %w", err)
	}
	if connectionLost(err) {
		// The cause stays in the chain, for the log; the caller sees
		// ErrUnreachable's message.
		return fmt.Errorf("postgres: %w: %w", webhook.ErrUnreachable, err)
	}
	return fmt.Errorf("postgres: %w", err)
}

// connectionLost reports whether err says the connection to the server
// failed (it could not be made, was reset, or closed under a statement),
// as when the server restarts, rather than anything about the statement.
// A context that ended is the caller's doing, not the database's.
func connectionLost(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		connect *pgconn.ConnectError
		netErr  net.Error
	)
	return errors.As(err, &connect) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, pgconn.ErrConnClosed)
}

func notFound(what string, id uuid.UUID) error {
	return webhook.Errorf(webhook.ENotFound, "%s %s not found", what, id)
}

// ts is how a time is stored: PostgreSQL keeps microseconds, and pgx
// truncates rather than rounds, so the store hands back what it kept.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTime stores a zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = ts(t)
	return &t
}

func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// stringsOf converts a slice of a string type to []string, never nil: pgx
// sends a nil slice as NULL, which the NOT NULL array columns refuse.
func stringsOf[T ~string](in []T) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}

func typedOf[T ~string](in []string) []T {
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = T(v)
	}
	return out
}

// text makes s storable in a text column: PostgreSQL refuses NUL and
// invalid UTF-8, and a receiver's response body may hold either (see
// webhook.StoredText, which the SQLite backend applies too).
func text(s string) string { return webhook.StoredText(s) }

// prefixed qualifies every column of a comma-separated list with alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// rowScanner is what pgx.Row and pgx.Rows share.
type rowScanner interface {
	Scan(dest ...any) error
}

// collect scans every row with scan, returning a non-nil slice.
func collect[T any](rows pgx.Rows, scan func(rowScanner) (*T, error)) ([]*T, error) {
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}
