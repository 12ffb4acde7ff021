package webhook

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	got, err := ParseSchedule(DefaultSchedule)
	if err != nil {
		t.Fatal(err)
	}
	want := Schedule{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	if !slices.Equal(got, want) {
		t.Errorf("ParseSchedule(default) = %v", got)
	}
	if got, err := ParseSchedule(" 1s , 1m30s "); err != nil || !slices.Equal(got, Schedule{time.Second, 90 * time.Second}) {
		t.Errorf("with spaces: %v, %v", got, err)
	}
	if s := want.String(); s != "0s,5s,5m0s,30m0s,2h0m0s,5h0m0s,10h0m0s,10h0m0s" {
		t.Errorf("String = %s", s)
	}
	if again, err := ParseSchedule(want.String()); err != nil || !slices.Equal(again, want) {
		t.Errorf("String does not parse back: %v, %v", again, err)
	}

	for in, wantErr := range map[string]string{
		"":          "empty",
		" ":         "empty",
		"0s,,5m":    "entry 2 is empty",
		"0s,5m,":    "entry 3 is empty",
		"0s,soon":   `entry 2 ("soon") is not a duration`,
		"5":         `entry 1 ("5") is not a duration`,
		"0s,5s,-1m": `entry 3 ("-1m") is negative`,
	} {
		_, err := ParseSchedule(in)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseSchedule(%q) = %v, want an error with %q", in, err, wantErr)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	s := Schedule{time.Second, 10 * time.Second, time.Hour}
	now := time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC)
	fixed := func(v float64) func() float64 { return func() float64 { return v } }

	tests := []struct {
		done int
		rnd  float64
		want time.Duration
		ok   bool
	}{
		{0, 0, time.Second, true}, // the first delay is never jittered
		{0, 0.99, time.Second, true},
		{1, 0, 8 * time.Second, true},
		{1, 0.5, 10 * time.Second, true},
		{1, 0.75, 11 * time.Second, true},
		{2, 0.25, 54 * time.Minute, true},
		{3, 0.5, 0, false},
		{10, 0.5, 0, false},
		{-1, 0.5, 0, false},
	}
	for _, tt := range tests {
		got, ok := s.Next(tt.done, now, fixed(tt.rnd))
		if ok != tt.ok || (ok && got.Sub(now) != tt.want) {
			t.Errorf("Next(%d) with rnd %v = %v, %v; want +%v, %v", tt.done, tt.rnd, got.Sub(now), ok, tt.want, tt.ok)
		}
	}

	// Whatever rnd returns in [0, 1), the delay stays within ±20%.
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		got, _ := s.Next(2, now, r.Float64)
		if d := got.Sub(now); d < 48*time.Minute || d >= 72*time.Minute {
			t.Fatalf("jittered delay %v outside [48m, 72m)", d)
		}
	}
	if _, ok := s.Next(1, now, nil); !ok {
		t.Error("Next with a nil rnd")
	}
	if _, ok := Schedule(nil).Next(0, now, nil); ok {
		t.Error("an empty schedule has an attempt")
	}
}

func TestScheduleClamp(t *testing.T) {
	s, _ := ParseSchedule(DefaultSchedule)
	for _, tt := range []struct{ in, want time.Duration }{
		{0, 5 * time.Second},
		{-time.Minute, 5 * time.Second},
		{time.Second, 5 * time.Second},
		{time.Minute, time.Minute},
		{24 * time.Hour, 10 * time.Hour},
	} {
		if got := s.Clamp(tt.in); got != tt.want {
			t.Errorf("Clamp(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if got := (Schedule{0, 0}).Clamp(time.Minute); got != 0 {
		t.Errorf("all-zero schedule: Clamp = %v", got)
	}
	if got := Schedule(nil).Clamp(time.Minute); got != time.Minute {
		t.Errorf("empty schedule: Clamp = %v", got)
	}
}
