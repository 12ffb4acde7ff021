package main

import (
	"strings"
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
		nodes := 1
		if strings.HasPrefix(dbURL, "postgres") {
			nodes = 2 // the other node learns of the edit by NOTIFY
		}
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
				tg.delay = 500 * time.Millisecond
				var servers []*server
				for range nodes {
					servers = append(servers, startServer(t, deliveryEnv(dbURL, map[string]string{"HOOKD_MAX_INFLIGHT_PER_WEBHOOK": "1"})))
				}
				o := newOrg(t, servers[0], dbURL)
				fields := map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/old", "events": []string{"DEPLOYMENT_STARTED"}}
				id := o.createWebhook(fields)

				// Each node leases at intake the deliveries of the events
				// it accepts: one in flight, the rest queued behind it.
				const perNode = 15
				ids := map[string]bool{}
				for i := range perNode * nodes {
					var a accepted
					c := call{t: t, base: servers[i%nodes].URL, auth: o.api.auth}
					if st, _, body := c.do("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "p", "PRODUCTION"), &a); st != 202 {
						t.Fatalf("emit: %d %s", st, body)
					}
					ids[a.ID] = true
				}
				tg.waitCount(t, "/old", nodes, 10*time.Second)

				for k, v := range c.edit {
					if k == "target_url" {
						v = tg.URL + v.(string)
					}
					fields[k] = v
				}
				if st, _, body := o.api.do("PUT", o.path("/webhook/"+id), fields, nil); st != 200 {
					t.Fatalf("edit: %d %s", st, body)
				}
				edited := time.Now()
				before := len(tg.got("/old"))
				if before > nodes*perNode/2 {
					t.Fatalf("%d of %d deliveries sent before the edit: too few were queued for the test to tell", before, nodes*perNode)
				}
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
					for id := range ids {
						if !seen[id] {
							return false
						}
					}
					return true
				})
				t.Logf("%d nodes: %d requests to the old URL, %d to the new one", nodes, len(tg.got("/old")), len(tg.got("/new")))
			})
		}
	})
}
