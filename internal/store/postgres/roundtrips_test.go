package postgres

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// Intake and outcomes wait for the server twice per batch, not four times:
// BEGIN goes out with the first batch and COMMIT with the last (pipe).
// Counted on the wire, by a proxy, as the server's ReadyForQuery
// messages: one ends each round trip.
func TestHotPathsTakeTwoRoundTrips(t *testing.T) {
	dsn, trips := countRoundTrips(t, pgtest.Schema(t, pgtest.URL(t)))
	db := openIn(t, dsn, storetest.Keys(t))
	db.purger.Close() // its first search, in the background, would count too
	ctx := context.Background()
	org := uuid.New()
	storeHooks(t, db, newHook(org))

	counted := func(fn func()) int64 {
		before := trips.Load()
		fn()
		return trips.Load() - before
	}
	intake := func(key string) *webhook.Task {
		rs, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, key)}, webhook.Lease{Now: t0, Until: t0.Add(time.Hour), Limit: 10})
		if err != nil || len(rs) != 1 || len(rs[0].Tasks) != 1 {
			t.Fatalf("intake: %+v, %v; want one delivery leased", rs, err)
		}
		return rs[0].Tasks[0]
	}
	// The first run of each statement also prepares it.
	complete(t, db, intake("warm"), webhook.DeliverySucceeded)

	var tk *webhook.Task
	if n := counted(func() { tk = intake("") }); n != 2 {
		t.Errorf("intake took %d round trips, want 2", n)
	}
	if n := counted(func() { complete(t, db, tk, webhook.DeliveryFailed) }); n != 2 {
		t.Errorf("outcomes took %d round trips, want 2", n)
	}
	// A key may lose a race to a concurrent intake, whose event intake
	// then reads before it commits (replayLost): one more.
	if n := counted(func() { intake("key") }); n != 3 {
		t.Errorf("intake with an idempotency key took %d round trips, want 3", n)
	}

	// An outcome that would disable its webhook locks and reads the
	// batch's webhooks first (webhook.Outcome.Against): one more; one
	// that disables it reads whether the webhook was still enabled before
	// the COMMIT: one more again. Each is counted after a run on another
	// organization's webhook has prepared its statements.
	gone := func(org uuid.UUID, outdated bool) int64 {
		t.Helper()
		rs, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{Now: t0, Until: t0.Add(time.Hour), Limit: 10})
		if err != nil || len(rs) != 1 || len(rs[0].Tasks) != 1 {
			t.Fatalf("intake: %+v, %v; want one delivery leased", rs, err)
		}
		tk := rs[0].Tasks[0]
		d, read := tk.Delivery, tk.Webhook.UpdatedAt
		if outdated {
			read = read.Add(-time.Second)
		}
		o := webhook.Outcome{Status: webhook.DeliveryFailed, Lease: d.Lease, DisableReason: "gone", WebhookUpdatedAt: read,
			Attempt: webhook.Attempt{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, WebhookID: d.WebhookID, DeliveryID: d.ID,
				EventID: d.EventID, CreatedAt: t0, Number: 1, Kind: webhook.KindStandard, TargetURL: "https://example.com", StatusCode: 410}}
		return counted(func() {
			if res, err := db.DeliveryComplete(ctx, []webhook.Outcome{o}); err != nil || len(res.Disabled)+len(res.Outdated) != 1 {
				t.Fatalf("complete: disabled %v, outdated %v, %v; want one of them", res.Disabled, res.Outdated, err)
			}
		})
	}
	warm := uuid.New()
	storeHooks(t, db, newHook(warm))
	gone(warm, true)
	if n := gone(org, true); n != 3 {
		t.Errorf("a 410 about a version edited since took %d round trips, want 3", n)
	}
	gone(warm, false)
	if n := gone(org, false); n != 4 {
		t.Errorf("a 410 that disables the webhook took %d round trips, want 4", n)
	}
}

// An intake whose COMMIT fails is refused, keyed or not, and stores
// nothing: its writes went out with the COMMIT, whose answer decides.
// The server refuses the commit here through a deferred trigger.
func TestIntakeRefusedAtCommit(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	storeHooks(t, db, newHook(org))
	if _, err := db.pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql
		AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON events
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "key"} {
		rs, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, key)}, webhook.Lease{Now: t0, Until: t0.Add(time.Hour), Limit: 10})
		if err == nil || !strings.Contains(err.Error(), "refused at commit") {
			t.Errorf("key %q: EventsCreate = %+v, %v; want the commit's error", key, rs, err)
		}
	}
	if e, d, a := tableCounts(t, db); e+d+a != 0 {
		t.Fatalf("intakes refused at commit left %d events, %d deliveries, %d attempts", e, d, a)
	}
}

