// Package bench is `hookd bench`: a reproducible measurement of a hookd
// process from the outside, the way a user's traffic would hit it. It
// starts a local target that records every receipt, starts hookd (its own
// executable, on a fresh database per scenario) or uses a running one, and
// runs named scenarios, reporting intake and delivery rates, latency from
// send to receipt, losses, duplicates, memory and CPU per delivery.
//
// It drives hookd only through its command line and HTTP API, never by
// importing hookd's server packages, so what it measures is what users
// run. It must never be run against a production hookd: it creates
// webhooks and floods the organization it is given with events.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Scenarios lists every scenario in the order they run. raw goes first:
// it is the machine's ceiling every other rate is compared with.
var Scenarios = []string{"raw", "burst", "steady", "fanout", "slow-target", "backlog", "retry"}

// Config is one bench run.
type Config struct {
	Executable string   // the hookd binary, run as `serve` and `token create`
	Environ    []string // the environment hookd processes inherit
	Version    string   // hookd's version line, for the report

	Scenarios   []string      // names from Scenarios; empty: all
	Events      int           // burst and raw: events sent; fanout sends Events/20
	Concurrency int           // concurrent clients in closed-loop scenarios
	Rate        float64       // steady, slow-target and retry: events per second
	Duration    time.Duration // steady and slow-target; retry runs at most 10s of it
	Fanout      int           // fanout: webhooks each event matches
	Backlog     int           // backlog: deliveries queued while delivery is off
	// Wait is how long to wait for the next receipt before counting what
	// has not arrived as lost.
	Wait time.Duration

	// Backend names the database for the report ("sqlite", "postgres").
	Backend string
	// Nodes is how many hookd processes each scenario starts on its
	// database (0 means one). More than one needs a database several
	// processes can share, PostgreSQL, and a hookd the bench starts.
	Nodes int
	// NewDatabase returns the HOOKD_DATABASE_URL of a fresh, empty database
	// and a function that removes it; each scenario gets its own.
	NewDatabase func(ctx context.Context) (url string, drop func(), err error)

	// URL, Token and Organization select a hookd already running instead;
	// scenarios that need hookd configured their own way are skipped.
	URL, Token, Organization string

	PprofAddr string // forwarded to hookd as HOOKD_PPROF_ADDR
	// Callgrind, when not empty, is a directory: each hookd runs under
	// valgrind's callgrind, which writes its profiles there, and each
	// scenario reports the instructions hookd executed per delivery (see
	// callgrind.go).
	Callgrind string
	Progress  io.Writer // a line per step, for the impatient
}

// external reports whether the bench drives a hookd it did not start.
func (c *Config) external() bool { return c.URL != "" }

