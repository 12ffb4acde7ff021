package main

import (
	"maps"
	"strings"
	"testing"
	"time"
)

// A webhook deleted stops receiving deliveries at once: those queued in
// memory behind its slow target are dropped, on the node that deleted it
// and, on PostgreSQL, on another node that holds some too. A request in
// flight at the delete may finish.
func TestDeleteStopsDeliveries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		tg := newTarget(t)
		q := queueBehindSlowTarget(t, dbURL, tg, map[string]any{"target_url": tg.URL + "/slow"})
		if st, _, body := q.o.api.do("DELETE", q.o.path("/webhook/"+q.id), nil, nil); st != 204 {
			t.Fatalf("delete: %d %s", st, body)
		}
		deleted := time.Now()
		before := q.before(t, "/slow", "delete")
		// Queued deliveries would start one every 500 ms per node.
		noRequestAfter(t, tg, "/slow", "the delete", deleted, before)
		t.Logf("%d nodes: %d requests before the delete, %d after it (in flight at the delete)", q.nodes, before, len(tg.got("/slow"))-before)
	})
}

// slowQueue is a webhook whose deliveries wait in the dispatchers'
// memory, queued behind its slow target (see queueBehindSlowTarget).
type slowQueue struct {
	tg     *target
	nodes  int
	o      *org
	id     string
	fields map[string]any  // the webhook as created
	events map[string]bool // the ids of the events accepted
}

// perNode is how many events each node of a slowQueue accepts: one
// delivery in flight, the rest queued behind it.
const perNode = 15

// queueBehindSlowTarget starts the nodes (two on PostgreSQL, where the
// other learns of a change by NOTIFY) with one request in flight per
// webhook, creates a STANDARD webhook with fields (target_url among
// them) to tg, whose answers take 500 ms, and sends events to the nodes
// in turn: each leases at intake the deliveries of those it accepts. It
// returns once each node's first request reached tg.
func queueBehindSlowTarget(t *testing.T, dbURL string, tg *target, fields map[string]any) *slowQueue {
	t.Helper()
	q := &slowQueue{tg: tg, nodes: 1, fields: map[string]any{"kind": "STANDARD", "events": []string{"DEPLOYMENT_STARTED"}}, events: map[string]bool{}}
	if strings.HasPrefix(dbURL, "postgres") {
		q.nodes = 2
	}
	maps.Copy(q.fields, fields)
	tg.delay = 500 * time.Millisecond
	var servers []*server
	for range q.nodes {
		servers = append(servers, startServer(t, deliveryEnv(dbURL, map[string]string{"HOOKD_MAX_INFLIGHT_PER_WEBHOOK": "1"})))
	}
	q.o = newOrg(t, servers[0], dbURL)
	q.id = q.o.createWebhook(q.fields)
	for i := range perNode * q.nodes {
		var a accepted
		c := call{t: t, base: servers[i%q.nodes].URL, auth: q.o.api.auth}
		if st, _, body := c.do("POST", q.o.path("/deployment-event"), deploymentEvent("DEPLOYMENT_STARTED", "p", "PRODUCTION"), &a); st != 202 {
			t.Fatalf("emit: %d %s", st, body)
		}
		q.events[a.ID] = true
	}
	tg.waitCount(t, strings.TrimPrefix(q.fields["target_url"].(string), tg.URL), q.nodes, 10*time.Second)
	return q
}

// before is how many requests reached path by the time of what, the
// change the test makes; it fails t if too many did for the test to tell
// whether the queued ones went out after it.
func (q *slowQueue) before(t *testing.T, path, what string) int {
	t.Helper()
	n := len(q.tg.got(path))
	if n > q.nodes*perNode/2 {
		t.Fatalf("%d of %d deliveries sent before the %s: too few were queued for the test to tell", n, q.nodes*perNode, what)
	}
	return n
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
