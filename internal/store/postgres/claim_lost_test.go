package postgres

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

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
	c := &claimCutter{}
	c.dsn = wireProxy(t, dsn, func(client, server net.Conn) (toServer, toClient func()) {
		var held atomic.Bool // this connection's claim waits for its Sync
		toServer = func() {
			r := bufio.NewReader(client)
			// The first message (a startup, SSL or cancel request) has no
			// type byte.
			var n uint32
			if binary.Read(r, binary.BigEndian, &n) != nil {
				return
			}
			first := binary.BigEndian.AppendUint32(make([]byte, 0, n), n)[:n]
			if _, err := io.ReadFull(r, first[4:]); err != nil {
				return
			}
			if _, err := server.Write(first); err != nil {
				return
			}
			statements := map[string]string{}
			claiming := false
			for {
				msg, err := readMessage(r)
				if err != nil {
					return
				}
				switch body := msg[5:]; msg[0] {
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
						msg = []byte{'H', 0, 0, 0, 4} // Flush: the rows, no commit
					}
					claiming = false
				}
				if _, err := server.Write(msg); err != nil {
					return
				}
			}
		}
		toClient = func() {
			r := bufio.NewReader(server)
			for {
				msg, err := readMessage(r)
				if err != nil {
					return
				}
				if held.Load() && msg[0] == 'C' { // the UPDATE is done, uncommitted
					server.Close()
					rolledBack()
					c.cut.Store(true)
					return
				}
				if _, err := client.Write(msg); err != nil {
					return
				}
			}
		}
		return toServer, toClient
	})
	return c
}

// readMessage reads one message of the protocol after the first: a type
// byte, a length that counts itself, the rest.
func readMessage(r *bufio.Reader) ([]byte, error) {
	head := make([]byte, 5)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	msg := make([]byte, 5, 1+binary.BigEndian.Uint32(head[1:]))
	copy(msg, head)
	_, err := io.ReadFull(r, msg[5:cap(msg)])
	return msg[:cap(msg)], err
}
