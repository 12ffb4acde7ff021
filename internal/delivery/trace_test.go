package delivery

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/internal/webhook"
)

// With a tracer, each attempt is a span of its event's trace and the
// target gets its traceparent; without one, no traceparent is sent.
func TestAttemptSpans(t *testing.T) {
	for _, on := range []bool{true, false} {
		headers := make(chan http.Header, 1)
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			headers <- r.Header.Clone()
			w.WriteHeader(500)
		}))
		t.Cleanup(target.Close)
		s := newStore(t)
		w := createWebhook(t, s, target.URL+"/hooks/secret-path")
		recorder := tracetest.NewSpanRecorder()
		cfg := Config{Store: s, Client: target.Client(), Schedule: webhook.Schedule{0, time.Hour}}
		if on {
			cfg.Tracer = tracing.NewProvider(sdktrace.WithSpanProcessor(recorder)).Tracer(tracing.Name)
		}
		d := New(cfg)
		stop := startDispatcher(t, d)
		intake(t, s, d, w, 1)
		var h http.Header
		select {
		case h = <-headers:
		case <-time.After(10 * time.Second):
			t.Fatal("the target got no request")
		}
		stop()
		tp := h.Get("traceparent")
		if !on {
			if tp != "" || len(recorder.Ended()) != 0 {
				t.Errorf("tracing off: traceparent %q and %d spans", tp, len(recorder.Ended()))
			}
			continue
		}
		spans := recorder.Ended()
		if len(spans) != 1 {
			t.Fatalf("%d spans recorded, want the attempt's", len(spans))
		}
		a := spans[0]
		event := h.Get("webhook-id")
		if a.SpanContext().TraceID().String() != strings.ReplaceAll(event, "-", "") || !a.Parent().Equal(tracing.EventSpanContext(uuid.MustParse(event))) {
			t.Errorf("attempt span %v with parent %v, want a child of event %s's span", a.SpanContext(), a.Parent(), event)
		}
		if want := "00-" + a.SpanContext().TraceID().String() + "-" + a.SpanContext().SpanID().String() + "-01"; tp != want {
			t.Errorf("traceparent %q, want %q", tp, want)
		}
		attrs := map[string]string{}
		for _, kv := range a.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if attrs["http.response.status_code"] != "500" || attrs["hookd.delivery.status"] != "pending" || attrs["server.address"] != "127.0.0.1" ||
			attrs["hookd.attempt.number"] != "1" || attrs["hookd.webhook.id"] != w.ID.String() || attrs["hookd.event.id"] != event {
			t.Errorf("attempt attributes %v", attrs)
		}
		for k, v := range attrs {
			if strings.Contains(v, "secret-path") {
				t.Errorf("attribute %s = %q carries the target's path", k, v)
			}
		}
		if a.Status().Description != "the target answered 500" || a.SpanKind() != trace.SpanKindClient {
			t.Errorf("attempt status %+v kind %v", a.Status(), a.SpanKind())
		}
	}
}
