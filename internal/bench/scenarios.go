package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// raw measures the machine's ceiling: a Go client posting envelopes of
// the size hookd sends straight to the same kind of target, with the same
// number of workers. Nothing hookd does can be faster on this machine.
func (r *runner) raw(ctx context.Context, res *Result) error {
	t, err := startTarget(r.clock, targetOptions{slowHook: -1})
	if err != nil {
		return err
	}
	defer t.Close()
	var d webhook.DeploymentEvent
	if err := json.Unmarshal(eventBody, &d); err != nil {
		return err
	}
	ev := webhook.NewEvent(uuid.New(), &d, uuid.New(), time.Now().UTC(), "")
	tmpl := webhook.RenderStandard(ev)
	at := bytes.Index(tmpl, payloadIDField) + len(payloadIDField)
	client := newHTTPClient(r.cfg.Concurrency)
	run := r.clock.now()
	n := r.cfg.Events
	sends := make([]sent, n)
	errs := &loadErrors{}
	own0 := ownCPU()
	closedLoop(ctx, n, r.cfg.Concurrency, func(i int) {
		body := bytes.Clone(tmpl)
		id := fmt.Sprintf("%08x-0000-7000-8000-%012x", uint32(run), i)
		copy(body[at:], id)
		start := r.clock.now()
		if err := postRaw(ctx, client, t.URL+"/h/0", id, body); err != nil {
			errs.add(err)
			sends[i] = sent{start: start, end: r.clock.now()}
			return
		}
		sends[i] = sent{id: id, start: start, end: r.clock.now()}
	})
	r.waitDelivered(ctx, t, sends, []int{0})
	g := &rig{r: r, target: t}
	g.tally(res, sends, errs, []int{0}, -1)
	r.benchCPU(res, own0)
	res.Notes = append(res.Notes, "raw: a Go client posting to the target directly; its rates are requests per second")
	return nil
}

// postRaw sends one envelope with the headers hookd sends.
func postRaw(ctx context.Context, client *http.Client, url, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hookd/bench")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("target answered %d", resp.StatusCode)
	}
	return nil
}

// burst: Events events from Concurrency clients as fast as hookd takes
// them, to one webhook.
func (r *runner) burst(ctx context.Context, res *Result) error {
	g, err := r.newRig(ctx, targetOptions{slowHook: -1}, nil, 1)
	if err != nil {
		return err
	}
	defer g.close()
	g.loadAndMeasure(ctx, res, r.cfg.Events, 0, 0, []int{0})
	return nil
}

// steady: a fixed rate of events, open loop, to one webhook.
func (r *runner) steady(ctx context.Context, res *Result) error {
	g, err := r.newRig(ctx, targetOptions{slowHook: -1}, nil, 1)
	if err != nil {
		return err
	}
	defer g.close()
	g.loadAndMeasure(ctx, res, 0, r.cfg.Rate, r.cfg.Duration, []int{0})
	return nil
}

// fanout: every event matches Fanout webhooks; Events/20 events from
// Concurrency clients (20,000 → 1,000 events, 100,000 deliveries).
func (r *runner) fanout(ctx context.Context, res *Result) error {
	g, err := r.newRig(ctx, targetOptions{slowHook: -1}, nil, r.cfg.Fanout)
	if err != nil {
		return err
	}
	defer g.close()
	g.loadAndMeasure(ctx, res, max(r.cfg.Events/20, 1), 0, 0, hookRange(r.cfg.Fanout))
	return nil
}

// slowWebhooks is the webhook count of slow-target, the last one slow.
const slowWebhooks = 10

