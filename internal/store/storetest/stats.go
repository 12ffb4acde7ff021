package storetest

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// A webhook's stats, from a known history of attempts.

// statsAttempt is one attempt of the known history.
type statsAttempt struct {
	ago      time.Duration // before now
	duration time.Duration
	status   int
}

// statsHistory is the history the stats test records and the browser
// test of the console shows: over the last 24 hours, one attempt in each
// of the 20 latest hours (10 ms, 20 ms, ... 200 ms; every fourth a 500,
// one without an answer) and one exactly 24 hours ago; three more 3 days
// ago, and one 8 days ago that no window counts.
func statsHistory() []statsAttempt {
	var h []statsAttempt
	for i := range 20 {
		a := statsAttempt{ago: time.Duration(i)*time.Hour + 30*time.Minute, duration: time.Duration(i+1) * 10 * time.Millisecond, status: 200}
		switch {
		case i%4 == 0:
			a.status = 500
		case i == 7:
			a.status = 0
		}
		h = append(h, a)
	}
	return append(h,
		statsAttempt{ago: 24 * time.Hour, duration: 5 * time.Millisecond, status: 204},
		statsAttempt{ago: 72 * time.Hour, duration: time.Second, status: 200},
		statsAttempt{ago: 72 * time.Hour, duration: 2 * time.Second, status: 200},
		statsAttempt{ago: 72 * time.Hour, duration: 3 * time.Second, status: 503},
		statsAttempt{ago: 8 * 24 * time.Hour, duration: time.Minute, status: 500},
	)
}

func testAttemptStats(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	other := createWebhook(t, s, newWebhook(t, org))
	now := base.Add(30 * 24 * time.Hour)
	history := statsHistory()
	times := make([]time.Time, len(history))
	for i := range times {
		times[i] = base.Add(time.Duration(i) * time.Second)
	}
	var outs []webhook.Outcome
	for i, tk := range deliverTo(t, s, w, times...) {
		a := newAttempt(t, &tk.Delivery, 1, history[i].status, now.Add(-history[i].ago))
		a.Duration = history[i].duration
		outs = append(outs, webhook.Outcome{Attempt: a, Status: webhook.DeliveryFailed})
	}
	// Another webhook's attempt in the window counts for it alone.
	tk := deliverTo(t, s, other, base)[0]
	outs = append(outs, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 500, now.Add(-time.Minute)), Status: webhook.DeliveryFailed})
	complete(t, s, outs...)

	day := webhook.AttemptStatsParams{OrganizationID: org, WebhookID: w.ID, Since: now.Add(-24 * time.Hour), Until: now, Bucket: time.Hour}
	got, err := s.AttemptStats(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	// Worked by hand: 21 attempts; 6 failures (5 answered 500, 1 no
	// answer); durations 5, 10, 20, ..., 200 ms: rank 11 is 100 ms and
	// rank ceil(0.95*21) = 20 is 190 ms.
	want := &webhook.AttemptStats{Attempts: 21, Failures: 6, P50: 100 * time.Millisecond, P95: 190 * time.Millisecond}
	for i := range 24 {
		want.Buckets = append(want.Buckets, webhook.StatsBucket{Start: day.Since.Add(time.Duration(i) * time.Hour)})
	}
	want.Buckets[0].Attempts = 1 // the attempt exactly 24 hours ago
	for i := range 20 {
		b := &want.Buckets[23-i]
		b.Attempts = 1
		if i%4 == 0 || i == 7 {
			b.Failures = 1
		}
	}
	wantEqual(t, "stats of the last 24 hours", got, want)
	wantEqual(t, "stats of the last 24 hours, computed", got, expectedStats(history, 24*time.Hour, time.Hour, day.Since))

	week := webhook.AttemptStatsParams{OrganizationID: org, WebhookID: w.ID, Since: now.Add(-7 * 24 * time.Hour), Until: now}
	got, err = s.AttemptStats(ctx, week)
	if err != nil {
		t.Fatal(err)
	}
	// 24 attempts, 7 failures; rank 12 is 110 ms, rank 23 is 2 s.
	wantEqual(t, "stats of the last 7 days", got, &webhook.AttemptStats{Attempts: 24, Failures: 7, P50: 110 * time.Millisecond, P95: 2 * time.Second})

	// Daily buckets over the week.
	week.Bucket = 24 * time.Hour
	if got, err = s.AttemptStats(ctx, week); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "daily stats of the last 7 days", got, expectedStats(history, 7*24*time.Hour, 24*time.Hour, week.Since))

	// Nothing in the window, or another organization: zeros, every bucket.
	for _, p := range []webhook.AttemptStatsParams{
		{OrganizationID: org, WebhookID: w.ID, Since: now, Until: now.Add(2 * time.Hour), Bucket: time.Hour},
		{OrganizationID: newID(t), WebhookID: w.ID, Since: now.Add(-2 * time.Hour), Until: now, Bucket: time.Hour},
	} {
		got, err := s.AttemptStats(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "stats of an empty window", got, &webhook.AttemptStats{Buckets: []webhook.StatsBucket{{Start: p.Since}, {Start: p.Since.Add(time.Hour)}}})
	}
}

// expectedStats computes what AttemptStats should answer for the attempts
// of history made in the span before base+30 days, in buckets from since.
func expectedStats(history []statsAttempt, span, bucket time.Duration, since time.Time) *webhook.AttemptStats {
	st := &webhook.AttemptStats{}
	var durations []time.Duration
	n := int(span / bucket)
	for i := range n {
		st.Buckets = append(st.Buckets, webhook.StatsBucket{Start: since.Add(time.Duration(i) * bucket)})
	}
	for _, a := range history {
		if a.ago > span || a.ago <= 0 {
			continue
		}
		st.Attempts++
		durations = append(durations, a.duration)
		b := &st.Buckets[int((span-a.ago)/bucket)]
		b.Attempts++
		if a.status < 200 || a.status > 299 {
			st.Failures++
			b.Failures++
		}
	}
	sort.Slice(durations, func(i, j int) bool { return durations[i] < durations[j] })
	if len(durations) > 0 {
		st.P50 = durations[webhook.PercentileRank(50, len(durations))-1]
		st.P95 = durations[webhook.PercentileRank(95, len(durations))-1]
	}
	return st
}
