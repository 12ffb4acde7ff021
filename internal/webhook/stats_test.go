package webhook

import (
	"reflect"
	"testing"
	"time"
)

// A window's ranges are its buckets, the last cut at Until, or the
// whole window without buckets; an empty window has none.
func TestStatsRanges(t *testing.T) {
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return since.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	for _, tt := range []struct {
		name string
		p    AttemptStatsParams
		want []StatsRange
	}{
		{"buckets", AttemptStatsParams{Since: since, Until: at(2, 30), Bucket: time.Hour},
			[]StatsRange{{since, at(1, 0)}, {at(1, 0), at(2, 0)}, {at(2, 0), at(2, 30)}}},
		{"whole buckets", AttemptStatsParams{Since: since, Until: at(2, 0), Bucket: time.Hour},
			[]StatsRange{{since, at(1, 0)}, {at(1, 0), at(2, 0)}}},
		{"no buckets", AttemptStatsParams{Since: since, Until: at(7, 0)}, []StatsRange{{since, at(7, 0)}}},
		{"empty window", AttemptStatsParams{Since: since, Until: since, Bucket: time.Hour}, nil},
	} {
		if got := tt.p.Ranges(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The sum of a window's ranges counts every attempt once, fills its
// buckets in order, and ranks every duration together, whichever range
// it was read in.
func TestSumAttemptStats(t *testing.T) {
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p := AttemptStatsParams{Since: since, Until: since.Add(150 * time.Minute), Bucket: time.Hour}
	got := SumAttemptStats(p, []RangeStats{
		{Attempts: 3, Failures: 1},
		{},
		{Attempts: 2, Failures: 2},
	}, []int64{900, 100, 500, 300, 700})
	// Durations 100, 300, 500, 700, 900: rank ceil(0.5*5) = 3 is 500 µs,
	// rank ceil(0.95*5) = 5 is 900 µs.
	want := &AttemptStats{Attempts: 5, Failures: 3, P50: 500 * time.Microsecond, P95: 900 * time.Microsecond, Buckets: []StatsBucket{
		{Start: since, Attempts: 3, Failures: 1}, {Start: since.Add(time.Hour)}, {Start: since.Add(2 * time.Hour), Attempts: 2, Failures: 2},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := SumAttemptStats(AttemptStatsParams{Since: since, Until: since.Add(time.Hour)}, nil, nil); !reflect.DeepEqual(got, &AttemptStats{}) {
		t.Errorf("nothing read: %+v, want zero stats and no buckets", got)
	}
}
