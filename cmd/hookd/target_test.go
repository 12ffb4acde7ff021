package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// receipt is one request a target got.
type receipt struct {
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// payloadID is the event id in a STANDARD envelope.
func (r receipt) payloadID() string {
	var env struct {
		PayloadID string `json:"payload_id"`
	}
	json.Unmarshal(r.Body, &env)
	return env.PayloadID
}

// target is a real HTTP receiver on loopback that records every request
// and answers as told, per path.
type target struct {
	*httptest.Server
	mu       sync.Mutex
	receipts []receipt
	// answer returns the status for the n-th request (1-based) to a path;
	// nil answers 200.
	answer  func(path string, n int) int
	hang    map[string]bool // paths whose requests never get an answer
	delay   time.Duration   // how long every answer takes
	release chan struct{}
	unhang  sync.Once
	arrived chan struct{}
}

// releaseHung answers every hanging request, now and from then on.
func (tg *target) releaseHung() {
	tg.unhang.Do(func() { close(tg.release) })
}

func newTarget(t *testing.T) *target {
	tg := &target{hang: map[string]bool{}, release: make(chan struct{}), arrived: make(chan struct{}, 1)}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		tg.receipts = append(tg.receipts, receipt{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()})
		n := 0
		for _, rc := range tg.receipts {
			if rc.Path == r.URL.Path {
				n++
			}
		}
		answer, hang, delay := tg.answer, tg.hang[r.URL.Path], tg.delay
		tg.mu.Unlock()
		select {
		case tg.arrived <- struct{}{}:
		default:
		}
		if hang {
			select {
			case <-tg.release:
			case <-r.Context().Done():
			}
			return
		}
		time.Sleep(delay)
		status := 200
		if answer != nil {
			status = answer(r.URL.Path, n)
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(func() {
		tg.releaseHung()
		tg.Close()
	})
	return tg
}

func (tg *target) setAnswer(f func(path string, n int) int) {
	tg.mu.Lock()
	tg.answer = f
	tg.mu.Unlock()
}

// outage makes the target answer status until the returned switch is
// turned off, and 200 from then on: a receiver down, then back.
func (tg *target) outage(status int) *atomic.Bool {
	down := new(atomic.Bool)
	down.Store(true)
	tg.setAnswer(func(string, int) int {
		if down.Load() {
			return status
		}
		return http.StatusOK
	})
	return down
}

func (tg *target) setHang(path string) {
	tg.mu.Lock()
	tg.hang[path] = true
	tg.mu.Unlock()
}

// got returns the receipts for a path ("" for all).
func (tg *target) got(path string) []receipt {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	var out []receipt
	for _, r := range tg.receipts {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// waitCount waits until a path has at least n receipts.
func (tg *target) waitCount(t *testing.T, path string, n int, d time.Duration) []receipt {
	t.Helper()
	waitFor(t, d, "target to receive requests on "+path, func() bool { return len(tg.got(path)) >= n })
	return tg.got(path)
}
