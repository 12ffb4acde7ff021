package intake

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/webhook"
)

func newStore(t *testing.T) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "intake.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

func event(org uuid.UUID) *webhook.Event {
	return &webhook.Event{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: time.Now().UTC(),
		Type: webhook.EventDeploymentStarted, ProjectName: "p", EnvironmentMode: webhook.ModeStaging, Payload: []byte(`{}`)}
}

// TestConcurrentAccepts checks every receipt handed out is a committed
// event with its delivery, and that one bad event in a group fails alone.
func TestConcurrentAccepts(t *testing.T) {
	db := newStore(t)
	ctx := context.Background()
	org := uuid.New()
	now := time.Now().UTC().Truncate(time.Microsecond)
	hook := &webhook.Webhook{ID: uuid.New(), OrganizationID: org, CreatedAt: now, UpdatedAt: now, Kind: webhook.KindStandard,
		TargetURL: "https://example.com", Enabled: true, Events: webhook.EventTypes, ProjectNamesFilter: []string{}, EnvironmentTypesFilter: []webhook.EnvironmentMode{}}
	if err := db.WebhookCreate(ctx, hook, 0); err != nil {
		t.Fatal(err)
	}
	// Waiting for room is unbounded here: this test is about grouping,
	// and a slow fsync on a busy machine must not turn into ErrBusy.
	c := New(db, 1, 64, time.Hour)
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { c.Run(runCtx); close(stopped) }()

	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, failed := 0, 0
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := event(org)
			if i%50 == 0 {
				ev.OnlyWebhookID = uuid.New() // no such webhook: this one must fail, alone
			}
			r, err := c.Accept(ctx, ev)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if i%50 != 0 {
					t.Errorf("event %d: %v", i, err)
				}
				return
			}
			ok++
			if r.ID != ev.ID || r.Deliveries != 1 {
				t.Errorf("event %d: receipt %+v", i, r)
			}
		}()
	}
	wg.Wait()
	stop()
	<-stopped
	if ok != 196 || failed != 4 {
		t.Fatalf("%d accepted, %d failed; want 196 and 4", ok, failed)
	}
	list, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: hook.ID})
	if err != nil || len(list) != 196 {
		t.Fatalf("%d deliveries stored (%v), want 196", len(list), err)
	}
	if _, err := c.Accept(ctx, event(org)); webhook.ErrorCode(err) != webhook.EUnavailable {
		t.Fatalf("accept after stop: %v, want unavailable", err)
	}
}
