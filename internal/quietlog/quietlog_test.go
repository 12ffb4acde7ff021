package quietlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A failure that repeats is logged once, then once a minute at most with
// how many times it happened meanwhile.
func TestLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var q Log
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	q.Error(log, t0, "claiming failed")
	if got := buf.String(); !strings.Contains(got, "claiming failed") || strings.Contains(got, "repeated") {
		t.Fatalf("first failure logged as %q, want it without a repeat count", got)
	}
	buf.Reset()
	q.Error(log, t0.Add(time.Second), "claiming failed")
	q.Error(log, t0.Add(time.Minute-time.Nanosecond), "claiming failed")
	if buf.Len() != 0 {
		t.Fatalf("logged again within the minute: %q", buf.String())
	}
	q.Error(log, t0.Add(time.Minute), "claiming failed")
	if got := buf.String(); !strings.Contains(got, "repeated=2") {
		t.Fatalf("after a minute logged %q, want repeated=2", got)
	}
	buf.Reset()
	q.Error(log, t0.Add(2*time.Minute+time.Second), "claiming failed")
	if got := buf.String(); got == "" || strings.Contains(got, "repeated") {
		t.Fatalf("after a quiet minute logged %q, want the failure without a repeat count", got)
	}
}
