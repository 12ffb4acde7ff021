package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The intake answer, written by hand, is byte for byte what writeJSON
// would write.
func TestEventAcceptedJSON(t *testing.T) {
	base := time.Date(2026, 12, 4, 10, 9, 45, 0, time.UTC)
	for _, a := range []eventAccepted{
		{ID: uuid.MustParse("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"), CreatedAt: base, Deliveries: 0},
		{ID: uuid.New(), CreatedAt: base.Add(123456 * time.Microsecond), Deliveries: 1},
		{ID: uuid.New(), CreatedAt: base.Add(100 * time.Millisecond), Deliveries: 100},
		{ID: uuid.New(), CreatedAt: base.Add(999999999), Deliveries: 12345},
		{ID: uuid.Nil, CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Deliveries: -1},
	} {
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(a.appendJSON([]byte("x"))); got != "x"+string(want)+"\n" {
			t.Errorf("got %s, want x%s and a newline", got, want)
		}
	}
}
