package delivery

import (
	"net/http"
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
