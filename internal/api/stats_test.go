package api

import (
	"encoding/json"
	"testing"
	"time"

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