// A pipe whose transaction failed does not commit, even when the error
// went unread: COMMIT then answers ROLLBACK, and commit says so.
func TestPipeCommitAfterFailure(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	p := openPipe(t, db)
	b := &pgx.Batch{}
	b.Queue(`SELECT 1/0`)
	_ = p.send(ctx, b).Close() // the caller's mistake
	if err := p.commit(ctx); !errors.Is(err, pgx.ErrTxCommitRollback) {
		t.Fatalf("commit = %v, want %v", err, pgx.ErrTxCommitRollback)
	}
}

// idleConns is the set of the pool's idle connections, by server pid.
func idleConns(t *testing.T, db *DB) map[uint32]bool {
	t.Helper()
	pids := map[uint32]bool{}
	for _, c := range db.pool.AcquireAllIdle(context.Background()) {
		pids[c.Conn().PgConn().PID()] = true
		c.Release()
	}
	return pids
}

// countRoundTrips starts a proxy to the PostgreSQL server of dsn and
// returns dsn through it and the count of ReadyForQuery messages the
// server sent through it.
func countRoundTrips(t *testing.T, dsn string) (string, *atomic.Int64) {
	t.Helper()
	var trips atomic.Int64
	dsn = wireProxy(t, dsn, func(client, server net.Conn) (toServer, toClient func()) {
		toServer = func() { io.Copy(server, client) }
		toClient = func() {
			// Every message from the server is a type byte and a
			// length that counts itself.
			r := bufio.NewReader(server)
			head := make([]byte, 5)
			for {
				if _, err := io.ReadFull(r, head); err != nil {
					return
				}
				if head[0] == 'Z' {
					trips.Add(1)
				}
				if _, err := client.Write(head); err != nil {
					return
				}
				if _, err := io.CopyN(client, r, int64(binary.BigEndian.Uint32(head[1:]))-4); err != nil {
					return
				}
			}
		}
		return toServer, toClient
	})
	return dsn, &trips
}

// wireProxy starts a proxy on loopback to the PostgreSQL server of dsn
// and returns dsn through it, without TLS, so that the proxy can read
// the messages. For each connection, conn gives what copies the client's
// messages to the server and the server's to the client, each run in a
// goroutine of its own; the server's side is closed when the first
// returns, the client's when the second does.
func wireProxy(t *testing.T, dsn string, conn func(client, server net.Conn) (toServer, toClient func())) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	network, addr := "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if strings.HasPrefix(cfg.Host, "/") { // the directory of the server's Unix socket
		network, addr = "unix", filepath.Join(cfg.Host, ".s.PGSQL."+strconv.Itoa(int(cfg.Port)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial(network, addr)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			toServer, toClient := conn(client, server)
			wg.Add(2)
			go func() {
				defer wg.Done()
				defer server.Close()
				toServer()
			}()
			go func() {
				defer wg.Done()
				defer client.Close()
				toClient()
			}()
		}
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	return pgtest.WithParam(pgtest.WithParam(pgtest.WithParam(dsn, "host", host), "port", port), "sslmode", "disable")
}

// An intake the server refuses in its last batch, the one carrying the
// COMMIT, is rolled back whole: nothing of it is stored, the error says
// what was wrong, and its connection goes back to the pool ready for the
// next transaction.
func TestRefusedIntakeRollsBack(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org := uuid.New()
	storeHooks(t, db, newHook(org))
	good, bad := newEv(org, ""), newEv(org, "")
	bad.Payload = []byte(`{"unterminated`) // the API never lets this through; the column's type refuses it
	// Until its first pass ends the purger holds a connection, which
	// would be idle after the intake but not before it.
	<-db.purger.FirstPass()
	idle := idleConns(t, db)
	_, err := db.EventsCreate(ctx, []*webhook.Event{good, bad}, webhook.Lease{})
	if webhook.ErrorCode(err) != webhook.EInvalid {
		t.Fatalf("EventsCreate = %v, want %s", err, webhook.EInvalid)
	}
	if e, d, a := tableCounts(t, db); e+d+a != 0 {
		t.Fatalf("the refused intake left %d events, %d deliveries, %d attempts", e, d, a)
	}
	if after := idleConns(t, db); !maps.Equal(after, idle) {
		t.Fatalf("idle connections (server pids) %v, %v before: want the intake's rolled back and idle again", after, idle)
	}
	if _, err := db.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	if e, d, _ := tableCounts(t, db); e != 1 || d != 1 {
		t.Fatalf("the next intake left %d events, %d deliveries; want 1 and 1", e, d)
	}
}
