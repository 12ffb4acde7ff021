package webhook

import (
	"time"

	"github.com/google/uuid"
)

// AttemptStatsParams selects the attempts AttemptStats summarizes: one
// webhook's, made in [Since, Until).
type AttemptStatsParams struct {
	OrganizationID uuid.UUID
	WebhookID      uuid.UUID
	Since          time.Time
	Until          time.Time
	// Bucket > 0 also counts the attempts per bucket of this width, the
	// first starting at Since; the last may end after Until.
	Bucket time.Duration
}

// AttemptStats is how a webhook's attempts went over a window. A failure
// is any attempt without a 2xx answer (an error status, no answer, or
// not sent). P50 and P95 are nearest-rank percentiles of the attempts'
// durations (the smallest duration at least that share of attempts took
// no longer than), zero without attempts.
type AttemptStats struct {
	Attempts int
	Failures int
	P50      time.Duration
	P95      time.Duration
	Buckets  []StatsBucket // every bucket of the window, empty ones included
}

// StatsBucket counts the attempts made in [Start, Start+width).
type StatsBucket struct {
	Start    time.Time
	Attempts int
	Failures int
}

// PercentileRank is the 1-based rank of the p-th percentile (0 < p <=
// 100) of n sorted values by the nearest-rank method: ceil(p*n/100),
// computed in integers so every backend picks the same value.
func PercentileRank(p, n int) int {
	return (p*n + 99) / 100
}

// BucketCount is how many buckets of width cover [since, until).
func BucketCount(since, until time.Time, width time.Duration) int {
	if width <= 0 || !until.After(since) {
		return 0
	}
	span := until.Sub(since)
	return int((span + width - 1) / width)
}
