package api

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's own Prometheus series.
type metrics struct {
	eventsAccepted *prometheus.CounterVec
	throttled      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		eventsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookd_events_accepted_total",
			Help: "Deployment events accepted (committed) by intake, by event type.",
		}, []string{"event_type"}),
	}
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookd_requests_throttled_total",
		Help: "Requests refused by an abuse limit: api_rate, intake_rate and auth_failures (429); or for the database: intake_unavailable (503: the database is behind or unreachable), api_unavailable (503 to a management request: the database did not answer within 10 s, or is unreachable, busy or full).",
	}, []string{"reason"})
	for _, reason := range []string{"api_rate", "intake_rate", "auth_failures", "intake_unavailable", "api_unavailable"} {
		m.throttled.WithLabelValues(reason)
	}
	reg.MustRegister(m.eventsAccepted, m.throttled)
	return m
}
