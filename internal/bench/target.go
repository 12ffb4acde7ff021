package bench

import (
	"bytes"
	"context"
	"hash/maphash"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is the receiver every scenario delivers to: a plain http.Server
// on loopback that records, per webhook and event, when the first request
// and the first accepted request arrived. It is part of what is measured,
// so it does as little as it can: it reads the body, finds payload_id with
// bytes.Index instead of decoding the JSON, and updates one of many
// mutex-guarded shards.
type Target struct {
	URL string // http://127.0.0.1:PORT; webhook i posts to URL + "/h/i"

	// SlowHook is the webhook index (-1: none) whose requests are answered
	// after SlowDelay; its receipts do not count in Delivered.
	SlowHook  int
	SlowDelay time.Duration
	// FailFirst answers 500 to the first request of every (webhook, event),
	// and 200 to the next ones.
	FailFirst bool

	clock  *clock
	srv    *http.Server
	seed   maphash.Seed
	shards [targetShards]shard
	// delivered counts (webhook, event) pairs accepted at least once, slow
	// webhook excepted: what scenarios wait on.
	delivered atomic.Int64
	requests  atomic.Int64
	stop      chan struct{}
}

const targetShards = 64

// key names one delivery: a webhook (by index) and an event (by id).
type key struct {
	hook int32
	id   [36]byte
}

// record is what the target saw of one delivery. Times are clock offsets;
// 0 means never.
type record struct {
	first   time.Duration // first request
	ok      time.Duration // first request answered 2xx
	n       int32         // requests
	accepts int32         // requests answered 2xx
}

type shard struct {
	mu sync.Mutex
	m  map[key]record
	_  [40]byte // keep shards on separate cache lines
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// targetOptions say how a target answers; they are fixed before it
// serves, so the handler reads them without locking.
type targetOptions struct {
	slowHook  int // -1: none
	slowDelay time.Duration
	failFirst bool
}

// startTarget listens on a free loopback port and serves until Close.
func startTarget(c *clock, o targetOptions) (*Target, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t := &Target{URL: "http://" + ln.Addr().String(), SlowHook: o.slowHook, SlowDelay: o.slowDelay, FailFirst: o.failFirst,
		clock: c, seed: maphash.MakeSeed(), stop: make(chan struct{})}
	for i := range t.shards {
		t.shards[i].m = make(map[key]record)
	}
	t.srv = &http.Server{Handler: t, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go t.srv.Serve(ln)
	return t, nil
}

// Close stops the server, answering slow requests at once.
func (t *Target) Close() {
	close(t.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.srv.Shutdown(ctx); err != nil {
		t.srv.Close()
	}
}

func (t *Target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(r.Body)
	now := t.clock.now()
	t.requests.Add(1)
	status := http.StatusOK
	hook := hookIndex(r.URL.Path)
	if id, ok := PayloadID(buf.Bytes()); ok && err == nil {
		k := key{hook: int32(hook)}
		copy(k.id[:], id)
		if t.FailFirst && t.record(k, now) == 1 {
			status = http.StatusInternalServerError
		}
		if status == http.StatusOK {
			t.accept(k, now, hook != t.SlowHook)
		}
	}
	bodyPool.Put(buf)
	if hook == t.SlowHook {
		timer := time.NewTimer(t.SlowDelay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
		case <-t.stop:
		}
		timer.Stop()
	}
	w.WriteHeader(status)
}

func (t *Target) shard(k key) *shard {
	return &t.shards[maphash.Bytes(t.seed, k.id[:])%targetShards]
}

// record notes a request and returns how many the delivery has had.
func (t *Target) record(k key, now time.Duration) int32 {
	s := t.shard(k)
	s.mu.Lock()
	rec := s.m[k]
	if rec.n == 0 {
		rec.first = now
	}
	rec.n++
	s.m[k] = rec
	s.mu.Unlock()
	return rec.n
}

// accept notes a 2xx answer (and the request, unless FailFirst already did).
func (t *Target) accept(k key, now time.Duration, counted bool) {
	s := t.shard(k)
	s.mu.Lock()
	rec := s.m[k]
	if !t.FailFirst {
		if rec.n == 0 {
			rec.first = now
		}
		rec.n++
	}
	rec.accepts++
	first := rec.ok == 0
	if first {
		rec.ok = now
	}
	s.m[k] = rec
	s.mu.Unlock()
	if first && counted {
		t.delivered.Add(1)
	}
}

// Delivered is how many (webhook, event) pairs got a 2xx answer, the slow
// webhook's excepted.
func (t *Target) Delivered() int64 { return t.delivered.Load() }

// lookup returns the record of one delivery.
func (t *Target) lookup(hook int, id string) (record, bool) {
	k := key{hook: int32(hook)}
	copy(k.id[:], id)
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.m[k]
	return rec, ok
}

// pending returns the deliveries of keys not accepted yet, in keys's
// own array.
func (t *Target) pending(keys []key) []key {
	out := keys[:0]
	for _, k := range keys {
		s := t.shard(k)
		s.mu.Lock()
		ok := s.m[k].ok != 0
		s.mu.Unlock()
		if !ok {
			out = append(out, k)
		}
	}
	return out
}

// unknown counts the deliveries to the given webhooks accepted for
// events known does not hold.
func (t *Target) unknown(hooks []int, known map[[36]byte]struct{}) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for k, rec := range s.m {
			if _, ok := known[k.id]; !ok && rec.ok != 0 && slices.Contains(hooks, int(k.hook)) {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// payloadIDField is how RenderStandard writes the event id.
var payloadIDField = []byte(`"payload_id":"`)

// PayloadID returns the payload_id of a STANDARD envelope, found by
// searching rather than decoding. The key comes before the payload in
// RenderStandard's output, so the first match is the envelope's own.
func PayloadID(body []byte) ([]byte, bool) {
	i := bytes.Index(body, payloadIDField)
	if i < 0 {
		return nil, false
	}
	rest := body[i+len(payloadIDField):]
	if len(rest) < 37 || rest[36] != '"' {
		return nil, false
	}
	return rest[:36], true
}

// hookIndex reads i from a path "/h/i"; -1 when it is not one.
func hookIndex(path string) int {
	rest, ok := strings.CutPrefix(path, "/h/")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest)
	if err != nil {
		return -1
	}
	return i
}

// clock gives every measurement one origin in this process: latencies are
// differences of its monotonic offsets.
type clock struct{ epoch time.Time }

func newClock() *clock { return &clock{epoch: time.Now()} }

// now is never 0, so 0 can mean "never" in records.
func (c *clock) now() time.Duration { return time.Since(c.epoch) + 1 }
