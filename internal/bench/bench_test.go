package bench

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

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
	envelope := webhook.RenderStandard(webhook.NewEvent(uuid.New(), d, id, time.Now()))
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
