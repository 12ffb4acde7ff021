package tracing

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// An event's span and the attempts recorded by another node (a provider
// of its own) form one trace, derived from the event id alone.
func TestEventAndAttemptsShareATrace(t *testing.T) {
	intakeNode, deliveryNode := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	intakeTracer := NewProvider(sdktrace.WithSpanProcessor(intakeNode)).Tracer(Name)
	deliveryTracer := NewProvider(sdktrace.WithSpanProcessor(deliveryNode)).Tracer(Name)

	event := uuid.Must(uuid.NewV7())
	ctx, request := intakeTracer.Start(context.Background(), "request")
	RecordEvent(ctx, intakeTracer, event, time.Now().Add(-time.Millisecond))
	request.End()

	ctx, attempt := StartAttempt(context.Background(), deliveryTracer, event)
	h := http.Header{}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	attempt.End()

	ended := intakeNode.Ended()
	if len(ended) != 2 || ended[0].Name() != "event" {
		t.Fatalf("intake node recorded %d spans, want the event's then the request's", len(ended))
	}
	ev := ended[0]
	if ev.SpanContext().TraceID() != trace.TraceID(event) || ev.SpanContext().SpanID() != EventSpanContext(event).SpanID() {
		t.Errorf("event span %v, want the ids derived from %s", ev.SpanContext(), event)
	}
	if ev.Parent().IsValid() {
		t.Errorf("the event span has a parent %v; it is its trace's root", ev.Parent())
	}
	if links := ev.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != request.SpanContext().SpanID() {
		t.Errorf("event span links %v, want the intake request", links)
	}

	got := deliveryNode.Ended()
	if len(got) != 1 {
		t.Fatalf("delivery node recorded %d spans", len(got))
	}
	a := got[0]
	if a.Parent().SpanID() != ev.SpanContext().SpanID() || a.SpanContext().TraceID() != ev.SpanContext().TraceID() {
		t.Errorf("attempt span %v has parent %v, want a child of the event span %v", a.SpanContext(), a.Parent(), ev.SpanContext())
	}
	if a.SpanKind() != trace.SpanKindClient {
		t.Errorf("attempt span kind %v", a.SpanKind())
	}
	want := "00-" + a.SpanContext().TraceID().String() + "-" + a.SpanContext().SpanID().String() + "-01"
	if got := h.Get("traceparent"); got != want {
		t.Errorf("traceparent %q, want %q", got, want)
	}
}

// Off, nothing records, so nothing is sent to targets either.
func TestSetupOff(t *testing.T) {
	tracer, stop, err := Setup(context.Background(), "", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	if _, span := StartAttempt(context.Background(), tracer, uuid.New()); span.IsRecording() {
		t.Error("a span records with tracing off")
	}
}
