package api

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// A window's success rate is the share of its attempts that succeeded, and
// its percentiles are in milliseconds to the microsecond; a window without
// attempts has neither (null), not a rate of 0 or 1.
func TestWindowStats(t *testing.T) {
	since := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	p := webhook.AttemptStatsParams{Since: since, Until: since.Add(time.Hour)}
	for _, c := range []struct {
		name string
		st   webhook.AttemptStats
		want string
	}{
		{"mixed", webhook.AttemptStats{Attempts: 4, Failures: 1, P50: 1500 * time.Microsecond, P95: 2*time.Second + 250*time.Microsecond,
			Buckets: []webhook.StatsBucket{{Start: since, Attempts: 4, Failures: 1}}},
			`"attempts":4,"failures":1,"success_rate":0.75,"p50_ms":1.5,"p95_ms":2000.25,` +
				`"buckets":[{"start":"2026-12-07T00:00:00Z","attempts":4,"failures":1}]`},
		{"all failed", webhook.AttemptStats{Attempts: 2, Failures: 2, P50: time.Millisecond, P95: time.Millisecond},
			`"attempts":2,"failures":2,"success_rate":0,"p50_ms":1,"p95_ms":1,"buckets":[]`},
		{"none", webhook.AttemptStats{},
			`"attempts":0,"failures":0,"success_rate":null,"p50_ms":null,"p95_ms":null,"buckets":[]`},
	} {
		b, err := json.Marshal(newWindowStats(p, &c.st))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := `{"since":"2026-12-07T00:00:00Z","until":"2026-12-07T01:00:00Z",` + c.want + `}`
		if string(b) != want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, b, want)
		}
	}
}

// heldStats is a store whose AttemptStats waits until released, counting
// how many run at once.
type heldStats struct {
	webhook.Store
	release       chan struct{}
	running, most atomic.Int32
}

func (s *heldStats) AttemptStats(ctx context.Context, p webhook.AttemptStatsParams) (*webhook.AttemptStats, error) {
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for m := s.most.Load(); n > m && !s.most.CompareAndSwap(m, n); m = s.most.Load() {
	}
	<-s.release
	return s.Store.AttemptStats(ctx, p)
}

// A webhook's stats hold every duration of the week in memory while they
// are computed, so a burst of requests for them (a token may send 200 at
// once) computes statsAtOnce at a time; the others wait their turn and
// are answered all the same.
func TestStatsComputedFewAtOnce(t *testing.T) {
	db := &heldStats{Store: openSQLite(t, filepath.Join(t.TempDir(), "api.db")), release: make(chan struct{})}
	h := newAPIHarnessOn(t, db)
	org := uuid.New()
	tok, _ := h.token(org)
	var hook struct{ ID string }
	if st := h.do(tok, "POST", "/organization/"+org.String()+"/webhook", `{`+editBase+`}`, &hook); st != 201 {
		t.Fatalf("create webhook: %d", st)
	}
	const requests = 3 * statsAtOnce
	statuses := make(chan int, requests)
	for range requests {
		go func() {
			statuses <- h.do(tok, "GET", "/organization/"+org.String()+"/webhook/"+hook.ID+"/stats", "", nil)
		}()
	}
	// Every place taken, and the other requests waiting for one.
	for deadline := time.Now().Add(10 * time.Second); db.running.Load() < statsAtOnce; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d stats computed at once after 10 s, want %d", db.running.Load(), statsAtOnce)
		}
	}
	time.Sleep(100 * time.Millisecond) // room for any request that would pass the limit
	close(db.release)
	for range requests {
		if st := <-statuses; st != 200 {
			t.Errorf("stats: %d, want 200", st)
		}
	}
	if most := db.most.Load(); most != statsAtOnce {
		t.Errorf("%d stats computed at once, want at most %d", most, statsAtOnce)
	}
}
