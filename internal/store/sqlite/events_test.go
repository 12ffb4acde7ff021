package sqlite

import (
	"context"
	"testing"
	"time"
)

func TestNextDeleteBatch(t *testing.T) {
	for _, c := range []struct {
		limit int
		took  time.Duration
		want  int
	}{
		{100, deleteHold, 100},      // on time: the same again
		{100, 2 * deleteHold, 50},   // twice as long: half
		{100, 4 * deleteHold, 25},   //
		{100, 10 * deleteHold, 25},  // far too long: a quarter at most at once
		{100, deleteHold / 10, 200}, // much quicker: twice at most
		{100, 0, 200},               // no time measured at all
		{800, deleteHold / 2, 1000}, // never past the most
		{1000, 0, 1000},             //
		{10, 100 * deleteHold, 2},   //
		{3, time.Second, 1},         // one row at the least
		{1, time.Second, 1},         //
		{50, deleteHold * 5 / 4, 40},
		{50, deleteHold * 3 / 2, 33}, // rounded down
	} {
		if got := nextDeleteBatch(c.limit, c.took); got != c.want {
			t.Errorf("nextDeleteBatch(%d, %v) = %d, want %d", c.limit, c.took, got, c.want)
		}
	}
}

func TestPurgePace(t *testing.T) {
	at := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	p := purgePace{groups: 10}
	for i, c := range []struct {
		groups uint64
		after  time.Duration // since at
		want   bool
	}{
		{11, 0, false},                                // only its own batch: alone, no pause
		{12, time.Millisecond, false},                 //
		{14, 2 * time.Millisecond, true},              // two others since: pause
		{15, 3 * time.Millisecond, true},              // only its own, but others wrote just now
		{16, 2*time.Millisecond + deleteQuiet, true},  // deleteQuiet after them: still pausing
		{17, 3*time.Millisecond + deleteQuiet, false}, // quiet for longer: on it goes
		{19, time.Second, true},                       // others again
	} {
		if got := p.pause(c.groups, at.Add(c.after)); got != c.want {
			t.Errorf("step %d (count %d at +%v): pause %v, want %v", i, c.groups, c.after, got, c.want)
		}
	}
}

// TestDeleteInBatches: batches follow the time their statements take,
// and the purge ends at the first batch that deletes fewer than it may.
func TestDeleteInBatches(t *testing.T) {
	db := openScratch(t)
	ctx := context.Background()
	var limits []int
	left := 200
	total, err := db.deleteInBatches(ctx, func(tx *txn, limit int) (int, error) {
		limits = append(limits, limit)
		if len(limits) == 1 {
			// Ten times too slow: the next batch is a quarter as large.
			time.Sleep(10 * deleteHold)
		}
		n := min(limit, left)
		left -= n
		return n, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total != 200 || left != 0 {
		t.Errorf("deleted %d, %d left; want 200 and none", total, left)
	}
	if len(limits) < 2 || limits[0] != deleteBatchFirst || limits[1] > max(1, deleteBatchFirst/4) {
		t.Fatalf("limits %v; want %d, then at most %d after a batch ten times too slow", limits, deleteBatchFirst, max(1, deleteBatchFirst/4))
	}
	for i := 2; i < len(limits); i++ {
		if limits[i] > 2*limits[i-1] {
			t.Errorf("limits %v: batch %d more than doubled", limits, i)
		}
	}

	// A full batch that leaves nothing is followed by one that finds
	// nothing, which ends the purge.
	calls, left := 0, deleteBatchFirst
	total, err = db.deleteInBatches(ctx, func(tx *txn, limit int) (int, error) {
		calls++
		n := min(limit, left)
		left -= n
		return n, nil
	})
	if err != nil || total != deleteBatchFirst || calls != 2 {
		t.Errorf("deleted %d in %d batches (%v); want %d in 2", total, calls, err, deleteBatchFirst)
	}
}
