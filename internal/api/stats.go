package api

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// statsResponse is WebhookStats: the last 24 hours in hourly buckets and
// the last 7 days in daily ones.
type statsResponse struct {
	Last24Hours windowStats `json:"last_24_hours"`
	Last7Days   windowStats `json:"last_7_days"`
}

// windowStats is WebhookWindowStats. The rate and the percentiles are
// null without attempts: "no traffic" is not "0% success".
type windowStats struct {
	Since       time.Time     `json:"since"`
	Until       time.Time     `json:"until"`
	Attempts    int           `json:"attempts"`
	Failures    int           `json:"failures"`
	SuccessRate *float64      `json:"success_rate"`
	P50MS       *float64      `json:"p50_ms"`
	P95MS       *float64      `json:"p95_ms"`
	Buckets     []bucketStats `json:"buckets"`
}

type bucketStats struct {
	Start    time.Time `json:"start"`
	Attempts int       `json:"attempts"`
	Failures int       `json:"failures"`
}

func newWindowStats(p webhook.AttemptStatsParams, st *webhook.AttemptStats) windowStats {
	out := windowStats{Since: p.Since, Until: p.Until, Attempts: st.Attempts, Failures: st.Failures, Buckets: make([]bucketStats, len(st.Buckets))}
	if st.Attempts > 0 {
		rate := float64(st.Attempts-st.Failures) / float64(st.Attempts)
		p50, p95 := milliseconds(st.P50), milliseconds(st.P95)
		out.SuccessRate, out.P50MS, out.P95MS = &rate, &p50, &p95
	}
	for i, b := range st.Buckets {
		out.Buckets[i] = bucketStats{Start: b.Start, Attempts: b.Attempts, Failures: b.Failures}
	}
	return out
}

// milliseconds keeps the microseconds an attempt's duration is stored with.
func milliseconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// statsAtOnce is how many webhooks' stats a node computes at a time;
// the others wait for a place, for as long as their client does. Each
// holds every attempt's duration of the week in memory until it is
// answered (24 MB for 3 million attempts): unbounded, a token's burst of
// requests (HOOKD_API_BURST, 200) for a busy webhook would take gigabytes.
const statsAtOnce = 2

func (s *Server) webhookStats(w http.ResponseWriter, r *http.Request, org uuid.UUID) error {
	h, err := s.webhookFromPath(r, org)
	if err != nil {
		return err
	}
	// Not under the API's bound: the stats read every attempt of the
	// week, which takes 2 s for 3 million on a 2-core VM (SQLite or
	// PostgreSQL), so a webhook with several times as many would be cut
	// off every time it asked. The webhook read above was bounded, so a
	// silent database has been answered 503 already; a PostgreSQL
	// connection that goes silent now fails within 30 s
	// (TCP_USER_TIMEOUT). A client that leaves still ends the read.
	ctx := withoutDeadline(r.Context())
	select {
	case s.statsSlots <- struct{}{}:
		defer func() { <-s.statsSlots }()
	case <-ctx.Done():
		return ctx.Err()
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	var out statsResponse
	for _, win := range []struct {
		span, bucket time.Duration
		dst          *windowStats
	}{{24 * time.Hour, time.Hour, &out.Last24Hours}, {7 * 24 * time.Hour, 24 * time.Hour, &out.Last7Days}} {
		p := webhook.AttemptStatsParams{OrganizationID: org, WebhookID: h.ID, Since: now.Add(-win.span), Until: now, Bucket: win.bucket}
		st, err := s.store.AttemptStats(ctx, p)
		if err != nil {
			return err
		}
		*win.dst = newWindowStats(p, st)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
