package delivery

import (
	"context"
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/hookd/hookd/internal/tracing"
	"github.com/hookd/hookd/internal/webhook"
)

// tracedAttempt is attempt in a span of the event's trace (see package
// tracing). The target's URL is reduced to its host: Slack's and many
// others' URLs carry their secret in the path.
func (d *Dispatcher) tracedAttempt(ctx context.Context, t *webhook.Task) webhook.Outcome {
	ctx, span := tracing.StartAttempt(ctx, d.cfg.Tracer, t.Event.ID)
	if span.IsRecording() { // off, nothing is spent on attributes
		host := ""
		if u, err := url.Parse(t.Webhook.TargetURL); err == nil {
			host = u.Hostname()
		}
		span.SetAttributes(
			attribute.String("hookd.event.id", t.Event.ID.String()),
			attribute.String("hookd.delivery.id", t.Delivery.ID.String()),
			attribute.String("hookd.webhook.id", t.Webhook.ID.String()),
			attribute.String("hookd.webhook.kind", string(t.Webhook.Kind)),
			attribute.Int("hookd.attempt.number", t.Delivery.Attempts+1),
			attribute.String("http.request.method", "POST"),
			attribute.String("server.address", host))
	}
	o := d.attempt(ctx, t)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("hookd.delivery.status", string(o.Status)))
		if o.Attempt.StatusCode != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", o.Attempt.StatusCode))
		}
		if o.Status != webhook.DeliverySucceeded {
			msg := o.Attempt.Error
			if msg == "" {
				msg = fmt.Sprintf("the target answered %d", o.Attempt.StatusCode)
			}
			span.SetStatus(codes.Error, msg)
		}
		span.End()
	}
	return o
}
