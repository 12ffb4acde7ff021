package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// crashEnv keeps leases short so a restarted node takes over a killed
// one's deliveries within the test.
func crashEnv(dbURL string) map[string]string {
	return deliveryEnv(dbURL, map[string]string{"HOOKD_DELIVERY_TIMEOUT": "1s", "HOOKD_RETRY_SCHEDULE": "0s,100ms,200ms,500ms,1s,1s,1s,1s,1s,1s"})
}

// pour sends events to the servers (round robin) from several clients,
// each waiting pace between two (0: none), until stop is closed, and
// returns the ids that got a 202.
func pour(t *testing.T, o *org, urls func() []string, pace time.Duration, stop <-chan struct{}, count *atomic.Int64) func() map[string]bool {
	var mu sync.Mutex
	ids := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(pace):
				}
				us := urls()
				c := call{t: t, base: us[(w+i)%len(us)], auth: o.api.auth}
				var a accepted
				st, _, _, _ := c.doQuiet("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "crash", "PRODUCTION"), &a)
				if st == 202 {
					mu.Lock()
					ids[a.ID] = true
					mu.Unlock()
					count.Add(1)
				}
			}
		}()
	}
	return func() map[string]bool {
		wg.Wait()
		return ids
	}
}

// waitAllDelivered waits until every accepted id reached the target and
// returns how many extra copies arrived.
func waitAllDelivered(t *testing.T, tg *target, ids map[string]bool, d time.Duration) (duplicates int) {
	t.Helper()
	var missing int
	waitFor(t, d, "every accepted event to arrive", func() bool {
		seen := map[string]int{}
		for _, r := range tg.got("/crash") {
			seen[r.payloadID()]++
		}
		missing, duplicates = 0, 0
		for id := range ids {
			if seen[id] == 0 {
				missing++
			}
		}
		for _, n := range seen {
			duplicates += n - 1
		}
		return missing == 0
	})
	return duplicates
}

// TestCrashSafety kills hookd while events pour in and deliveries are in
// flight, restarts it on the same database, and checks every event that
// got a 202 arrives.
func TestCrashSafety(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, dbURL string) {
				tg := newTarget(t)
				// Slow enough that deliveries queue up and are in flight
				// when the process dies: 8 at a time (the default
				// HOOKD_MAX_INFLIGHT_PER_WEBHOOK), 16 a second, which
				// intake outpaces even in a race-detector build on a
				// loaded machine (at 50 ms it once did not, and the test
				// had no backlog to prove anything with). Quick again
				// after the restart, for the drain.
				tg.delay = 500 * time.Millisecond
				env := crashEnv(dbURL)
				if sig == syscall.SIGTERM {
					// A graceful stop lets requests in flight finish for
					// min(HOOKD_DELIVERY_TIMEOUT, 12 s); one cut off then is
					// sent again, a duplicate the target saw arrive. At 1 s
					// a loaded machine made a 500 ms answer outlast it
					// (3 duplicates, CI beside six other test runs); 5 s
					// leaves a margin, and a graceful stop needs no lease
					// to run out.
					env["HOOKD_DELIVERY_TIMEOUT"] = "5s"
				}
				srv := startServer(t, env)
				o := newOrg(t, srv, dbURL)
				o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/crash", "events": []string{"DEPLOYMENT_STARTED"}})

				var mu sync.Mutex
				urls := []string{srv.URL}
				stop := make(chan struct{})
				var n atomic.Int64
				done := pour(t, o, func() []string { mu.Lock(); defer mu.Unlock(); return urls }, 0, stop, &n)
				waitFor(t, 60*time.Second, "300 accepted events, 50 of them not yet delivered", func() bool {
					got := int64(len(tg.got("/crash")))
					return n.Load() >= 300 && got > 50 && n.Load()-got >= 50
				})
				srv.Stop(sig)
				killedAt := n.Load()
				if got := len(tg.got("/crash")); int64(got) >= killedAt {
					t.Fatalf("no backlog when the server stopped (%d received, %d accepted): the test proves nothing", got, killedAt)
				}
				time.Sleep(100 * time.Millisecond) // let clients see the server gone
				restarted := startServer(t, env)
				tg.mu.Lock()
				tg.delay = 20 * time.Millisecond
				tg.mu.Unlock()
				mu.Lock()
				urls = []string{restarted.URL}
				mu.Unlock()
				waitFor(t, 60*time.Second, "more events after the restart", func() bool { return n.Load() >= killedAt+100 })
				close(stop)
				ids := done()
				dups := waitAllDelivered(t, tg, ids, 90*time.Second)
				t.Logf("%s: %d events accepted, all delivered; %d duplicate deliveries", sig, len(ids), dups)
				if sig == syscall.SIGTERM && dups > 0 {
					t.Errorf("a graceful stop caused %d duplicates", dups)
				}
			})
		})
	}
}

