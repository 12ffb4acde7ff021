// Package tracing sets up hookd's OpenTelemetry traces: off (a no-op
// tracer) unless an OTLP endpoint is configured, OTLP over HTTP when on.
//
// Each event's trace is derived from the event id: its trace id is the
// event id's 16 bytes, and its root span (recorded by the node that
// accepted the event) has a span id derived from it too. Every attempt,
// on whichever node and at whichever retry, is a child of that span, so
// an event and all its attempts form one trace with nothing stored in
// the database. The intake request, in its caller's trace, links to it.
//
// It must never make hookd fail or wait because a collector is down:
// spans are exported in the background and dropped when it cannot keep up.
package tracing

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Name is the instrumentation scope of hookd's spans.
const Name = "github.com/hookd/hookd"

// Setup returns the tracer hookd's components share and a function that
// flushes and stops it. With no endpoint (an OTLP/HTTP traces URL such as
// http://collector:4318/v1/traces) tracing is off: a no-op tracer.
func Setup(ctx context.Context, endpoint, version string) (trace.Tracer, func(context.Context) error, error) {
	if endpoint == "" {
		return noop.NewTracerProvider().Tracer(Name), func(context.Context) error { return nil }, nil
	}
	// The exporter reads the other OTEL_EXPORTER_OTLP_* variables (headers,
	// timeout, compression, TLS files) itself.
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, nil, err
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override these.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "hookd"), attribute.String("service.version", version)),
		resource.WithFromEnv(), resource.WithHost(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, nil, err
	}
	tp := NewProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp.Tracer(Name), tp.Shutdown, nil
}

// NewProvider returns a tracer provider that gives events the ids their
// attempts expect (see StartEvent); Setup uses it, and tests pass it an
// in-memory exporter. Every trace is sampled: events are deployments, few
// enough to keep them all, and a ratio sampler would not spread over
// trace ids that are UUIDv7s.
func NewProvider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	opts = append([]sdktrace.TracerProviderOption{
		sdktrace.WithIDGenerator(eventIDs{}),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}, opts...)
	return sdktrace.NewTracerProvider(opts...)
}

// EventSpanContext is the span context of the event's root span, as any
// node can rebuild it from the event id alone.
func EventSpanContext(event uuid.UUID) trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID(event),
		SpanID:     eventSpanID(event),
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
}

// eventSpanID is the root span's id: the event id's second half (the
// random bits of a UUIDv7), which is never zero.
func eventSpanID(event uuid.UUID) trace.SpanID {
	var id trace.SpanID
	copy(id[:], event[8:])
	return id
}

// RecordEvent records the root span of a newly accepted event, from its
// creation to now, linked to the intake request in ctx.
func RecordEvent(ctx context.Context, tracer trace.Tracer, event uuid.UUID, created time.Time, attrs ...attribute.KeyValue) {
	_, span := tracer.Start(context.WithValue(ctx, eventKey{}, event), "event",
		trace.WithNewRoot(),
		trace.WithTimestamp(created),
		trace.WithLinks(trace.LinkFromContext(ctx)),
		trace.WithAttributes(append(attrs, attribute.String("hookd.event.id", event.String()))...))
	span.End()
}

// StartAttempt starts the span of one attempt at delivering event, a
// child of the event's root span whatever node recorded it.
func StartAttempt(ctx context.Context, tracer trace.Tracer, event uuid.UUID, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx = trace.ContextWithRemoteSpanContext(ctx, EventSpanContext(event))
	return tracer.Start(ctx, "attempt", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

type eventKey struct{}

// eventIDs gives the root span of an event (RecordEvent) the ids
// EventSpanContext derives, and every other span random ones.
type eventIDs struct{}

func (g eventIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if event, ok := ctx.Value(eventKey{}).(uuid.UUID); ok {
		return trace.TraceID(event), eventSpanID(event)
	}
	return randomIDs()
}

func (g eventIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	_, span := randomIDs()
	return span
}

func randomIDs() (trace.TraceID, trace.SpanID) {
	var t trace.TraceID
	var s trace.SpanID
	for !t.IsValid() {
		binary.NativeEndian.PutUint64(t[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(t[8:], rand.Uint64())
	}
	for !s.IsValid() {
		binary.NativeEndian.PutUint64(s[:], rand.Uint64())
	}
	return t, s
}
