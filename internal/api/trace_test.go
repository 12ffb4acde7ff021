package api

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Each intake request is a span that says how it ended: an event taken
// (its id, its deliveries, whether it was a replay), or a refusal, an
// error whose code is webhook.Error's, for a trace backend to count.
func TestIntakeSpans(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	h := newAPIHarness(t, func(d *Deps) {
		d.Tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder)).Tracer("test")
	})
	org := uuid.New()
	tok, _ := h.token(org)
	base := "/organization/" + org.String()
	if st := h.do(tok, "POST", base+"/webhook", `{`+editBase+`}`, nil); st != 201 {
		t.Fatalf("create: %d", st)
	}
	key := http.Header{"Idempotency-Key": {"k1"}}
	for _, req := range []struct {
		header http.Header
		want   int
	}{{key, 202}, {key, 202}, {http.Header{"Idempotency-Key": {sourceKeyPrefix + "x"}}, 400}} {
		if st, _ := h.doWith(tok, "POST", base+"/deployment-event", eventBody, req.header, nil); st != req.want {
			t.Fatalf("event: %d, want %d", st, req.want)
		}
	}
	var spans []map[string]string
	for _, s := range recorder.Ended() {
		if s.Name() != "POST /organization/{organizationId}/deployment-event" {
			continue
		}
		attrs := map[string]string{"status": s.Status().Code.String()}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		spans = append(spans, attrs)
	}
	if len(spans) != 3 {
		t.Fatalf("%d intake spans, want 3: %v", len(spans), spans)
	}
	first, again, refused := spans[0], spans[1], spans[2]
	if first["status"] != codes.Unset.String() || first["hookd.event.replayed"] != "false" || first["hookd.event.deliveries"] != "1" ||
		first["hookd.error.code"] != "" || first["hookd.organization.id"] != org.String() {
		t.Errorf("the event's span: %v", first)
	}
	if again["hookd.event.replayed"] != "true" || again["hookd.event.id"] != first["hookd.event.id"] || again["status"] != codes.Unset.String() {
		t.Errorf("its replay's span: %v", again)
	}
	if refused["status"] != codes.Error.String() || refused["hookd.error.code"] != "invalid" || refused["hookd.event.id"] != "" {
		t.Errorf("a refused event's span: %v", refused)
	}
}
