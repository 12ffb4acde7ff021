package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// fakeIntake answers intake requests as a saturated hookd would: the
// first request of each event (by its Idempotency-Key) is refused with
// status and Retry-After: wait, and the next ones are accepted. Each event
// it stores is delivered to the target's webhook 0 at once.
type fakeIntake struct {
	t      *testing.T
	target string
	status int    // the refusal: 503 or 429
	wait   string // its Retry-After
	// always refuses every request, not only each event's first.
	always bool
	// storeRefused stores the event of a first request before refusing
	// it, as hookd may when its commit's answer comes too late (503
	// ErrUnreachable); honorKey says whether a retry with the same key is
	// then answered as a replay, as hookd does, or stored again.
	storeRefused, honorKey bool

	mu      sync.Mutex
	events  map[string]string // Idempotency-Key → the event stored with it
	refused map[string]bool   // Idempotency-Keys refused once
}

func (f *fakeIntake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	id, stored := f.events[key]
	// Without a key, every request is a new event.
	refuse := f.always || key == "" || !f.refused[key]
	f.refused[key] = true
	store := refuse && f.storeRefused || !refuse && (!stored || !f.honorKey)
	if store {
		id = uuid.NewString()
		f.events[key] = id
	}
	f.mu.Unlock()
	if store {
		f.deliver(id)
	}
	if refuse {
		w.Header().Set("Retry-After", f.wait)
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `{"status":%d,"message":"the database is behind; try again later"}`, f.status)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"id":"%s","created_at":"2026-12-07T00:00:00Z","deliveries":1}`+"\n", id)
}

func (f *fakeIntake) deliver(id string) {
	resp, err := http.Post(f.target+"/h/0", "application/json", bytes.NewReader([]byte(`{"payload_id":"`+id+`"}`)))
	if err != nil {
		f.t.Error(err)
		return
	}
	resp.Body.Close()
}

// TestSendRetries runs the bench's client against an intake that refuses
// each event's first request with 503 or 429 and Retry-After, as a
// saturated hookd does: the bench sends each refused event again with its
// Idempotency-Key, counts the retries, and still finds every event
// delivered once. A retry that intake stores a second time is a
// duplicate the report shows; an intake that never accepts is given up
// on after a few attempts, not retried forever.
func TestSendRetries(t *testing.T) {
	const events = 8
	for _, tt := range []struct {
		name string
		f    *fakeIntake
		// want
		accepted, deliveries, duplicates, rejected int
		retried                                    int
	}{
		{name: "503, nothing stored", f: &fakeIntake{status: 503, wait: "1", honorKey: true},
			accepted: events, deliveries: events, retried: events},
		{name: "429", f: &fakeIntake{status: 429, wait: "1", honorKey: true},
			accepted: events, deliveries: events, retried: events},
		{name: "503, stored all the same, replayed", f: &fakeIntake{status: 503, wait: "1", storeRefused: true, honorKey: true},
			accepted: events, deliveries: events, retried: events},
		{name: "503, stored all the same, stored again", f: &fakeIntake{status: 503, wait: "1", storeRefused: true},
			accepted: events, deliveries: events, duplicates: events, retried: events},
		{name: "503 every time", f: &fakeIntake{status: 503, wait: "0", always: true, honorKey: true},
			rejected: events, retried: events * (intakeAttempts - 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &runner{cfg: Config{Concurrency: events, Wait: 5 * time.Second, Progress: t.Output()}, clock: newClock()}
			target, err := startTarget(r.clock, targetOptions{slowHook: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer target.Close()
			f := tt.f
			f.t, f.target, f.events, f.refused = t, target.URL, map[string]string{}, map[string]bool{}
			intake := httptest.NewServer(f)
			defer intake.Close()
			g := &rig{r: r, target: target, apis: []*api{newAPI(intake.URL, "org", "hkd_test", events)}}
			var res Result
			start := time.Now()
			g.loadAndMeasure(t.Context(), &res, events, 0, 0, []int{0})
			if res.Events != tt.accepted || res.Deliveries != tt.deliveries || res.Lost != 0 || res.Duplicates != tt.duplicates ||
				res.Rejected != tt.rejected || res.Retried != tt.retried {
				t.Errorf("%d events, %d deliveries, %d lost, %d duplicates, %d rejected, %d retried; want %d, %d, 0, %d, %d, %d; notes %q",
					res.Events, res.Deliveries, res.Lost, res.Duplicates, res.Rejected, res.Retried,
					tt.accepted, tt.deliveries, tt.duplicates, tt.rejected, tt.retried, res.Notes)
			}
			if tt.f.wait == "1" && time.Since(start) < time.Second {
				t.Errorf("the run took %v: the retries did not wait for Retry-After: 1", time.Since(start))
			}
		})
	}
}

// TestTallyLateDeliveries tallies while the deliveries of the events
// sent are still arriving (the wait gave up on them, or the run was
// interrupted): they are late, counted as lost or delivered by when tally
// looked, but never as duplicates, which only a second copy of an event
// is.
func TestTallyLateDeliveries(t *testing.T) {
	const events = 50000
	r := &runner{cfg: Config{Wait: time.Second, Progress: t.Output()}, clock: newClock()}
	target, err := startTarget(r.clock, targetOptions{slowHook: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	sends := make([]sent, events)
	for i := range sends {
		sends[i] = sent{id: uuid.NewString(), start: 1, end: 2}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, s := range sends {
			k := key{hook: 0}
			copy(k.id[:], s.id)
			target.accept(k, r.clock.now(), true)
		}
	}()
	for target.Delivered() == 0 {
		time.Sleep(time.Microsecond)
	}
	g := &rig{r: r, target: target}
	var res Result
	g.tally(&res, sends, &loadErrors{}, []int{0}, -1)
	<-done
	if res.Duplicates != 0 || res.Deliveries+res.Lost != events {
		t.Errorf("%d deliveries, %d lost, %d duplicates; want %d delivered or lost, no duplicate; notes %q",
			res.Deliveries, res.Lost, res.Duplicates, events, res.Notes)
	}
}

// An event stored though intake refused it is delivered with an id the
// bench never learnt, and counts in the target's total: the wait must
// not take it for one of the events it waits on, and end, counting a
// late one lost.
func TestWaitDeliveredByID(t *testing.T) {
	r := &runner{cfg: Config{Wait: 5 * time.Second, Progress: t.Output()}, clock: newClock()}
	target, err := startTarget(r.clock, targetOptions{slowHook: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	known, refused := uuid.NewString(), uuid.NewString()
	sends := []sent{{id: known, start: 1, end: 2}, {start: 1, end: 2}}
	deliver := func(id string) {
		k := key{hook: 0}
		copy(k.id[:], id)
		target.accept(k, r.clock.now(), true)
	}
	deliver(refused)
	const late = 200 * time.Millisecond
	go func() {
		time.Sleep(late)
		deliver(known)
	}()
	start := time.Now()
	if !r.waitDelivered(context.Background(), target, sends, []int{0}) {
		t.Fatal("waitDelivered gave up")
	}
	if waited := time.Since(start); waited < late {
		t.Errorf("waitDelivered returned after %v, before the known event's delivery (sent after %v)", waited, late)
	}
	var res Result
	(&rig{r: r, target: target}).tally(&res, sends, &loadErrors{}, []int{0}, -1)
	if res.Lost != 0 || res.Deliveries != 1 {
		t.Errorf("%d deliveries, %d lost; want the late one delivered", res.Deliveries, res.Lost)
	}
}
