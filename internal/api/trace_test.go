package api

import (
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hookd/hookd/internal/tracing"
)

// Each intake request is a span that says how it ended: an event taken
// (its id, its deliveries, whether it was a replay), or a refusal, an
// error whose code is webhook.Error's, for a trace backend to count.
func TestIntakeSpans(t *testing.T) {
	h, recorder, org := tracedHarness(t)
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
	spans := endedSpans(recorder, "POST "+eventRoute)
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

// tracedHarness is an API harness whose spans recorder keeps (with the
// ids tracing gives events), and a new organization.
func tracedHarness(t *testing.T) (*apiHarness, *tracetest.SpanRecorder, uuid.UUID) {
	recorder := tracetest.NewSpanRecorder()
	h := newAPIHarness(t, func(d *Deps) {
		d.Tracer = tracing.NewProvider(sdktrace.WithSpanProcessor(recorder)).Tracer("test")
	})
	return h, recorder, uuid.New()
}

// endedSpans are the attributes of the spans named name, in the order
// they ended, with their status under "status".
func endedSpans(recorder *tracetest.SpanRecorder, name string) []map[string]string {
	var spans []map[string]string
	for _, s := range recorder.Ended() {
		if s.Name() != name {
			continue
		}
		attrs := map[string]string{"status": s.Status().Code.String(), "trace": s.SpanContext().TraceID().String()}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		spans = append(spans, attrs)
	}
	return spans
}

// An event a tool reports through a source is traced as one sent to
// /deployment-event: its ingest request is a span that says how it
// ended, and the event has its own span, the root of its trace, which its
// attempts' spans are children of. A request whose signature is refused
// is no span.
func TestIngestSpans(t *testing.T) {
	h, recorder, org := tracedHarness(t)
	tok, _ := h.token(org)
	source, path := newGitHubSource(t, h, tok, "/organization/"+org.String())
	sourceID := source[strings.LastIndexByte(source, '/')+1:]
	for _, req := range []struct {
		secret string
		want   int
	}{{sourceSecret, 202}, {sourceSecret, 202}, {"not-" + sourceSecret, 401}} {
		if st := h.ingest(path, githubStatus, githubHeaders(req.secret, "deployment_status", "d1", githubStatus), nil); st != req.want {
			t.Fatalf("ingest: %d, want %d", st, req.want)
		}
	}
	spans := endedSpans(recorder, "POST "+ingestRoute)
	if len(spans) != 2 {
		t.Fatalf("%d ingest spans, want 2 (none for the refused signature): %v", len(spans), spans)
	}
	first, again := spans[0], spans[1]
	if first["status"] != codes.Unset.String() || first["hookd.event.replayed"] != "false" || first["hookd.event.id"] == "" ||
		first["hookd.source.id"] != sourceID || first["hookd.source.kind"] != "GITHUB" || first["hookd.organization.id"] != org.String() {
		t.Errorf("the tool's delivery's span: %v", first)
	}
	if again["hookd.event.replayed"] != "true" || again["hookd.event.id"] != first["hookd.event.id"] {
		t.Errorf("its redelivery's span: %v", again)
	}
	events := endedSpans(recorder, "event")
	if len(events) != 1 {
		t.Fatalf("%d event spans, want 1 (none for the replay): %v", len(events), events)
	}
	if id := uuid.MustParse(first["hookd.event.id"]); events[0]["hookd.event.id"] != id.String() || events[0]["trace"] != hex.EncodeToString(id[:]) {
		t.Errorf("the event's span %v: want event %s, in the trace of its id", events[0], id)
	}
}
