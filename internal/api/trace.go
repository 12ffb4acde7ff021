package api

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/internal/webhook"
)

// The routes of intake requests, which name their spans.
const (
	eventRoute  = "/organization/{organizationId}/deployment-event"
	ingestRoute = "/organization/{organizationId}/source/{sourceId}/ingest"
)

// startIntakeSpan starts the span of an intake request to route, in the
// caller's trace when it sent a W3C traceparent.
func (s *Server) startIntakeSpan(r *http.Request, route string, org uuid.UUID) (*http.Request, trace.Span) {
	if _, off := s.tracer.(noop.Tracer); off {
		// Tracing is off: no header to parse, no context to make; the
		// non-recording span of an empty context is shared.
		return r, trace.SpanFromContext(context.Background())
	}
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		return r, span
	}
	span.SetAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("http.route", route),
		attribute.String("hookd.organization.id", org.String()))
	return r.WithContext(ctx), span
}

// traceEvent records the new event's own span (see package tracing) and
// links the request to it; a replayed event's trace already exists.
func (s *Server) traceEvent(ctx context.Context, span trace.Span, receipt webhook.EventReceipt) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("hookd.event.id", receipt.ID.String()),
		attribute.Int("hookd.event.deliveries", receipt.Deliveries),
		attribute.Bool("hookd.event.replayed", receipt.Replayed))
	if !receipt.Replayed {
		tracing.RecordEvent(ctx, s.tracer, receipt.ID, receipt.CreatedAt, attribute.Int("hookd.event.deliveries", receipt.Deliveries))
	}
	span.AddLink(trace.Link{SpanContext: tracing.EventSpanContext(receipt.ID)})
}

// endSpan ends an intake span with its outcome: a refusal is an error of
// the request, with the code of webhook.Error (never a secret).
func endSpan(span trace.Span, err error) {
	if err != nil {
		code := webhook.ErrorCode(err)
		span.SetAttributes(attribute.String("hookd.error.code", code))
		span.SetStatus(codes.Error, code)
	}
	span.End()
}
