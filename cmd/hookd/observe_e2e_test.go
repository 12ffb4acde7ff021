package main

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// TestOpenMetrics checks /metrics speaks OpenMetrics to a scraper that
// asks for it, and Prometheus' text format to anyone else.
func TestOpenMetrics(t *testing.T) {
	srv := startServer(t, map[string]string{"HOOKD_DATABASE_URL": backends()[0].url(t)})
	for accept, want := range map[string]string{
		"application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5": "application/openmetrics-text",
		"": "text/plain",
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, want) {
			t.Errorf("Accept %q: Content-Type %q, want %s", accept, ct, want)
		}
		if openMetrics := strings.HasSuffix(string(body), "# EOF\n"); openMetrics != (want == "application/openmetrics-text") {
			t.Errorf("Accept %q: body ends %q", accept, body[max(0, len(body)-40):])
		}
		if !strings.Contains(string(body), "hookd_events_accepted_total") && !strings.Contains(string(body), "hookd_requests_throttled") {
			t.Errorf("Accept %q: no hookd series", accept)
		}
	}
}

// TestMetricsWithoutDatabase checks /metrics still answers while the
// database does not: the queue's backlog, which it reads there, is left
// out, but the rest must be scraped, intake_unavailable above all, which
// is what HookdIntakeUnavailable watches for exactly then.
func TestMetricsWithoutDatabase(t *testing.T) {
	dbURL := pgtest.URL(t)
	u, _ := url.Parse(dbURL)
	proxy := newFaultProxy(t, u.Host)
	srv := startServer(t, map[string]string{"HOOKD_DATABASE_URL": proxy.through(t, dbURL)})
	proxy.partition()
	st, _, body := call{t: t, base: srv.URL}.do("GET", "/metrics", nil, nil)
	if st != http.StatusOK || !strings.Contains(string(body), `hookd_requests_throttled_total{reason="intake_unavailable"}`) {
		t.Errorf("/metrics with the database cut off: %d\n%.500s", st, body)
	}
}

// TestAlertingRules checks every hookd series and label the shipped
// Prometheus rules use is one /metrics serves.
func TestAlertingRules(t *testing.T) {
	srv := startServer(t, map[string]string{"HOOKD_DATABASE_URL": backends()[0].url(t)})
	_, _, body := call{t: t, base: srv.URL}.do("GET", "/metrics", nil, nil)
	selector := regexp.MustCompile(`(hookd_[a-z_]+)(\{[^}]*\})?`)
	// label="value", or label=~"a|b": each alternative must be served.
	matcher := regexp.MustCompile(`(\w+)(=~?)"([^"]*)"`)
	n := 0
	for _, r := range alertingRules(t) {
		for _, m := range selector.FindAllStringSubmatch(r.Expr, -1) {
			n++
			var series []string
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, m[1]+" ") || strings.HasPrefix(line, m[1]+"{") {
					series = append(series, line)
				}
			}
			if len(series) == 0 {
				t.Errorf("%s: /metrics serves no %s", r.Alert, m[1])
			}
			for _, lm := range matcher.FindAllStringSubmatch(m[2], -1) {
				values := []string{lm[3]}
				if lm[2] == "=~" {
					values = strings.Split(lm[3], "|")
				}
				for _, v := range values {
					label := lm[1] + `="` + v + `"`
					if !slices.ContainsFunc(series, func(l string) bool { return strings.Contains(l, label) }) {
						t.Errorf("%s: no %s series has %s", r.Alert, m[1], label)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("the rules name no hookd series")
	}
}

// collector is an OTLP/HTTP traces receiver on loopback.
type collector struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			w.WriteHeader(404)
			return
		}
		// ExportTraceServiceRequest is TracesData on the wire.
		var data tracepb.TracesData
		if err := proto.Unmarshal(body, &data); err != nil {
			t.Errorf("collector: %v", err)
			w.WriteHeader(400)
			return
		}
		c.mu.Lock()
		for _, rs := range data.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(c.Close)
	return c
}

// span returns the first span named name in trace (hex), or nil.
func (c *collector) span(name, traceID string) *tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.Name == name && hex.EncodeToString(s.TraceId) == traceID {
			return s
		}
	}
	return nil
}

