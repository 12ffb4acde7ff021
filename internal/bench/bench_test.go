package bench

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
	"github.com/hookd/hookd/internal/webhook"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p95 of 1..100", ms(hundred...), 95, 95 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the max", ms(hundred...), 100, 100 * time.Millisecond},
		// Nearest rank: ceil(0.5*4) = 2nd value, never an interpolation.
		{"p50 of four", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of four", ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{"tiny p", ms(1, 2, 3, 4), 0.001, time.Millisecond},
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: Percentile(p%g) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	d := []time.Duration{5, 1, 4, 2, 3}
	got := Summarize(d)
	want := Latency{N: 5, P50: 3, P95: 5, P99: 5, Max: 5}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if (Summarize(nil) != Latency{}) {
		t.Error("Summarize(nil) is not zero")
	}
}

func TestPayloadID(t *testing.T) {
	id := uuid.MustParse("0190a6d2-0000-7000-8000-0000000000e1")
	d := &webhook.DeploymentEvent{EventType: webhook.EventDeploymentFailure,
		// A payload_id-looking string inside the payload must not be taken.
		Project:     webhook.DeploymentProject{Name: `"payload_id":"ffffffff-ffff-ffff-ffff-ffffffffffff"`},
		Environment: webhook.DeploymentEnvironment{Name: "prod", Mode: webhook.ModeProduction}}
	envelope := webhook.RenderStandard(webhook.NewEvent(uuid.New(), d, id, time.Now(), ""))
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"hookd's envelope", envelope, id.String()},
		{"minimal", []byte(`{"payload_id":"0190a6d2-0000-7000-8000-0000000000e1"}`), id.String()},
		{"absent", []byte(`{"event_type":"DEPLOYMENT_FAILURE"}`), ""},
		{"too short", []byte(`{"payload_id":"0190a6d2"}`), ""},
		{"too long", []byte(`{"payload_id":"0190a6d2-0000-7000-8000-0000000000e1x"}`), ""},
		{"truncated", []byte(`{"payload_id":"0190a6d2-0000-7000-8000-0000000000e1`), ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		got, ok := PayloadID(tt.body)
		if string(got) != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: PayloadID = %q, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

func TestHookIndex(t *testing.T) {
	for path, want := range map[string]int{"/h/0": 0, "/h/42": 42, "/h/": -1, "/h/x": -1, "/other": -1, "": -1} {
		if got := hookIndex(path); got != want {
			t.Errorf("hookIndex(%q) = %d, want %d", path, got, want)
		}
	}
}

// TestTarget checks what the target records: first receipts per webhook
// and event, duplicates, and FailFirst's 500 then 200.
func TestTarget(t *testing.T) {
	const id = "0190a6d2-0000-7000-8000-0000000000e1"
	body := []byte(`{"payload_type":"DEPLOYMENT","payload_id":"` + id + `","payload":{}}`)
	post := func(tg *Target, path string) int {
		t.Helper()
		resp, err := http.Post(tg.URL+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	tg, err := startTarget(newClock(), targetOptions{slowHook: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	for _, path := range []string{"/h/0", "/h/0", "/h/1"} {
		if st := post(tg, path); st != 200 {
			t.Fatalf("POST %s: %d", path, st)
		}
	}
	if got := tg.Delivered(); got != 2 {
		t.Errorf("Delivered = %d, want 2 (one per webhook)", got)
	}
	rec, ok := tg.lookup(0, id)
	if !ok || rec.n != 2 || rec.accepts != 2 || rec.ok == 0 || rec.first != rec.ok {
		t.Errorf("webhook 0: %+v", rec)
	}

	flaky, err := startTarget(newClock(), targetOptions{slowHook: -1, failFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	defer flaky.Close()
	if st := post(flaky, "/h/0"); st != 500 {
		t.Errorf("first attempt answered %d, want 500", st)
	}
	if flaky.Delivered() != 0 {
		t.Error("a failed attempt counted as delivered")
	}
	if st := post(flaky, "/h/0"); st != 200 {
		t.Errorf("second attempt answered %d, want 200", st)
	}
	rec, _ = flaky.lookup(0, id)
	if rec.n != 2 || rec.accepts != 1 || rec.ok <= rec.first || flaky.Delivered() != 1 {
		t.Errorf("after a retry: %+v, delivered %d", rec, flaky.Delivered())
	}
}

// TestBenchTwoNodes runs burst and backlog as `hookd bench --nodes 2`
// does, with the real binary on PostgreSQL: nothing is lost, intake
// reaches both nodes, and what the nodes say they delivered adds up to
// what the target received. Backlog also checks that neither node
// delivers while delivery is off.
func TestBenchTwoNodes(t *testing.T) {
	if os.Getenv(pgtest.URLEnv) == "" {
		t.Skip("needs PostgreSQL: run it with " + pgtest.URLEnv + "=postgres://postgres@127.0.0.1:5432/postgres")
	}
	exe := filepath.Join(t.TempDir(), "hookd")
	if out, err := exec.Command("go", "build", "-o", exe, "github.com/hookd/hookd/cmd/hookd").CombinedOutput(); err != nil {
		t.Fatalf("building hookd: %v\n%s", err, out)
	}
	// A developer's own HOOKD_* settings must not change what is tested.
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKD_") {
			environ = append(environ, kv)
		}
	}
	cfg := Config{
		Executable:  exe,
		Environ:     environ,
		Version:     "test",
		Scenarios:   []string{"burst", "backlog"},
		Events:      1000,
		Concurrency: 16,
		Backlog:     2000,
		Wait:        20 * time.Second,
		Backend:     "postgres",
		Nodes:       2,
		NewDatabase: func(context.Context) (string, func(), error) { return pgtest.URL(t), func() {}, nil },
		Progress:    t.Output(),
	}
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2", len(rep.Results))
	}
	for _, r := range rep.Results {
		events, webhooks := cfg.Events, 1
		if r.Scenario == "backlog" {
			events, webhooks = cfg.Backlog/backlogWebhooks, backlogWebhooks
		}
		if r.Error != "" || r.Events != events || r.Deliveries != events*webhooks || r.Lost != 0 || r.Duplicates != 0 {
			t.Errorf("%s: error %q, %d events, %d deliveries, %d lost, %d duplicates; want %d events, %d deliveries, none lost or duplicated; notes: %q",
				r.Scenario, r.Error, r.Events, r.Deliveries, r.Lost, r.Duplicates, events, events*webhooks, r.Notes)
		}
		if len(r.NodeEvents) != 2 || r.NodeEvents[0] == 0 || r.NodeEvents[1] == 0 {
			t.Errorf("%s: events per node %v, want both nodes to have accepted some", r.Scenario, r.NodeEvents)
		}
		if len(r.NodeDeliveries) != 2 || r.NodeDeliveries[0]+r.NodeDeliveries[1] != r.Deliveries {
			t.Errorf("%s: the nodes say they delivered %v, the target received %d", r.Scenario, r.NodeDeliveries, r.Deliveries)
		}
		// Each node delivers the events it accepted; in backlog, one node
		// may drain it all before the other is ready.
		if r.Scenario == "burst" && len(r.NodeDeliveries) == 2 && (r.NodeDeliveries[0] == 0 || r.NodeDeliveries[1] == 0) {
			t.Errorf("burst: deliveries per node %v, want both nodes to have delivered", r.NodeDeliveries)
		}
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "backend postgres, 2 nodes") {
		t.Errorf("the report does not say it ran on 2 nodes:\n%s", table.String())
	}
}

// benchCPU counts the bench's own CPU since a reading, per 1,000
// deliveries: 100 ms spent over 1,000 deliveries is 0.1 s per 1,000. It
// shows nothing under callgrind, without a reading or without deliveries.
func TestBenchCPUPerDelivery(t *testing.T) {
	from := ownCPU()
	if from < 0 {
		t.Skip("no /proc: the bench measures no CPU here")
	}
	deadline := time.Now().Add(10 * time.Second)
	for ownCPU()-from < 100*time.Millisecond && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			sink += i
		}
	}
	r := &runner{}
	res := Result{Deliveries: 1000}
	r.benchCPU(&res, from)
	if res.BenchCPUPer1k < 0.1 || res.BenchCPUPer1k > 0.5 {
		t.Errorf("after 100 ms of CPU over 1,000 deliveries: %v s per 1,000, want 0.1 (a tick or a few more)", res.BenchCPUPer1k)
	}
	for name, tt := range map[string]struct {
		r    *runner
		res  Result
		from time.Duration
	}{
		"callgrind":     {&runner{cfg: Config{Callgrind: t.TempDir()}}, Result{Deliveries: 1000}, from},
		"no reading":    {&runner{}, Result{Deliveries: 1000}, -1},
		"no deliveries": {&runner{}, Result{}, from},
	} {
		tt.r.benchCPU(&tt.res, tt.from)
		if tt.res.BenchCPUPer1k != 0 {
			t.Errorf("%s: %v s per 1,000, want none", name, tt.res.BenchCPUPer1k)
		}
	}
}

// sink keeps TestBenchCPUPerDelivery's busy loop from being optimized away.
var sink int
