package webhook

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DefaultSchedule is the retry schedule used unless configured
// (HOOKD_RETRY_SCHEDULE): eight attempts over about a day.
const DefaultSchedule = "0s,5s,5m,30m,2h,5h,10h,10h"

// jitter is the fraction by which every delay after the first varies, so
// that deliveries failing together do not all retry at the same instant.
const jitter = 0.2

// Schedule is the delay before each attempt of a delivery: attempt n
// waits Schedule[n-1] after the previous one (attempt 1 after the event).
// Its length is the number of attempts.
type Schedule []time.Duration

// ParseSchedule parses a comma-separated list of delays such as
// DefaultSchedule.
func ParseSchedule(s string) (Schedule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("retry schedule is empty: list the delay before each attempt, like " + DefaultSchedule)
	}
	var out Schedule
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("retry schedule entry %d is empty", i+1)
		}
		d, err := time.ParseDuration(entry)
		if err != nil {
			return nil, fmt.Errorf("retry schedule entry %d (%q) is not a duration like 5s, 30m or 2h", i+1, entry)
		}
		if d < 0 {
			return nil, fmt.Errorf("retry schedule entry %d (%q) is negative", i+1, entry)
		}
		out = append(out, d)
	}
	return out, nil
}

// String returns the schedule in the form ParseSchedule reads.
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// Next returns when attempt number attemptsDone+1 is due, counting from
// now (the end of the previous attempt, or the event for the first), and
// false when the schedule has no attempt left. Every delay after the
// first is varied by ±20% using rnd, which returns a number in [0, 1)
// (nil: math/rand/v2).
func (s Schedule) Next(attemptsDone int, now time.Time, rnd func() float64) (time.Time, bool) {
	if attemptsDone < 0 || attemptsDone >= len(s) {
		return time.Time{}, false
	}
	d := s[attemptsDone]
	if attemptsDone > 0 {
		if rnd == nil {
			rnd = rand.Float64
		}
		d = time.Duration(float64(d) * (1 - jitter + 2*jitter*rnd()))
	}
	return now.Add(d), true
}

// Clamp bounds a delay a target asked for (Retry-After) to the schedule's
// smallest non-zero delay and its largest one, so a target can neither
// make hookd hammer it nor park a delivery for ever.
func (s Schedule) Clamp(d time.Duration) time.Duration {
	if len(s) == 0 {
		return d
	}
	var lo, hi time.Duration
	for _, v := range s {
		if v > 0 && (lo == 0 || v < lo) {
			lo = v
		}
		hi = max(hi, v)
	}
	return min(max(d, lo), hi)
}
