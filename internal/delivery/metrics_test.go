package delivery

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookd/hookd/internal/webhook"
)

// The attempt duration histogram counts the requests that were made: one
// answered (however fast) or cut off after a while, not a delivery failed
// unsent because its webhook was disabled, which would pull the
// percentiles toward zero.
func TestDurationCountsRequestsMade(t *testing.T) {
	m := newDispatchMetrics(prometheus.NewRegistry(), &fakeQueue{}, fixedNow)
	for _, o := range []webhook.Outcome{
		{Status: webhook.DeliverySucceeded, Attempt: webhook.Attempt{StatusCode: 200}},                         // answered within the clock's grain
		{Status: webhook.DeliveryPending, Attempt: webhook.Attempt{Duration: 15 * time.Second}},                // timed out
		{Status: webhook.DeliveryFailed, Attempt: webhook.Attempt{Error: "not sent: the webhook is disabled"}}, // unsent
		{Status: webhook.DeliveryFailed, Attempt: webhook.Attempt{Error: "not sent: the webhook is disabled"}}, // unsent
	} {
		m.observe(o)
	}
	var got dto.Metric
	if err := m.duration.Write(&got); err != nil {
		t.Fatal(err)
	}
	if n, sum := got.GetHistogram().GetSampleCount(), got.GetHistogram().GetSampleSum(); n != 2 || sum != 15 {
		t.Errorf("%d requests observed, %g s in all; want 2 and 15 s", n, sum)
	}
}
