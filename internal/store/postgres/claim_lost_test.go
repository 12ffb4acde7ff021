package postgres

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
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

// A claim whose connection fails while its UPDATE's rows come back may
// have been rolled back: the server ends a session that loses its client
// before the Sync that commits it. Another node's claim then leases the
// same deliveries under the same tokens (each claim's is the row's
// lease + 1), so the failed claim must not give them back: that would
// release the other node's leases while it sends them, and a third claim
// would send them again.
func TestClaimCutOffBeforeItsCommitReleasesNothing(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.URL(t))
	keys := storetest.Keys(t)
	other := openIn(t, dsn, keys) // another node, straight to the server
	ctx := context.Background()
	org := uuid.New()
	storeHooks(t, other, newHook(org), newHook(org))
	if _, err := other.EventsCreate(ctx, []*webhook.Event{newEv(org, "")}, webhook.Lease{}); err != nil {
		t.Fatal(err)
	}
	p := webhook.ClaimParams{Now: t0, LeaseUntil: t0.Add(time.Hour), Limit: 10}

	var taken []*webhook.Task
	proxy := cutClaims(t, dsn, func() {
		// The cut claim's session is gone, and its UPDATE with it: the
		// other node's claim leases the deliveries once their rows are
		// free.
		deadline := time.Now().Add(10 * time.Second)
		for len(taken) < 2 && time.Now().Before(deadline) {
			tasks, err := other.DeliveryClaim(ctx, p)
			if err != nil {
				t.Error(err)
				return
			}
			taken = append(taken, tasks...)
			time.Sleep(10 * time.Millisecond)
		}
	})
	db := openIn(t, proxy.dsn, keys)
	proxy.armed.Store(true)
	if tasks, err := db.DeliveryClaim(ctx, p); err == nil {
		t.Fatalf("the claim cut off = %d tasks; want an error", len(tasks))
	}
	if !proxy.cut.Load() {
		t.Fatal("the proxy cut no claim: the test proves nothing")
	}
	if len(taken) != 2 {
		t.Fatalf("the other node leased %d deliveries after the cut claim's rollback, want 2", len(taken))
	}
	for _, tk := range taken {
		d, err := other.DeliveryGet(ctx, org, tk.Delivery.WebhookID, tk.Delivery.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != webhook.DeliveryRunning || d.Lease != tk.Delivery.Lease {
			t.Errorf("the delivery the other node holds (lease %d) is %s under lease %d: the cut claim gave back a lease it never had",
				tk.Delivery.Lease, d.Status, d.Lease)
		}
	}
}

// claimCutter is a proxy to PostgreSQL that, once armed, lets the
// server answer one claim's UPDATE but never commit it: the claim's Sync
// is held back (a Flush sent in its place, so the rows come), then the
// server's side of the connection is closed (the session ends, its
// transaction rolled back), then, after rolledBack has run, the
// client's: the claim has read its rows and fails.
type claimCutter struct {
	dsn        string
	armed, cut atomic.Bool
}

func cutClaims(t *testing.T, dsn string, rolledBack func()) *claimCutter {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(cfg.Host, "/") {
		t.Skip("the proxy speaks TCP to the server")
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &claimCutter{}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	c.dsn = pgtest.WithParam(pgtest.WithParam(pgtest.WithParam(dsn, "host", host), "port", port), "sslmode", "disable")
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
			server, err := net.Dial("tcp", addr)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			var held atomic.Bool // this connection's claim waits for its Sync
			wg.Add(2)
			go func() { // client to server
				defer wg.Done()
				defer server.Close()
				r := bufio.NewReader(client)
				// The first message (startup, SSL or cancel request) has
				// no type byte.
				var n uint32
				if binary.Read(r, binary.BigEndian, &n) != nil {
					return
				}
				first := make([]byte, n)
				binary.BigEndian.PutUint32(first, n)
				if _, err := io.ReadFull(r, first[4:]); err != nil {
					return
				}
				if _, err := server.Write(first); err != nil {
					return
				}
				statements := map[string]string{}
				claiming := false
				for {
					head := make([]byte, 5)
					if _, err := io.ReadFull(r, head); err != nil {
						return
					}
					body := make([]byte, binary.BigEndian.Uint32(head[1:])-4)
					if _, err := io.ReadFull(r, body); err != nil {
						return
					}
					switch head[0] {
					case 'P': // Parse: statement name, query
						name, rest, _ := bytes.Cut(body, []byte{0})
						query, _, _ := bytes.Cut(rest, []byte{0})
						statements[string(name)] = string(query)
					case 'B': // Bind: portal, statement name
						_, rest, _ := bytes.Cut(body, []byte{0})
						name, _, _ := bytes.Cut(rest, []byte{0})
						claiming = strings.HasPrefix(statements[string(name)], "UPDATE deliveries d SET status = 'running'")
					case 'S':
						if claiming && c.armed.CompareAndSwap(true, false) {
							held.Store(true)
							head = []byte{'H', 0, 0, 0, 4} // Flush: the rows, no commit
						}
						claiming = false
					}
					if _, err := server.Write(append(head, body...)); err != nil {
						return
					}
				}
			}()
			go func() { // server to client
				defer wg.Done()
				defer client.Close()
				r := bufio.NewReader(server)
				for {
					head := make([]byte, 5)
					if _, err := io.ReadFull(r, head); err != nil {
						return
					}
					body := make([]byte, binary.BigEndian.Uint32(head[1:])-4)
					if _, err := io.ReadFull(r, body); err != nil {
						return
					}
					if held.Load() && head[0] == 'C' { // the UPDATE is done, uncommitted
						server.Close()
						rolledBack()
						c.cut.Store(true)
						return
					}
					if _, err := client.Write(append(head, body...)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return c
}
