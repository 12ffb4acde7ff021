package main

import (
	"testing"
	"time"
)

// A webhook deleted stops receiving deliveries at once: those queued in
// memory behind its slow target are dropped, on the node that deleted it
// and, on PostgreSQL, on another node that holds some too. A request in
// flight at the delete may finish.
func TestDeleteStopsDeliveries(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			dbURL := b.url(t)
			nodes := 1
			if b.name == "postgres" {
				nodes = 2 // the other node learns of the delete by NOTIFY
			}
			tg := newTarget(t)
			tg.delay = 500 * time.Millisecond
			var servers []*server
			for range nodes {
				servers = append(servers, startServer(t, deliveryEnv(dbURL, map[string]string{"HOOKD_MAX_INFLIGHT_PER_WEBHOOK": "1"})))
			}
			o := newOrg(t, servers[0], dbURL)
			id := o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/slow", "events": []string{"DEPLOYMENT_STARTED"}})

			// Each node leases at intake the deliveries of the events it
			// accepts: one in flight, the rest queued behind it.
			const perNode = 15
			for i := range perNode * nodes {
				c := call{t: t, base: servers[i%nodes].URL, auth: o.api.auth}
				if st, _, body := c.do("POST", o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "p", "PRODUCTION"), nil); st != 202 {
					t.Fatalf("emit: %d %s", st, body)
				}
			}
			tg.waitCount(t, "/slow", nodes, 10*time.Second)

			if st, _, body := o.api.do("DELETE", o.path("/webhook/"+id), nil, nil); st != 204 {
				t.Fatalf("delete: %d %s", st, body)
			}
			deleted := time.Now()
			before := len(tg.got("/slow"))
			if before > nodes*perNode/2 {
				t.Fatalf("%d of %d deliveries sent before the delete: too few were queued for the test to tell", before, nodes*perNode)
			}
			// Queued deliveries would start one every 500 ms per node.
			noRequestAfter(t, tg, "/slow", "the delete", deleted, before)
			t.Logf("%d nodes: %d requests before the delete, %d after it (in flight at the delete)", nodes, before, len(tg.got("/slow"))-before)
		})
	}
}

// noRequestAfter fails t if a request to path starts more than a second
// after what happened at at (before requests came until then), watching
// for 4 s: room for several of the queued deliveries a test holds behind
// its slow target, which start one every 500 ms.
func noRequestAfter(t *testing.T, tg *target, path, what string, at time.Time, before int) {
	t.Helper()
	const bound = time.Second
	for end := at.Add(4 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, r := range tg.got(path) {
			if late := r.At.Sub(at); late > bound {
				t.Fatalf("a request to %s started %v after %s returned (%d requests before it, %d after)",
					path, late.Round(time.Millisecond), what, before, len(tg.got(path))-before)
			}
		}
	}
}