// slowTarget: one webhook of ten answers after 5s; the other nine must be
// served as in steady. Events come at Rate/9 per second, so the nine get
// Rate deliveries per second between them, like steady's one webhook.
func (r *runner) slowTarget(ctx context.Context, res *Result) error {
	slow := slowWebhooks - 1
	g, err := r.newRig(ctx, targetOptions{slowHook: slow, slowDelay: 5 * time.Second}, nil, slowWebhooks)
	if err != nil {
		return err
	}
	defer g.close()
	g.loadAndMeasure(ctx, res, 0, r.cfg.Rate/float64(slow), r.cfg.Duration, hookRange(slow))
	res.Notes = append(res.Notes, fmt.Sprintf("slow-target: %.0f events/s to 10 webhooks, one answering after 5s; figures are the other 9's", r.cfg.Rate/float64(slow)))
	return nil
}

// backlogWebhooks share the backlog's deliveries.
const backlogWebhooks = 10

// backlog: Backlog deliveries pile up while no hookd delivers (every node
// runs with HOOKD_ROLE=api), then normal nodes start on the same database
// and drain them. The delivery rate is from the first one's start to the
// last receipt; memory and CPU are the draining processes'. Idle memory is
// that of a fresh hookd (the first node) a second after it started, before
// any of this.
func (r *runner) backlog(ctx context.Context, res *Result) error {
	g, err := r.newRig(ctx, targetOptions{slowHook: -1}, nil, 0)
	if err != nil {
		return err
	}
	defer g.close()
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	if s, err := readProc(g.nodes[0].cmd.Process.Pid); err == nil {
		res.IdleRSS = s.RSS
	}
	if err := g.restart(ctx, map[string]string{"HOOKD_ROLE": "api"}); err != nil {
		return err
	}
	for i := range backlogWebhooks {
		id, err := g.apis[0].createWebhook(ctx, fmt.Sprintf("%s/h/%d", g.target.URL, i))
		if err != nil {
			return err
		}
		g.hooks = append(g.hooks, id)
	}
	events := max(r.cfg.Backlog/backlogWebhooks, 1)
	fmt.Fprintf(r.cfg.Progress, "bench: queueing %d deliveries with delivery off\n", events*backlogWebhooks)
	sends, errs := g.send(ctx, events, 0, 0)
	if got := g.target.requests.Load(); got > 0 {
		return fmt.Errorf("the target got %d requests from a hookd with HOOKD_ROLE=api", got)
	}
	intake := Result{}
	g.tally(&intake, sends, errs, nil, -1)
	g.own0 = ownCPU() // the drain's, as the nodes' CPU is (they start at 0)
	if err := g.restart(ctx, nil); err != nil {
		return err
	}
	first := g.nodes[0].started
	for _, p := range g.nodes {
		if p.started.Before(first) {
			first = p.started
		}
	}
	from := r.clock.now() - time.Since(first)
	accepted := intake.Events
	fmt.Fprintf(r.cfg.Progress, "bench: draining %d deliveries\n", accepted*backlogWebhooks)
	r.waitDelivered(ctx, g.target, sends, hookRange(backlogWebhooks))
	g.tally(res, sends, errs, hookRange(backlogWebhooks), from)
	// Latency from send includes the time delivery was off: meaningless.
	res.Latency = Latency{}
	res.IntakeRate = intake.IntakeRate
	g.finishMeasuring(ctx, res)
	g.noteLogs(res)
	res.Notes = append(res.Notes, "backlog: intake/s is with delivery off; deliv/s is the drain, from hookd's restart to the last receipt")
	return nil
}

// retry: the target fails every delivery's first attempt and accepts the
// second, which HOOKD_RETRY_SCHEDULE=0s,1s makes about a second later;
// latency is to that second attempt. Rate for at most 10s.
func (r *runner) retry(ctx context.Context, res *Result) error {
	g, err := r.newRig(ctx, targetOptions{slowHook: -1, failFirst: true}, map[string]string{"HOOKD_RETRY_SCHEDULE": "0s,1s"}, 1)
	if err != nil {
		return err
	}
	defer g.close()
	g.loadAndMeasure(ctx, res, 0, r.cfg.Rate, min(r.cfg.Duration, 10*time.Second), []int{0})
	res.Notes = append(res.Notes, "retry: latency is to the second attempt, scheduled 1s (±20%) after the first fails")
	return nil
}
