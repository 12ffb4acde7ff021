package main

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/api"
	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// faultProxy is a TCP proxy on loopback that can slow every chunk down,
// reset the connections through it, cut them off for a while, or stall
// them: keep them open but forward nothing, as a network that drops
// packets without a reset does.
type faultProxy struct {
	ln       net.Listener
	upstream string
	latency  atomic.Int64 // nanoseconds added before each chunk
	mu       sync.Mutex
	cut      bool
	stalled  chan struct{} // not nil during a stall; closed when it ends
	conns    map[net.Conn]bool
}

func newFaultProxy(t *testing.T, upstream string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, upstream: upstream, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.heal(); p.reset() })
	go p.serve()
	return p
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *faultProxy) pipe(client net.Conn) {
	// Accepted during a stall: the client's bytes go nowhere until it
	// ends, as if its packets were dropped.
	p.flowing()
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns[client], p.conns[server] = true, true
	p.mu.Unlock()
	copy := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.flowing()
				time.Sleep(time.Duration(p.latency.Load()))
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go copy(server, client)
	copy(client, server)
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// reset closes every connection through the proxy (RST where the kernel
// has unread data).
func (p *faultProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// partition cuts every connection and refuses new ones until heal.
func (p *faultProxy) partition() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.reset()
}

// stall stops forwarding bytes, both ways, on every connection, old and
// new, without closing any, until heal: what was held back then goes on
// as TCP's retransmissions would.
func (p *faultProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled == nil {
		p.stalled = make(chan struct{})
	}
}

// flowing waits for the stall to end, if there is one.
func (p *faultProxy) flowing() {
	p.mu.Lock()
	stalled := p.stalled
	p.mu.Unlock()
	if stalled != nil {
		<-stalled
	}
}

// heal ends a partition or a stall.
func (p *faultProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
}

// through returns dbURL with its host replaced by the proxy's.
func (p *faultProxy) through(t *testing.T, dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// TestDatabaseFaults runs two nodes under load, one of them reaching
// PostgreSQL through a proxy that adds latency, resets connections, then
// cuts the node off for longer than a lease: no accepted event is lost,
// the cut-off node's deliveries are taken over, and the duplicates this
// causes are counted.
func TestDatabaseFaults(t *testing.T) {
	dbURL := pgtest.URL(t)
	u, _ := url.Parse(dbURL)
	proxy := newFaultProxy(t, u.Host)
	tg := newTarget(t)
	tg.delay = 200 * time.Millisecond
	a := startServer(t, faultEnv(dbURL, map[string]string{"HOOKD_MAX_INFLIGHT_PER_WEBHOOK": "32"}))
	b := startServer(t, faultEnv(proxy.through(t, dbURL), map[string]string{"HOOKD_MAX_INFLIGHT_PER_WEBHOOK": "32"}))
	o := newOrg(t, a, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/crash", "events": []string{"DEPLOYMENT_STARTED"}})

	stop := make(chan struct{})
	var n atomic.Int64
	done := pour(t, o, func() []string { return []string{a.URL, b.URL} }, 100*time.Millisecond, stop, &n)
	waitFor(t, 60*time.Second, "100 accepted events", func() bool { return n.Load() >= 100 })

	proxy.latency.Store(int64(20 * time.Millisecond))
	mark := n.Load()
	waitFor(t, 60*time.Second, "events with latency", func() bool { return n.Load() >= mark+100 })
	proxy.latency.Store(0)
	for range 3 {
		proxy.reset()
		mark = n.Load()
		waitFor(t, 60*time.Second, "events after a reset", func() bool { return n.Load() >= mark+30 })
	}
	received := len(tg.got("/crash"))
	proxy.partition()
	time.Sleep(25 * time.Second) // past the 21 s lease
	proxy.heal()
	if len(tg.got("/crash")) <= received {
		t.Fatal("nothing was delivered while one node was cut off")
	}
	mark = n.Load()
	waitFor(t, 60*time.Second, "events after the partition healed", func() bool { return n.Load() >= mark+100 })
	close(stop)
	ids := done()
	waitAllDelivered(t, tg, ids, 90*time.Second)
	checkDeliveryLog(t, dbURL)
	most, dups := maxCopies(tg)
	t.Logf("latency, resets and a 25 s partition of one node: %d events accepted, all delivered; %d duplicate deliveries (%.2f%%), at most %d copies of one",
		len(ids), dups, 100*float64(dups)/float64(len(ids)), most)
}

// TestDatabaseLost cuts a node's connections to PostgreSQL, as a restart
// of the server does, while events pour in, then keeps it cut off for a
// while: intake answers 202 or 503 with Retry-After, never 500 (a sender
// told to retry after Retry-After, with its Idempotency-Key, must be told
// so), without an ERROR line per refused event, and every 202 is
// delivered once the database is back.
func TestDatabaseLost(t *testing.T) {
	dbURL := pgtest.URL(t)
	u, _ := url.Parse(dbURL)
	proxy := newFaultProxy(t, u.Host)
	tg := newTarget(t)
	srv := startServer(t, faultEnv(proxy.through(t, dbURL), map[string]string{"HOOKD_LOG_LEVEL": "info"}))
	o := newOrg(t, srv, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/crash", "events": []string{"DEPLOYMENT_STARTED"}})

	var (
		mu       sync.Mutex
		ids      = map[string]bool{}
		statuses = map[int]int{}
		bad      []string
	)
	post := func() {
		var a accepted
		st, h, body, err := o.api.doQuiet("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "lost", "PRODUCTION"), &a)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		statuses[st]++
		switch {
		case st == 202:
			ids[a.ID] = true
		case st == 503 && h.Get("Retry-After") != "":
		default:
			if len(bad) < 5 {
				bad = append(bad, fmt.Sprintf("%d %s (Retry-After %q)", st, body, h.Get("Retry-After")))
			}
		}
	}
	// Concurrent senders, so the cuts fall on batches of several events.
	burst := func(n int) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range n {
					post()
				}
			})
		}
		wg.Wait()
	}
	burst(10)
	for range 5 {
		var wg sync.WaitGroup
		wg.Go(func() { burst(20) })
		time.Sleep(20 * time.Millisecond) // into the burst: cut what is in flight
		proxy.reset()
		wg.Wait()
	}
	errorsBefore := strings.Count(srv.logs.String(), "level=ERROR")
	proxy.partition()
	burst(25)
	if n := strings.Count(srv.logs.String(), "level=ERROR") - errorsBefore; n > 20 {
		t.Errorf("%d ERROR lines for 200 events refused while the database was unreachable: the log floods", n)
	}
	proxy.heal()
	waitFor(t, 60*time.Second, "intake to accept events again", func() bool {
		var a accepted
		st, _, _, _ := o.api.doQuiet("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "lost", "PRODUCTION"), &a)
		if st == 202 {
			mu.Lock()
			ids[a.ID] = true
			mu.Unlock()
		}
		return st == 202
	})
	burst(5)
	mu.Lock()
	t.Logf("answers: %v", statuses)
	if len(bad) > 0 {
		t.Errorf("intake answered neither 202 nor 503 with Retry-After while the database was lost: %v", bad)
	}
	if statuses[503] == 0 {
		t.Error("no event was refused while the database was cut off: the test proves nothing")
	}
	accepted := maps.Clone(ids)
	mu.Unlock()
	dups := waitAllDelivered(t, tg, accepted, 90*time.Second)
	t.Logf("%d events accepted, all delivered; %d duplicates", len(accepted), dups)
}

// TestDatabaseStalled stalls a node's connections to PostgreSQL while
// events are posted: they stay open but nothing gets through and nothing
// is reset, as behind a firewall that drops packets or with a host that
// died. Every request is answered within intake's bound (10 s), 202 if
// its commit landed before, 503 with Retry-After otherwise, and the
// outage is logged once with its cause, rather than senders timing out
// with no answer. When the network is back the node accepts events again
// by itself, and every event that got a 202 is delivered exactly once.
func TestDatabaseStalled(t *testing.T) {
	const (
		bound         = api.IntakeTimeout
		clientTimeout = 15 * time.Second // a sender's: above the bound
	)
	dbURL := pgtest.URL(t)
	u, _ := url.Parse(dbURL)
	proxy := newFaultProxy(t, u.Host)
	tg := newTarget(t)
	srv := startServer(t, faultEnv(proxy.through(t, dbURL), map[string]string{"HOOKD_LOG_LEVEL": "info"}))
	t.Cleanup(proxy.heal) // before the server stops, if the test ends mid-stall
	o := newOrg(t, srv, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/crash", "events": []string{"DEPLOYMENT_STARTED"}})
	sender := o.api
	sender.timeout = clientTimeout

	var (
		mu      sync.Mutex
		ids     = map[string]bool{}
		answers = map[string]int{} // by status; "none" for no answer
		bad     []string
		slowest time.Duration
	)
	post := func() {
		var a accepted
		start := time.Now()
		st, h, body, err := sender.doQuiet("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "stall", "PRODUCTION"), &a)
		took := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			answers["none"]++
			return
		}
		answers[strconv.Itoa(st)]++
		slowest = max(slowest, took)
		switch {
		case st == 202:
			ids[a.ID] = true
		case st == 503 && h.Get("Retry-After") != "":
		default:
			bad = append(bad, fmt.Sprintf("%d %s (Retry-After %q)", st, body, h.Get("Retry-After")))
		}
	}
	burst := func(senders, each int) {
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() {
				for range each {
					post()
				}
			})
		}
		wg.Wait()
	}
	burst(8, 5)
	if answers["202"] != 40 {
		t.Fatalf("before the stall: %v, want 40 202s", answers)
	}
	clear(answers)

	// A burst under way when the stall begins, and a second wave 3 s
	// into it, which queues behind commits, lookups and new connections
	// all waiting on silent connections.
	var wg sync.WaitGroup
	wg.Go(func() { burst(8, 1) })
	proxy.stall()
	stalledAt := time.Now()
	time.Sleep(3 * time.Second) // the load's schedule, not a wait for a condition
	burst(8, 1)
	wg.Wait()
	stalled := time.Since(stalledAt)
	proxy.heal()

	mu.Lock()
	t.Logf("answers during a %s stall, with a %s client timeout: %v; slowest answer %s", stalled.Round(time.Millisecond), clientTimeout, answers, slowest.Round(time.Millisecond))
	if n := answers["none"]; n > 0 {
		t.Errorf("%d of 16 requests got no answer within %s while the database was stalled: their senders are not told to retry", n, clientTimeout)
	}
	if len(bad) > 0 {
		t.Errorf("intake answered neither 202 nor 503 with Retry-After while the database was stalled: %v", bad)
	}
	if answers["503"] == 0 {
		t.Error("no request was refused during the stall: the test proves nothing")
	}
	if slowest > bound+2*time.Second {
		t.Errorf("the slowest answer took %s, past intake's %s bound", slowest, bound)
	}
	mu.Unlock()
	logs := srv.logs.String()
	if n := strings.Count(logs, "intake refuses events"); n != 1 || !strings.Contains(logs, "no answer from the database") {
		t.Errorf("the outage was logged %d times (want once, with its cause):\n%s", n, logs)
	}

	waitFor(t, 60*time.Second, "intake to accept events again", func() bool {
		post()
		mu.Lock()
		defer mu.Unlock()
		return answers["202"] > 0
	})
	waitFor(t, 10*time.Second, "the end of the outage in the log", func() bool {
		return strings.Contains(srv.logs.String(), "intake accepts events again")
	})
	mu.Lock()
	clear(answers)
	mu.Unlock()
	burst(8, 5)
	if answers["202"] != 40 {
		t.Errorf("after the stall: %v, want 40 202s", answers)
	}

	mu.Lock()
	accepted := maps.Clone(ids)
	mu.Unlock()
	waitAllDelivered(t, tg, accepted, 90*time.Second)
	checkDeliveryLog(t, dbURL) // every delivery has succeeded: nothing more is sent
	seen := map[string]int{}
	for _, r := range tg.got("/crash") {
		seen[r.payloadID()]++
	}
	var twice []string
	for id := range accepted {
		if seen[id] != 1 {
			twice = append(twice, fmt.Sprintf("%s ×%d", id, seen[id]))
		}
	}
	if len(twice) > 0 {
		t.Errorf("events accepted but not delivered exactly once: %v", twice)
	}
	// A refused event whose COMMIT went out before its deadline was
	// stored all the same (the ambiguous case): delivered once too.
	t.Logf("%d events accepted, each delivered once; %d refused during the stall but committed, delivered too", len(accepted), len(seen)-len(accepted))
}