// Result is one scenario's figures.
type Result struct {
	Scenario string `json:"scenario"`
	Skipped  string `json:"skipped,omitempty"`
	Error    string `json:"error,omitempty"`

	Events   int `json:"events"`   // accepted by intake (202)
	Rejected int `json:"rejected"` // not accepted: intake answered anything else, or failed, after any retries
	// Retried counts intake requests answered 503 or 429 (hookd saturated,
	// or a rate limit) and sent again after their Retry-After with the
	// event's Idempotency-Key; a retried event counts once in Events.
	Retried    int `json:"retried"`
	Deliveries int `json:"deliveries"` // (webhook, event) pairs accepted by the target
	// With several nodes, in the order they started: NodeEvents is Events
	// by the node that accepted them, and NodeDeliveries the deliveries
	// each node says it made (its /metrics hookd_delivery_attempts_total
	// with outcome succeeded).
	NodeEvents     []int `json:"events_per_node,omitempty"`
	NodeDeliveries []int `json:"deliveries_per_node,omitempty"`

	IntakeRate   float64 `json:"intake_per_s"`
	DeliveryRate float64 `json:"deliveries_per_s"`
	// RawRatio and IntakeRawRatio are DeliveryRate and IntakeRate divided
	// by raw's requests per second (0 when raw did not run).
	RawRatio       float64 `json:"deliveries_per_s_raw_ratio"`
	IntakeRawRatio float64 `json:"intake_per_s_raw_ratio"`

	// Latency is from the start of the intake request (its scheduled time
	// in open-loop scenarios) to the first 2xx receipt.
	Latency       Latency `json:"latency"`
	IntakeLatency Latency `json:"intake_latency"`
	Lost          int     `json:"lost"`
	Duplicates    int     `json:"duplicates"`

	// PeakRSS and CPUPer1k are sums over the nodes (each node's own peak,
	// added up); IdleRSS is one node's.
	PeakRSS  int64   `json:"peak_rss_bytes,omitempty"`
	IdleRSS  int64   `json:"idle_rss_bytes,omitempty"`
	CPUPer1k float64 `json:"cpu_seconds_per_1k_deliveries,omitempty"`
	// BenchCPUPer1k is the bench's own CPU per 1,000 deliveries (per 1,000
	// requests in raw): its client's and its target's, which share the
	// machine with hookd. Beside CPUPer1k it tells how much of a
	// scenario's rate the load itself costs: on n cores, the rate cannot
	// pass n × 1,000 / (CPUPer1k + BenchCPUPer1k) per second.
	BenchCPUPer1k float64 `json:"bench_cpu_seconds_per_1k_deliveries,omitempty"`
	// InstructionsPerDelivery is what callgrind counted, summed over the
	// nodes, divided by Deliveries (Config.Callgrind only).
	InstructionsPerDelivery int64 `json:"instructions_per_delivery,omitempty"`
	// HookdLogLines counts what hookd logged at warn and above.
	HookdLogLines int           `json:"hookd_log_lines"`
	Wall          time.Duration `json:"wall_ns"`
	Notes         []string      `json:"notes,omitempty"`
}

// runner carries what the scenarios of one run share.
type runner struct {
	cfg     Config
	clock   *clock
	started time.Time
}

