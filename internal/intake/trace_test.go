package intake

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Each transaction is a span linked to every request it committed for.
func TestCommitSpans(t *testing.T) {
	db := newStore(t)
	org := uuid.New()
	createWebhook(t, db, org)
	recorder := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder)).Tracer("test")
	c := New(Config{Store: db, Workers: 1, MaxBatch: 64, MaxWait: time.Hour, Tracer: tracer})
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { c.Run(ctx); close(stopped) }()

	var wg sync.WaitGroup
	requests := make(chan trace.SpanID, 20)
	for range 20 {
		wg.Go(func() {
			rctx, span := tracer.Start(context.Background(), "request")
			defer span.End()
			if _, err := c.Accept(rctx, event(org)); err != nil {
				t.Error(err)
			}
			requests <- span.SpanContext().SpanID()
		})
	}
	wg.Wait()
	stop()
	<-stopped
	close(requests)

	linked := map[trace.SpanID]bool{}
	events, deliveries := 0, 0
	for _, s := range recorder.Ended() {
		if s.Name() != "intake commit" {
			continue
		}
		for _, l := range s.Links() {
			linked[l.SpanContext.SpanID()] = true
		}
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "hookd.batch.events":
				events += int(kv.Value.AsInt64())
			case "hookd.batch.deliveries":
				deliveries += int(kv.Value.AsInt64())
			}
		}
	}
	for id := range requests {
		if !linked[id] {
			t.Errorf("request span %s is linked from no commit span", id)
		}
	}
	if events != 20 || deliveries != 20 {
		t.Errorf("commit spans count %d events and %d deliveries, want 20 and 20", events, deliveries)
	}
}
