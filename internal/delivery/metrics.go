package delivery

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookd/hookd/internal/webhook"
)

type dispatchMetrics struct {
	outcomes *prometheus.CounterVec
	duration prometheus.Histogram
	disabled prometheus.Counter
	stale    prometheus.Counter
	renewed  prometheus.Counter
}

func newDispatchMetrics(reg prometheus.Registerer, store webhook.Store, now func() time.Time) *dispatchMetrics {
	m := &dispatchMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_delivery_attempts_total",
			Help: "Delivery attempts by outcome: succeeded, retry (will be tried again) or failed (for good).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookd_delivery_attempt_duration_seconds",
			Help:    "Time from sending a delivery request to having its answer.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
		}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_webhooks_disabled_total",
			Help: "Webhooks hookd disabled (410 Gone, or failing for too long).",
		}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_delivery_outcomes_stale_total",
			Help: "Attempt outcomes dropped because their lease was lost meanwhile (this node was paused or cut off and another took the delivery over).",
		}),
		renewed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hookd_delivery_leases_renewed_total",
			Help: "Leases of held deliveries renewed because they neared their end (a delivery waiting behind its webhook's in-flight limit, or a slow request): one database row each.",
		}),
	}
	reg.MustRegister(m.outcomes, m.duration, m.disabled, m.stale, m.renewed, &backlogCollector{store: store, now: now})
	for _, o := range []string{"succeeded", "retry", "failed"} {
		m.outcomes.WithLabelValues(o)
	}
	return m
}

// observe counts a recorded outcome. The disables it asked for are
// counted as the store reports them (see Dispatcher.write).
func (m *dispatchMetrics) observe(o webhook.Outcome) {
	switch o.Status {
	case webhook.DeliverySucceeded:
		m.outcomes.WithLabelValues("succeeded").Inc()
	case webhook.DeliveryPending:
		m.outcomes.WithLabelValues("retry").Inc()
	default:
		m.outcomes.WithLabelValues("failed").Inc()
	}
	if o.Attempt.StatusCode != 0 || o.Attempt.Duration > 0 {
		m.duration.Observe(o.Attempt.Duration.Seconds())
	}
}

// backlogCollector asks the database at scrape time, so every node
// reports the shared queue, not its own view of it.
type backlogCollector struct {
	store webhook.Store
	now   func() time.Time
}

var (
	dueDesc    = prometheus.NewDesc("hookd_deliveries_due", "Deliveries due now and not yet claimed (or whose lease expired).", nil, nil)
	oldestDesc = prometheus.NewDesc("hookd_deliveries_oldest_due_age_seconds", "How long the oldest due delivery has been waiting (0 when none).", nil, nil)
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- dueDesc; ch <- oldestDesc }

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.now()
	due, oldest, err := c.store.DeliveryBacklog(ctx, now)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(dueDesc, err)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = now.Sub(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(dueDesc, prometheus.GaugeValue, float64(due))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
