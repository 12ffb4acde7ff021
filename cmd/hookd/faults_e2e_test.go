package main

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// faultEnv is crashEnv with a delivery timeout of 1s: leases of 21s.
func faultEnv(dbURL string, extra map[string]string) map[string]string {
	env := crashEnv(dbURL)
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// checkDeliveryLog waits until every delivery has succeeded (what nodes
// still held is recorded, or sent again once its lease ends), then fails
// t if the delivery log holds a false attempt: two attempts with one
// number for one delivery, or a delivery whose attempt count is not the
// number of attempts logged.
func checkDeliveryLog(t *testing.T, dbURL string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	waitFor(t, 60*time.Second, "every delivery to succeed", func() bool {
		var unfinished int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status <> 'succeeded'`).Scan(&unfinished); err != nil {
			t.Fatal(err)
		}
		return unfinished == 0
	})
	var twice, miscounted, attempts, deliveries int
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM (SELECT 1 FROM attempts GROUP BY delivery_id, number HAVING count(*) > 1) x),
		(SELECT count(*) FROM deliveries d WHERE d.attempts <> (SELECT count(*) FROM attempts a WHERE a.delivery_id = d.id)),
		(SELECT count(*) FROM attempts), (SELECT count(*) FROM deliveries)`).Scan(&twice, &miscounted, &attempts, &deliveries)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("delivery log: %d attempts of %d deliveries", attempts, deliveries)
	if twice+miscounted > 0 {
		t.Errorf("delivery log: %d attempt numbers logged twice, %d deliveries whose count disagrees with the log", twice, miscounted)
	}
}

// maxCopies is the most times one event reached the target.
func maxCopies(tg *target) (most, dups int) {
	seen := map[string]int{}
	for _, r := range tg.got("/crash") {
		seen[r.payloadID()]++
	}
	for _, n := range seen {
		most = max(most, n)
		dups += n - 1
	}
	return most, dups
}

// TestPausedNode pauses one of two nodes (SIGSTOP) under load for longer
// than its leases, so the other takes its deliveries over, then resumes
// it: what the paused node sent before is sent at most once more, its
// late outcomes are dropped (the delivery log shows no false attempt),
// and nothing accepted is lost.
func TestPausedNode(t *testing.T) {
	dbURL := pgtest.URL(t)
	tg := newTarget(t)
	// Slow enough that the paused node has requests in flight, which time
	// out when it resumes; the load is one node can carry alone, so the
	// other has room to take the paused node's deliveries over.
	tg.delay = 500 * time.Millisecond
	env := faultEnv(dbURL, map[string]string{"HOOKD_MAX_INFLIGHT_PER_WEBHOOK": "64"})
	a := startServer(t, env)
	b := startServer(t, env)
	t.Cleanup(func() { a.cmd.Process.Signal(syscall.SIGCONT) })
	o := newOrg(t, a, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/crash", "events": []string{"DEPLOYMENT_STARTED"}})

	var mu sync.Mutex
	urls := []string{a.URL, b.URL}
	stop := make(chan struct{})
	var n atomic.Int64
	done := pour(t, o, func() []string { mu.Lock(); defer mu.Unlock(); return urls }, 100*time.Millisecond, stop, &n)
	waitFor(t, 60*time.Second, "100 accepted events", func() bool { return n.Load() >= 100 && len(tg.got("/crash")) > 50 })
	mu.Lock()
	urls = []string{b.URL}
	mu.Unlock()
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Past the 21 s lease, and past B's next poll.
	time.Sleep(25 * time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumedAt := n.Load()
	waitFor(t, 60*time.Second, "more events after the resume", func() bool { return n.Load() >= resumedAt+50 })
	close(stop)
	ids := done()
	waitAllDelivered(t, tg, ids, 90*time.Second)
	// The test proves something only if the paused node's leases were
	// taken over while it slept.
	waitFor(t, 30*time.Second, "the paused node to notice its leases were lost", func() bool {
		l := a.logs.String()
		return strings.Contains(l, "dropped outcomes of attempts whose lease was lost") || strings.Contains(l, "lost the leases of deliveries held")
	})
	checkDeliveryLog(t, dbURL)
	most, dups := maxCopies(tg)
	t.Logf("paused node: %d events accepted, all delivered; %d duplicate deliveries, at most %d copies of one", len(ids), dups, most)
	if most > 2 {
		t.Errorf("an event reached the target %d times: a paused node's late outcome reopened a delivery", most)
	}
}

// TestSkewedClock runs two nodes, one whose clock is a minute ahead, while
// the other has deliveries in flight to a slow target: the skewed node
// must not take over leases the other still holds (on PostgreSQL, leases
// are judged by the database's clock), so no event arrives twice. Then
// the skewed node takes events itself and is stopped with deliveries
// still queued: it gives them back due now, and the other node sends
// them at once, not a minute later.
func TestSkewedClock(t *testing.T) {
	dbURL := pgtest.URL(t)
	tg := newTarget(t)
	tg.delay = 2 * time.Second
	env := faultEnv(dbURL, map[string]string{"HOOKD_DELIVERY_TIMEOUT": "5s", "HOOKD_MAX_INFLIGHT_PER_WEBHOOK": "64"})
	a := startServer(t, env)
	// The skewed node runs in this process: its clock is newApp's to set.
	skewed := startApp(t, env, func() time.Time { return time.Now().Add(time.Minute) })
	o := newOrg(t, a, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/crash", "events": []string{"DEPLOYMENT_STARTED"}})

	stop := make(chan struct{})
	var n atomic.Int64
	// Into the node with the right clock alone: it leases them at intake
	// and holds them for 2 s each, while the skewed node polls the queue.
	done := pour(t, o, func() []string { return []string{a.URL} }, 50*time.Millisecond, stop, &n)
	waitFor(t, 60*time.Second, "200 accepted events", func() bool { return n.Load() >= 200 })
	close(stop)
	ids := done()
	waitAllDelivered(t, tg, ids, 60*time.Second)
	most, dups := maxCopies(tg)
	t.Logf("skewed clock: %d events accepted, all delivered; %d duplicate deliveries", len(ids), dups)
	if dups > 0 {
		t.Errorf("%d events arrived twice (one %d times) with no node down: a skewed clock took over live leases", dups, most)
	}

	// Into the skewed node alone: it leases them at intake, sends 64 at
	// a time for 2 s each, and queues the rest, which its stop gives back.
	stop = make(chan struct{})
	n.Store(0)
	done = pour(t, o, func() []string { return []string{skewed.URL} }, 10*time.Millisecond, stop, &n)
	waitFor(t, 30*time.Second, "200 events accepted by the skewed node", func() bool { return n.Load() >= 200 })
	close(stop)
	ids = done()
	if err := skewed.stop(t); err != nil {
		t.Fatal(err)
	}
	// The test proves something only if the stop gave deliveries back.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var unsent int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status <> 'succeeded'`).Scan(&unsent); err != nil {
		t.Fatal(err)
	}
	if unsent == 0 {
		t.Fatal("the skewed node sent everything before its stop: nothing was given back")
	}
	t.Logf("the skewed node stopped with %d deliveries not yet sent", unsent)
	// Its leases would end 25 s after intake, and a release due on its
	// clock a minute after the others': well before either, the other node
	// has sent them all.
	waitAllDelivered(t, tg, ids, 15*time.Second)
}