// Run runs the selected scenarios in order. A scenario that fails is
// reported with its error and the run goes on; Run returns an error only
// when ctx ends or the configuration is wrong.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Scenarios) == 0 {
		cfg.Scenarios = Scenarios
	}
	for _, s := range cfg.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (one of %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	if cfg.external() && (cfg.Token == "" || cfg.Organization == "") {
		return nil, errors.New("--url needs --token and --organization")
	}
	if !cfg.external() && cfg.NewDatabase == nil {
		return nil, errors.New("no database to run hookd on")
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	cfg.Events = max(cfg.Events, 1)
	cfg.Concurrency = max(cfg.Concurrency, 1)
	cfg.Nodes = max(cfg.Nodes, 1)
	if cfg.Nodes > 1 && cfg.external() {
		return nil, errors.New("--nodes is for hookd processes the bench starts, not with --url")
	}
	if cfg.Wait <= 0 {
		cfg.Wait = time.Minute
	}
	if cfg.Callgrind != "" && cfg.external() {
		return nil, errors.New("--callgrind runs the hookd the bench starts under valgrind, not with --url")
	}
	r := &runner{cfg: cfg, clock: newClock(), started: time.Now()}
	rep := &Report{Machine: describeMachine(cfg), Config: reportConfig(cfg), Started: time.Now().UTC()}
	for _, name := range Scenarios {
		if !slices.Contains(cfg.Scenarios, name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		fmt.Fprintf(cfg.Progress, "bench: %s...\n", name)
		start := time.Now()
		res := r.scenario(ctx, name)
		res.Wall = time.Since(start)
		rep.Results = append(rep.Results, res)
		if res.Error != "" {
			fmt.Fprintf(cfg.Progress, "bench: %s failed: %s\n", name, res.Error)
		}
	}
	rep.ratios()
	return rep, ctx.Err()
}

func (r *runner) scenario(ctx context.Context, name string) Result {
	res := Result{Scenario: name}
	needOwn := name == "backlog" || name == "retry"
	if needOwn && r.cfg.external() {
		res.Skipped = "needs a hookd started by the bench (its own HOOKD_ROLE or HOOKD_RETRY_SCHEDULE); not run with --url"
		return res
	}
	if r.cfg.Callgrind != "" {
		switch name {
		case "backlog":
			res.Skipped = "restarts hookd, which callgrind does not survive (it aborts on SIGTERM); not run with --callgrind"
			return res
		case "slow-target":
			res.Skipped = "counts the deliveries of nine webhooks of ten, but hookd's work for all ten; not run with --callgrind"
			return res
		}
	}
	var err error
	switch name {
	case "raw":
		err = r.raw(ctx, &res)
	case "burst":
		err = r.burst(ctx, &res)
	case "steady":
		err = r.steady(ctx, &res)
	case "fanout":
		err = r.fanout(ctx, &res)
	case "slow-target":
		err = r.slowTarget(ctx, &res)
	case "backlog":
		err = r.backlog(ctx, &res)
	case "retry":
		err = r.retry(ctx, &res)
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// rig is one scenario's setup: a target, cfg.Nodes hookd processes on one
// database (or the hookd at cfg.URL), and webhooks on it.
type rig struct {
	r      *runner
	target *Target
	// apis are a client per node, in the order nodes start; webhooks are
	// created through the first, and intake requests take turns.
	apis  []*api
	nodes []*process // empty when the bench did not start hookd
	dbURL string
	drop  func()
	hooks []string // ids of the webhooks the rig created
	env   map[string]string
	cpu0  time.Duration // the nodes' CPU time when the load started
	own0  time.Duration // the bench's own, then (see ownCPU)
	// zeroErr is why callgrind's counts could not be zeroed as the load
	// started (Config.Callgrind).
	zeroErr error
}

// newRig starts a target answering as o, the nodes with extra environment
// (unless external), and creates webhooks to /h/0 ... /h/(webhooks-1).
func (r *runner) newRig(ctx context.Context, o targetOptions, env map[string]string, webhooks int) (g *rig, err error) {
	g = &rig{r: r, env: env}
	defer func() {
		if err != nil {
			g.close()
			g = nil
		}
	}()
	if g.target, err = startTarget(r.clock, o); err != nil {
		return g, err
	}
	if r.cfg.external() {
		g.apis = []*api{newAPI(r.cfg.URL, r.cfg.Organization, r.cfg.Token, r.cfg.Concurrency)}
	} else {
		if g.dbURL, g.drop, err = r.cfg.NewDatabase(ctx); err != nil {
			return g, fmt.Errorf("creating a database: %w", err)
		}
		org := uuid.NewString()
		token, err := r.createToken(ctx, g.dbURL, org)
		if err != nil {
			return g, err
		}
		for range r.cfg.Nodes {
			g.apis = append(g.apis, newAPI("", org, token, r.cfg.Concurrency))
		}
		if err := g.startNodes(ctx, env); err != nil {
			return g, err
		}
	}
	for i := range webhooks {
		id, err := g.apis[0].createWebhook(ctx, fmt.Sprintf("%s/h/%d", g.target.URL, i))
		if err != nil {
			return g, err
		}
		g.hooks = append(g.hooks, id)
	}
	return g, nil
}

// startNodes starts a hookd per API client on the rig's database, all with
// env, and points each client at its node. They start together, so that
// none has a head start on a backlog.
func (g *rig) startNodes(ctx context.Context, env map[string]string) error {
	nodes := make([]*process, len(g.apis))
	errs := make([]error, len(g.apis))
	var wg sync.WaitGroup
	for i := range g.apis {
		e := env
		if i > 0 && g.r.cfg.PprofAddr != "" {
			// Only one process can listen on the pprof address: the first.
			e = maps.Clone(env)
			if e == nil {
				e = map[string]string{}
			}
			e["HOOKD_PPROF_ADDR"] = ""
		}
		wg.Go(func() { nodes[i], errs[i] = g.r.startHookd(ctx, g.dbURL, e) })
	}
	wg.Wait()
	g.nodes = nil
	for i, p := range nodes {
		if p != nil {
			g.nodes = append(g.nodes, p)
			g.apis[i].base = p.URL
		}
	}
	return errors.Join(errs...)
}

// restart stops every node, then starts them again on the same database
// with env: no node of the old setting is left when the first new one
// starts.
func (g *rig) restart(ctx context.Context, env map[string]string) error {
	for _, p := range g.nodes {
		if err := p.stop(); err != nil {
			return fmt.Errorf("stopping hookd: %w", err)
		}
	}
	return g.startNodes(ctx, env)
}

// startMeasuring notes the nodes' CPU time and the bench's before the
// load, and under callgrind starts the nodes' counts from zero.
func (g *rig) startMeasuring() {
	g.own0 = ownCPU()
	g.cpu0 = 0
	g.zeroErr = nil
	for _, p := range g.nodes {
		if s, err := readProc(p.cmd.Process.Pid); err == nil {
			g.cpu0 += s.CPU
		}
		if g.r.cfg.Callgrind != "" {
			g.zeroErr = errors.Join(g.zeroErr, p.zeroInstructions())
		}
	}
}

// finishMeasuring fills in the bench's own CPU per delivery and the
// nodes' peak memory and CPU per delivery (under callgrind, instructions
// instead), summed over the nodes, and with several nodes what each one
// did.
func (g *rig) finishMeasuring(ctx context.Context, res *Result) {
	g.r.benchCPU(res, g.own0)
	if len(g.nodes) == 0 {
		res.Notes = append(res.Notes, "memory and CPU are not measured on a hookd the bench did not start")
		return
	}
	summed := "peakRSS and cpu-s/1k are sums over the nodes"
	if g.r.cfg.Callgrind != "" {
		// First: the nodes' work for the deliveries, before the bench
		// asks them anything.
		g.countInstructions(res)
		summed = "instructions are summed over the nodes"
	}
	if len(g.nodes) > 1 {
		var err error
		if res.NodeDeliveries, err = g.nodeDeliveries(ctx, res.Deliveries); err != nil {
			res.Notes = append(res.Notes, err.Error())
		}
		res.Notes = append(res.Notes, fmt.Sprintf("%s: the %d nodes accepted %s events and delivered %s; %s",
			res.Scenario, len(g.nodes), joinInts(res.NodeEvents), joinInts(res.NodeDeliveries), summed))
	}
	if g.r.cfg.Callgrind != "" {
		return // memory and CPU are valgrind's
	}
	var cpu time.Duration
	for _, p := range g.nodes {
		s, err := readProc(p.cmd.Process.Pid)
		if err != nil {
			res.PeakRSS = 0
			res.Notes = append(res.Notes, "reading /proc: "+err.Error())
			return
		}
		res.PeakRSS += s.PeakRSS
		cpu += s.CPU
	}
	if res.Deliveries > 0 {
		res.CPUPer1k = (cpu - g.cpu0).Seconds() / float64(res.Deliveries) * 1000
	}
}

// benchCPU fills in the bench's own CPU per 1,000 deliveries since from,
// an ownCPU reading. Not under callgrind: its rates are valgrind's, and
// the bench's CPU would be mostly waiting for them.
func (r *runner) benchCPU(res *Result, from time.Duration) {
	if from < 0 || r.cfg.Callgrind != "" || res.Deliveries == 0 {
		return
	}
	if now := ownCPU(); now >= 0 {
		res.BenchCPUPer1k = (now - from).Seconds() / float64(res.Deliveries) * 1000
	}
}

// countInstructions fills in the instructions per delivery, counted by
// callgrind since startMeasuring.
func (g *rig) countInstructions(res *Result) {
	res.Notes = append(res.Notes, res.Scenario+": under callgrind: rates and latencies are valgrind's; memory and CPU are not shown")
	if g.zeroErr != nil {
		res.Notes = append(res.Notes, g.zeroErr.Error())
		return
	}
	var total int64
	for _, p := range g.nodes {
		n, err := p.instructions()
		if err != nil {
			res.Notes = append(res.Notes, err.Error())
			return
		}
		res.Notes = append(res.Notes, fmt.Sprintf("%s: callgrind profile %s.%d", res.Scenario, p.profile, p.dumps))
		total += n
	}
	if res.Deliveries > 0 {
		res.InstructionsPerDelivery = total / int64(res.Deliveries)
	}
}

// nodeDeliveries asks each node how many deliveries it made. A node counts
// a delivery once its outcome is recorded, a moment after the target has
// it, so it asks again until the counts add up to want, for at most 10s.
func (g *rig) nodeDeliveries(ctx context.Context, want int) ([]int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		counts, sum := make([]int, len(g.nodes)), 0
		for i, p := range g.nodes {
			v, err := p.metric(ctx, `hookd_delivery_attempts_total{outcome="succeeded"}`)
			if err != nil {
				return nil, fmt.Errorf("node %d's /metrics: %w", i+1, err)
			}
			counts[i] = int(v)
			sum += counts[i]
		}
		if sum >= want || time.Now().After(deadline) {
			return counts, nil
		}
		select {
		case <-ctx.Done():
			return counts, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// joinInts writes per-node counts as "1000 + 1000".
func joinInts(v []int) string {
	if len(v) == 0 {
		return "?"
	}
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " + ")
}

func (g *rig) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if g.r.cfg.external() && len(g.apis) > 0 {
		// On a hookd the bench did not start, its webhooks would receive
		// the next scenarios' events: remove them (and their deliveries).
		for _, id := range g.hooks {
			g.apis[0].deleteWebhook(ctx, id)
		}
	}
	if g.target != nil {
		g.target.Close()
	}
	for _, p := range g.nodes {
		p.stop()
	}
	if g.drop != nil {
		g.drop()
	}
}

// sent is one intake request.
type sent struct {
	id         string        // the event id; "" when intake did not accept it
	start, end time.Duration // clock offsets
	node       int           // the index of the node it went to
}

// loadErrors counts the events intake did not accept, and the requests
// it refused for now that were sent again, keeping the first reason of
// each to show.
type loadErrors struct {
	n, retried          atomic.Int64
	once, retryOnce     sync.Once
	first, firstRefusal string
}

func (e *loadErrors) add(err error) {
	e.n.Add(1)
	e.once.Do(func() { e.first = err.Error() })
}

func (e *loadErrors) retry(err error) {
	e.retried.Add(1)
	e.retryOnce.Do(func() { e.firstRefusal = err.Error() })
}

// sleep waits d, or less when ctx ends first; it reports whether ctx is
// still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// closedLoop runs send(i) for i in [0, n) from c workers, each starting
// its next request when the previous one is answered.
func closedLoop(ctx context.Context, n, c int, send func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(c, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				send(i)
			}
		}()
	}
	wg.Wait()
}

// openLoop starts send(i, at) at fixed times, rate per second for d,
// whether or not earlier requests have been answered: a slow hookd does
// not slow the load down, so its slowness shows in the latencies instead
// of hiding in fewer requests (coordinated omission).
func openLoop(ctx context.Context, c *clock, rate float64, d time.Duration, send func(i int, at time.Duration)) int {
	n := max(int(rate*d.Seconds()), 1)
	interval := time.Duration(float64(time.Second) / rate)
	t0 := c.now()
	var wg sync.WaitGroup
	for i := range n {
		at := t0 + time.Duration(i)*interval
		if wait := at - c.now(); wait > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return i
			case <-time.After(wait):
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(i, at)
		}()
	}
	wg.Wait()
	return n
}

// send posts events: closed loop with n events, or open loop at rate for
// d when rate > 0. With several nodes, event i goes to node i mod nodes,
// as a round-robin load balancer would send it, so each node takes the
// same share whichever loop runs. Each event has its Idempotency-Key, and
// one that intake refuses for now (503, 429) is sent again to the same
// node after its Retry-After, up to intakeAttempts times: its latencies
// then count from the first request.
func (g *rig) send(ctx context.Context, n int, rate float64, d time.Duration) ([]sent, *loadErrors) {
	errs := &loadErrors{}
	c := g.r.clock
	// Keys of this load's own: a hookd the bench did not start remembers
	// the keys of earlier loads, and would answer their events as replays.
	prefix := "bench-" + uuid.NewString()[:8] + "-"
	one := func(i int, at time.Duration) sent {
		node := i % len(g.apis)
		var buf [32]byte
		key := string(strconv.AppendInt(append(buf[:0], prefix...), int64(i), 10))
		for attempt := 1; ; attempt++ {
			id, err := g.apis[node].sendEvent(ctx, key)
			if err == nil {
				return sent{id: id, start: at, end: c.now(), node: node}
			}
			var busy *refusal
			if !errors.As(err, &busy) || attempt == intakeAttempts || !sleep(ctx, busy.wait) {
				errs.add(err)
				return sent{start: at, end: c.now(), node: node}
			}
			errs.retry(err)
		}
	}
	if rate <= 0 {
		sends := make([]sent, n)
		closedLoop(ctx, n, g.r.cfg.Concurrency, func(i int) { sends[i] = one(i, c.now()) })
		return sends, errs
	}
	sends := make([]sent, max(int(rate*d.Seconds()), 1))
	n = openLoop(ctx, c, rate, d, func(i int, at time.Duration) { sends[i] = one(i, at) })
	return sends[:n], errs
}

// waitDelivered waits until the target has accepted every sent event's
// delivery to each of hooks, giving up after cfg.Wait without a new one.
// It reports whether all arrived. The target's count is what it waits on
// first, as it is cheap to read; but the count also holds deliveries of
// events the bench has no id for (one stored though intake refused it, a
// duplicate), which can make up for some still on their way. So once the
// count is reached, it looks the deliveries up by id, and waits on those
// it does not find: ending then would count them lost.
func (r *runner) waitDelivered(ctx context.Context, t *Target, sends []sent, hooks []int) bool {
	want := 0
	for _, s := range sends {
		if s.id != "" {
			want += len(hooks)
		}
	}
	var missing []key
	byID := false
	progress := func() int64 {
		if !byID {
			if got := t.Delivered(); got < int64(want) {
				return got
			}
			byID = true
			for _, s := range sends {
				if s.id != "" {
					for _, h := range hooks {
						k := key{hook: int32(h)}
						copy(k.id[:], s.id)
						missing = append(missing, k)
					}
				}
			}
		}
		missing = t.pending(missing)
		return int64(want - len(missing))
	}
	last, lastChange := progress(), time.Now()
	for {
		got := progress()
		if got >= int64(want) {
			return true
		}
		if got != last {
			last, lastChange = got, time.Now()
		}
		if time.Since(lastChange) > r.cfg.Wait {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// tally fills res from what was sent and what the target saw for the
// given webhooks; from is when the delivery rate's clock starts (the
// first send, unless the scenario says otherwise).
func (g *rig) tally(res *Result, sends []sent, errs *loadErrors, hooks []int, from time.Duration) {
	var firstSend, lastAnswer, lastReceipt time.Duration = -1, 0, 0
	var lat, intake []time.Duration
	if len(g.apis) > 1 {
		res.NodeEvents = make([]int, len(g.apis))
	}
	known := make(map[[36]byte]struct{}, len(sends))
	for _, s := range sends {
		if s.start == 0 && s.end == 0 {
			continue // never sent (the run was interrupted)
		}
		if firstSend < 0 || s.start < firstSend {
			firstSend = s.start
		}
		if s.id == "" {
			continue
		}
		var id [36]byte
		copy(id[:], s.id)
		known[id] = struct{}{}
		res.Events++
		if res.NodeEvents != nil {
			res.NodeEvents[s.node]++
		}
		lastAnswer = max(lastAnswer, s.end)
		intake = append(intake, s.end-s.start)
		for _, h := range hooks {
			rec, ok := g.target.lookup(h, s.id)
			if !ok || rec.ok == 0 {
				res.Lost++
				continue
			}
			res.Deliveries++
			res.Duplicates += int(rec.accepts) - 1
			lastReceipt = max(lastReceipt, rec.ok)
			lat = append(lat, rec.ok-s.start)
		}
	}
	if errs != nil {
		res.Rejected = int(errs.n.Load())
		res.Retried = int(errs.retried.Load())
		if errs.first != "" {
			res.Notes = append(res.Notes, fmt.Sprintf("%d events were not accepted by intake (after up to %d requests each); the first: %s", res.Rejected, intakeAttempts, errs.first))
		}
		if errs.firstRefusal != "" {
			res.Notes = append(res.Notes, fmt.Sprintf("%d intake requests were refused for now and sent again after their Retry-After (hookd was saturated, or limited); the first: %s",
				res.Retried, errs.firstRefusal))
		}
	}
	// The target's deliveries of events the bench has no id for. An event
	// stored twice, its first request's answer lost (a 503 after the
	// commit) and its retry stored again instead of answered as a replay
	// of its Idempotency-Key, shows up only here: the bench never learnt
	// the first copy's id. Each event intake did not accept may have been
	// stored all the same, so only the deliveries beyond those count as
	// duplicates. They are counted by id, not as the target's count less
	// the deliveries found above: one that came after its event was
	// looked up (late) would count as a duplicate too.
	if unknown := g.target.unknown(hooks, known); unknown > 0 {
		res.Duplicates += max(unknown-res.Rejected*len(hooks), 0)
		res.Notes = append(res.Notes, fmt.Sprintf("the target received %d deliveries of events intake never answered with their id (stored twice, or stored though refused)", unknown))
	}
	if from < 0 {
		from = firstSend
	}
	if res.Events > 0 && lastAnswer > firstSend {
		res.IntakeRate = float64(res.Events) / (lastAnswer - firstSend).Seconds()
	}
	if res.Deliveries > 0 && lastReceipt > from {
		res.DeliveryRate = float64(res.Deliveries) / (lastReceipt - from).Seconds()
	}
	res.Latency = Summarize(lat)
	res.IntakeLatency = Summarize(intake)
	if res.Lost > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d deliveries had not arrived %v after the last one", res.Lost, g.r.cfg.Wait))
	}
}

func hookRange(n int) []int {
	h := make([]int, n)
	for i := range h {
		h[i] = i
	}
	return h
}

// loadAndMeasure is the common shape of a scenario: send, wait for every
// accepted event to reach the given webhooks, and tally.
func (g *rig) loadAndMeasure(ctx context.Context, res *Result, n int, rate float64, d time.Duration, hooks []int) {
	g.startMeasuring()
	sends, errs := g.send(ctx, n, rate, d)
	accepted := 0
	for _, s := range sends {
		if s.id != "" {
			accepted++
		}
	}
	fmt.Fprintf(g.r.cfg.Progress, "bench: %d events accepted, waiting for %d deliveries\n", accepted, accepted*len(hooks))
	g.r.waitDelivered(ctx, g.target, sends, hooks)
	g.tally(res, sends, errs, hooks, -1)
	g.finishMeasuring(ctx, res)
	g.noteLogs(res)
}

// noteLogs reports whether the nodes complained, with each one's last word.
func (g *rig) noteLogs(res *Result) {
	res.HookdLogLines = 0
	for i, p := range g.nodes {
		n := p.logs.Lines()
		if n == 0 {
			continue
		}
		res.HookdLogLines += n
		who := "hookd's"
		if len(g.nodes) > 1 {
			who = fmt.Sprintf("node %d's", i+1)
		}
		res.Notes = append(res.Notes, who+" last log line: "+p.logs.Last())
	}
}
