package intake

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/internal/webhook"
)

// startCommitSpan starts the span of one transaction. It is a trace of
// its own, linked to each request it commits for: a batch serves many.
func (c *Committer) startCommitSpan(batch []request, lease webhook.Lease) (context.Context, trace.Span) {
	if c.tracer == nil {
		return context.Background(), trace.SpanFromContext(context.Background())
	}
	ctx, span := c.tracer.Start(context.Background(), "intake commit", trace.WithNewRoot())
	if span.IsRecording() {
		for _, r := range batch {
			if sc := trace.SpanContextFromContext(r.ctx); sc.IsValid() {
				span.AddLink(trace.Link{SpanContext: sc})
			}
		}
		span.SetAttributes(attribute.Int("hookd.batch.events", len(batch)), attribute.Int("hookd.batch.lease_limit", lease.Limit))
	}
	return ctx, span
}

func endCommitSpan(span trace.Span, receipts []webhook.EventReceipt, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, webhook.ErrorCode(err))
	} else {
		var deliveries, leased int
		for _, r := range receipts {
			deliveries += r.Deliveries
			leased += len(r.Tasks)
		}
		span.SetAttributes(attribute.Int("hookd.batch.deliveries", deliveries), attribute.Int("hookd.batch.leased", leased))
	}
	span.End()
}
