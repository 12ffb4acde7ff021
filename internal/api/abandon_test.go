package api

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// An intake request its client abandons while the event commits is not
// an error of the server's: it is logged at debug level, never ERROR.
func TestIntakeAbandonedIsNotAnError(t *testing.T) {
	var logs syncBuffer
	arrived := make(chan struct{})
	h := newAPIHarness(t, func(d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		// As the committer does: wait for the commit or the request's end.
		d.Intake = intakeFunc(func(ctx context.Context, ev *webhook.Event) (webhook.EventReceipt, error) {
			close(arrived)
			<-ctx.Done()
			return webhook.EventReceipt{}, ctx.Err()
		})
	})
	org := uuid.New()
	token, _ := h.token(org)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "POST", h.srv.URL+"/organization/"+org.String()+"/deployment-event",
		strings.NewReader(`{"event_type":"DEPLOYMENT_STARTED","project":{"name":"p"},"environment":{"name":"e","mode":"STAGING"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Token "+token)
	sent := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		sent <- err
	}()
	<-arrived
	cancel()
	if err := <-sent; err == nil {
		t.Fatal("the abandoned request got an answer")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "request abandoned by the client") {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned request was not logged at debug level:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("an abandoned request was logged as an error:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines to write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// intakeFunc is an Intake made of one function.
type intakeFunc func(ctx context.Context, ev *webhook.Event) (webhook.EventReceipt, error)

func (f intakeFunc) Accept(ctx context.Context, ev *webhook.Event) (webhook.EventReceipt, error) {
	return f(ctx, ev)
}
