package main

import (
	"net/http"
	"testing"
	"time"
)

// A webhook edited while its deliveries wait in memory behind its slow
// target: those not yet started go out as the webhook now is, never as it
// was, on the node that edited it and, on PostgreSQL, on another node
// that holds some too. A new URL gets them, the old one only the requests
// in flight at the edit; a disabled webhook gets nothing more. Every
// event still reaches the new URL or the old one.
func TestEditReachesQueuedDeliveries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		for _, c := range []struct {
			name string
			edit map[string]any
			// sent: whether the deliveries queued at the edit still go
			// out, to /new.
			sent bool
		}{
			{"new URL", map[string]any{"target_url": "/new"}, true},
			{"disabled", map[string]any{"enabled": false}, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				tg := newTarget(t)
				q := queueBehindSlowTarget(t, dbURL, tg, map[string]any{"target_url": tg.URL + "/old"})
				fields := q.fields
				for k, v := range c.edit {
					if k == "target_url" {
						v = tg.URL + v.(string)
					}
					fields[k] = v
				}
				if st, _, body := q.o.api.do("PUT", q.o.path("/webhook/"+q.id), fields, nil); st != 200 {
					t.Fatalf("edit: %d %s", st, body)
				}
				edited := time.Now()
				before := q.before(t, "/old", "edit")
				noRequestAfter(t, tg, "/old", "the edit", edited, before)
				if !c.sent {
					if n := len(tg.got("/new")); n > 0 {
						t.Fatalf("%d requests after the webhook was disabled", n)
					}
					return
				}
				waitFor(t, 60*time.Second, "every event at the old URL or the new one", func() bool {
					seen := map[string]bool{}
					for _, r := range append(tg.got("/old"), tg.got("/new")...) {
						seen[r.payloadID()] = true
					}
					for id := range q.events {
						if !seen[id] {
							return false
						}
					}
					return true
				})
				t.Logf("%d nodes: %d requests to the old URL, %d to the new one", q.nodes, len(tg.got("/old")), len(tg.got("/new")))
			})
		}
	})
}

// A webhook hookd disables itself while its deliveries wait in memory
// behind its slow target (the target now answers 410 Gone): those not yet
// started are never sent, on the node whose outcome disabled it and, on
// PostgreSQL, on another node that holds some too, as after a person's
// disable: each fails unsent.
func TestGoneReachesQueuedDeliveries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		tg := newTarget(t)
		q := queueBehindSlowTarget(t, dbURL, tg, map[string]any{"target_url": tg.URL + "/gone"})
		// The requests in flight got their answer (200) as they arrived:
		// each node's next one is answered 410, and disables the webhook.
		tg.setAnswer(func(string, int) int { return http.StatusGone })
		ok := len(tg.got("/gone"))
		var disabled time.Time
		waitFor(t, 20*time.Second, "the 410 to disable the webhook", func() bool {
			var w webhookJSON
			q.o.api.do("GET", q.o.path("/webhook/"+q.id), nil, &w)
			disabled = time.Now()
			return !w.Enabled
		})
		before := q.before(t, "/gone", "disable")
		noRequestAfter(t, tg, "/gone", "the disable", disabled, before)
		// Those given back are claimed again, disabled, and fail unsent
		// (the first request of each node, answered 200, succeeded).
		waitFor(t, 30*time.Second, "every delivery to end", func() bool {
			var page struct{ Results []struct{ Status string } }
			q.o.api.do("GET", q.o.path("/webhook/"+q.id+"/delivery?limit=100"), nil, &page)
			for _, d := range page.Results {
				if d.Status != "failed" && d.Status != "succeeded" {
					return false
				}
			}
			return len(page.Results) == len(q.events)
		})
		t.Logf("%d nodes: %d of %d deliveries sent: %d answered 200, %d after them until the disable, %d after it",
			q.nodes, len(tg.got("/gone")), len(q.events), ok, before-ok, len(tg.got("/gone"))-before)
	})
}
