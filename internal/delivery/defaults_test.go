package delivery

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The answer body's deadline: 2 s by default, never longer than a
// request's Timeout, and what is configured is kept.
func TestResponseBodyTimeout(t *testing.T) {
	for _, c := range []struct {
		timeout, body, want time.Duration
	}{
		{0, 0, 2 * time.Second},
		{time.Second, 0, time.Second},
		{5 * time.Second, 3 * time.Second, 3 * time.Second},
	} {
		d := New(Config{Store: &fakeQueue{}, Timeout: c.timeout, ResponseBodyTimeout: c.body})
		if got := d.cfg.ResponseBodyTimeout; got != c.want {
			t.Errorf("Timeout %s, ResponseBodyTimeout %s: %s, want %s", c.timeout, c.body, got, c.want)
		}
	}
}

// A failure that repeats is logged once, then once a minute at most with
// how many times it happened meanwhile.
func TestQuietLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var q quietLog
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	q.error(log, t0, "claiming failed")
	if got := buf.String(); !strings.Contains(got, "claiming failed") || strings.Contains(got, "repeated") {
		t.Fatalf("first failure logged as %q, want it without a repeat count", got)
	}
	buf.Reset()
	q.error(log, t0.Add(time.Second), "claiming failed")
	q.error(log, t0.Add(time.Minute-time.Nanosecond), "claiming failed")
	if buf.Len() != 0 {
		t.Fatalf("logged again within the minute: %q", buf.String())
	}
	q.error(log, t0.Add(time.Minute), "claiming failed")
	if got := buf.String(); !strings.Contains(got, "repeated=2") {
		t.Fatalf("after a minute logged %q, want repeated=2", got)
	}
	buf.Reset()
	q.error(log, t0.Add(2*time.Minute+time.Second), "claiming failed")
	if got := buf.String(); got == "" || strings.Contains(got, "repeated") {
		t.Fatalf("after a quiet minute logged %q, want the failure without a repeat count", got)
	}
}

// The client's connection settings: idle connections kept 90 s, a TLS
// handshake bounded by the request's timeout and 10 s at most.
func TestClientSettings(t *testing.T) {
	for _, c := range []struct {
		timeout, handshake time.Duration
	}{
		{0, 10 * time.Second},
		{3 * time.Second, 3 * time.Second},
		{time.Minute, 10 * time.Second},
	} {
		cl := NewHTTPClient(ClientOptions{Timeout: c.timeout})
		tr := cl.Transport.(*http.Transport)
		if tr.IdleConnTimeout != 90*time.Second || tr.TLSHandshakeTimeout != c.handshake || tr.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost ||
			tr.MaxResponseHeaderBytes != 64<<10 || tr.ExpectContinueTimeout != time.Second {
			t.Errorf("timeout %s: idle %s, handshake %s (want %s), idle per host %d, header bytes %d", c.timeout,
				tr.IdleConnTimeout, tr.TLSHandshakeTimeout, c.handshake, tr.MaxIdleConnsPerHost, tr.MaxResponseHeaderBytes)
		}
		want := c.timeout
		if want == 0 {
			want = DefaultTimeout
		}
		if cl.Timeout != want {
			t.Errorf("client timeout %s, want %s", cl.Timeout, want)
		}
	}
	if tr := NewHTTPClient(ClientOptions{MaxIdleConnsPerHost: 3}).Transport.(*http.Transport); tr.MaxIdleConnsPerHost != 3 {
		t.Errorf("idle per host %d, want the configured 3", tr.MaxIdleConnsPerHost)
	}
}
