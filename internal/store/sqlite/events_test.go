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
		{100, deleteHold, 100},       // on time: the same again
		{100, 2 * deleteHold, 50},    // twice as long: half
		{100, 4 * deleteHold, 25},    //
		{100, deleteHold / 10, 200},  // much quicker: twice at most
		{100, 0, 200},                // no time measured at all
		{800, deleteHold / 2, 1000},  // never past the most
		{1000, 0, 1000},              //
		{10, 100 * deleteHold, 1},    // far too slow: one row still
		{1, time.Second, 1},          //
		{50, deleteHold * 5 / 4, 40}, //
		{50, deleteHold * 3 / 2, 33}, // rounded down
	} {
		if got := nextDeleteBatch(c.limit, c.took); got != c.want {
			t.Errorf("nextDeleteBatch(%d, %v) = %d, want %d", c.limit, c.took, got, c.want)
		}
	}
}

// TestDeleteInBatches: batches follow the time their statements take,
// and the purge ends at the first batch that deletes fewer than it may.
func TestDeleteInBatches(t *testing.T) {
	db := openScratch(t)
	var limits []int
	left := 200
	total, err := db.deleteInBatches(context.Background(), func(tx *txn, limit int) (int, error) {
		limits = append(limits, limit)
		if len(limits) == 1 {
			// Ten times too slow: the next batch is a tenth as large.
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
	if len(limits) < 2 || limits[0] != deleteBatchFirst || limits[1] > deleteBatchFirst/10 {
		t.Fatalf("limits %v; want %d, then at most %d after a batch ten times too slow", limits, deleteBatchFirst, deleteBatchFirst/10)
	}
	for i := 2; i < len(limits); i++ {
		if limits[i] > 2*limits[i-1] {
			t.Errorf("limits %v: batch %d more than doubled", limits, i)
		}
	}
}