// linksTo reports whether a span named name links to the span spanID.
func (c *collector) linksTo(name string, spanID []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		for _, l := range s.Links {
			if s.Name == name && string(l.SpanId) == string(spanID) {
				return true
			}
		}
	}
	return false
}

// TestTracing follows one event through a server with tracing on: the
// intake request continues the caller's trace, the event's own trace
// (its id is the event id) holds the attempt, and the target gets the
// attempt's traceparent.
func TestTracing(t *testing.T) {
	col := newCollector(t)
	tg := newTarget(t)
	dbURL := backends()[0].url(t)
	srv := startServer(t, deliveryEnv(dbURL, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": col.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "100", // ms: export within the test
	}))
	o := newOrg(t, srv, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/traced", "events": []string{"DEPLOYMENT_STARTED"}})

	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	o.api.extra = http.Header{"Traceparent": {"00-" + callerTrace + "-" + callerSpan + "-01"}}
	a := o.emit(deploymentEvent("DEPLOYMENT_STARTED", "billing", "PRODUCTION"))
	o.api.extra = nil
	eventTrace := strings.ReplaceAll(a.ID, "-", "")

	got := tg.waitCount(t, "/traced", 1, 20*time.Second)[0]
	parts := strings.Split(got.Header.Get("traceparent"), "-")
	if len(parts) != 4 || parts[1] != eventTrace || parts[3] != "01" {
		t.Fatalf("the target got traceparent %q, want one in trace %s (the event id)", got.Header.Get("traceparent"), eventTrace)
	}

	var request, event, attempt *tracepb.Span
	waitFor(t, 20*time.Second, "the spans to reach the collector", func() bool {
		request = col.span("POST /organization/{organizationId}/deployment-event", callerTrace)
		event, attempt = col.span("event", eventTrace), col.span("attempt", eventTrace)
		return request != nil && event != nil && attempt != nil && col.linksTo("intake commit", request.SpanId)
	})
	if hex.EncodeToString(request.ParentSpanId) != callerSpan || request.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("the intake span's parent is %x (kind %v), want the caller's %s", request.ParentSpanId, request.Kind, callerSpan)
	}
	if len(request.Links) != 1 || hex.EncodeToString(request.Links[0].TraceId) != eventTrace {
		t.Errorf("the intake span links %v, want the event's trace", request.Links)
	}
	if len(event.ParentSpanId) != 0 || len(event.Links) != 1 || hex.EncodeToString(event.Links[0].SpanId) != hex.EncodeToString(request.SpanId) {
		t.Errorf("the event span is not a root linked to the intake request: %v", event)
	}
	if hex.EncodeToString(attempt.ParentSpanId) != hex.EncodeToString(event.SpanId) || hex.EncodeToString(attempt.SpanId) != parts[2] {
		t.Errorf("the attempt span %x (parent %x) is not the event's child the target was told of (%s)", attempt.SpanId, attempt.ParentSpanId, parts[2])
	}
}

// TestTracingCollectorDown checks a collector that does not answer costs
// a warning and a bounded wait at stop, never a delivery.
func TestTracingCollectorDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens there any more
	tg := newTarget(t)
	dbURL := backends()[0].url(t)
	srv := startServer(t, deliveryEnv(dbURL, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": down.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	}))
	o := newOrg(t, srv, dbURL)
	o.createWebhook(map[string]any{"kind": "STANDARD", "target_url": tg.URL + "/down", "events": []string{"DEPLOYMENT_STARTED"}})
	o.emit(deploymentEvent("DEPLOYMENT_STARTED", "billing", "PRODUCTION"))
	if got := tg.waitCount(t, "/down", 1, 20*time.Second)[0]; got.Header.Get("traceparent") == "" {
		t.Error("no traceparent sent")
	}
	start := time.Now()
	if err := srv.Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("hookd exited with %v", err)
	}
	if took := time.Since(start); took > hookdStop+5*time.Second {
		t.Errorf("hookd took %v to stop, more than %v", took, hookdStop)
	}
	if !strings.Contains(srv.logs.String(), "exporting traces failed") {
		t.Errorf("no warning about the collector in the log:\n%s", srv.logs.String())
	}
}