// TestTwoNodes runs two nodes on one PostgreSQL database, kills one
// mid-run, and checks nothing is lost.
func TestTwoNodes(t *testing.T) {
	dbURL := backends()[1].url(t)
	tg := newTarget(t)
	tg.delay = 50 * time.Millisecond
	a := startServer(t, crashEnv(dbURL))
	b := startServer(t, crashEnv(dbURL))
	o := newOrg(t, a, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/crash", "events": []string{"DEPLOYMENT_STARTED"}})

	var mu sync.Mutex
	urls := []string{a.URL, b.URL}
	stop := make(chan struct{})
	var n atomic.Int64
	done := pour(t, o, func() []string { mu.Lock(); defer mu.Unlock(); return urls }, 0, stop, &n)
	waitFor(t, 60*time.Second, "300 accepted events", func() bool { return n.Load() >= 300 && len(tg.got("/crash")) > 50 })
	a.Stop(syscall.SIGKILL)
	mu.Lock()
	urls = []string{b.URL}
	mu.Unlock()
	killedAt := n.Load()
	waitFor(t, 60*time.Second, "more events after the kill", func() bool { return n.Load() >= killedAt+200 })
	close(stop)
	ids := done()
	dups := waitAllDelivered(t, tg, ids, 90*time.Second)
	t.Logf("two nodes, one killed: %d events accepted, all delivered; %d duplicate deliveries", len(ids), dups)
}

// TestKilledServersLeasesGivenBack kills a SQLite server while a
// delivery's request is in flight, and restarts it on the same file: the
// new server, the file's one server (it holds the server lock), gives back
// what the killed one left leased and sends it again at once, where it
// used to wait for the lease to end (HOOKD_DELIVERY_TIMEOUT + 20 s at
// most, 50 s here).
func TestKilledServersLeasesGivenBack(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	tg := newTarget(t)
	tg.setHang("/held")
	env := deliveryEnv(dbURL, nil)
	srv := startServer(t, env)
	o := newOrg(t, srv, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/held", "events": []string{"DEPLOYMENT_STARTED"}})
	ev := o.emit(deploymentEvent("DEPLOYMENT_STARTED", "held", "PRODUCTION"))
	waitFor(t, 10*time.Second, "the delivery's request to be in flight", func() bool { return len(tg.got("/held")) == 1 })
	srv.Stop(syscall.SIGKILL)
	tg.mu.Lock()
	delete(tg.hang, "/held")
	tg.mu.Unlock()

	restarted := startServer(t, env)
	waitFor(t, 10*time.Second, "the killed server's delivery to be sent again", func() bool { return len(tg.got("/held")) == 2 })
	if got := tg.got("/held")[1].payloadID(); got != ev.ID {
		t.Fatalf("the request sent again carries event %s, want %s", got, ev.ID)
	}
	if logs := restarted.logs.String(); !strings.Contains(logs, `msg="gave back the deliveries the last server left leased: they are sent again now" count=1`) {
		t.Errorf("the restarted server did not say what it gave back:\n%s", logs)
	}
}

// TestOneServerPerSQLiteFile starts a second server on the file a first
// one serves: it says which process it waits for and does not serve (two
// would each cache webhooks the other edits, and take each other's
// leases for crashed), then takes over once the first stops.
func TestOneServerPerSQLiteFile(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
	env := deliveryEnv(dbURL, nil)
	first := startServer(t, env)
	second := launchServer(t, env)
	want := fmt.Sprintf("another hookd serves this database; waiting for it to stop\" database=%s holder=\"pid %d on ", strings.TrimPrefix(dbURL, "sqlite:"), first.cmd.Process.Pid)
	waitFor(t, 30*time.Second, "the second server to say whom it waits for", func() bool { return strings.Contains(second.logs.String(), want) })
	time.Sleep(500 * time.Millisecond) // more than two of its tries for the lock
	if logs := second.logs.String(); strings.Contains(logs, "hookd serving") {
		t.Fatalf("a second server serves the file beside the first:\n%s", logs)
	}

	// One stopped while it waits exits as from a stop, not a failure.
	third := launchServer(t, env)
	waitFor(t, 30*time.Second, "a third server to wait", func() bool { return strings.Contains(third.logs.String(), want) })
	if err := third.Stop(syscall.SIGTERM); err != nil {
		t.Errorf("a server stopped while it waits for the file: %v\n%s", err, third.logs.String())
	}

	tg := newTarget(t)
	o := newOrg(t, first, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/after", "events": []string{"DEPLOYMENT_STARTED"}})
	if err := first.Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("the first server's stop: %v", err)
	}
	second.awaitServing(10 * time.Second)
	o.api.base = second.URL
	ev := o.emit(deploymentEvent("DEPLOYMENT_STARTED", "after", "PRODUCTION"))
	waitFor(t, 10*time.Second, "the second server to deliver", func() bool { return len(tg.got("/after")) == 1 })
	if got := tg.got("/after")[0].payloadID(); got != ev.ID {
		t.Fatalf("the second server delivered event %s, want %s", got, ev.ID)
	}
}
