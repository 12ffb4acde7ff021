package intake

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

func newStore(t *testing.T) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "intake.db"), storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// createWebhook stores a webhook of org that every event matches.
func createWebhook(t *testing.T, db *sqlite.DB, org uuid.UUID) *webhook.Webhook {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	hook := &webhook.Webhook{ID: uuid.New(), OrganizationID: org, CreatedAt: now, UpdatedAt: now, Kind: webhook.KindStandard,
		TargetURL: "https://example.com", Enabled: true, Events: webhook.EventTypes, ProjectNamesFilter: []string{}, EnvironmentTypesFilter: []webhook.EnvironmentMode{}}
	if err := db.WebhookCreate(context.Background(), hook, 0, nil); err != nil {
		t.Fatal(err)
	}
	return hook
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
	hook := createWebhook(t, db, org)
	// Waiting for room is unbounded here: this test is about grouping,
	// and a slow fsync on a busy machine must not turn into ErrBusy.
	c := New(Config{Store: db, Workers: 1, MaxBatch: 64, MaxWait: time.Hour})
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

// sender is a Sender with a fixed room per reservation that records what
// it is handed.
type sender struct {
	room     int
	mu       sync.Mutex
	reserved int // granted and not yet settled by Send
	tasks    []*webhook.Task
	sends    int
}

func (s *sender) Reserve(n int) webhook.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = min(n, s.room)
	s.reserved += n
	now := time.Now()
	return webhook.Lease{Now: now, Until: now.Add(time.Minute), Limit: n}
}

func (s *sender) Send(tasks []*webhook.Task, lease webhook.Lease) {
	reserved := lease.Limit
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(tasks) > reserved {
		panic("more tasks than reserved")
	}
	s.reserved -= reserved
	s.tasks = append(s.tasks, tasks...)
	s.sends++
}

// TestSender checks deliveries leased at intake are handed to the Sender
// within its room, stored as running, and the others left pending for a
// claim; every reservation is settled, failed commits included.
func TestSender(t *testing.T) {
	db := newStore(t)
	ctx := context.Background()
	org := uuid.New()
	hook := createWebhook(t, db, org)
	s := &sender{room: 3}
	c := New(Config{Store: db, Sender: s, Workers: 1, MaxBatch: 64})
	runCtx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { c.Run(runCtx); close(stopped) }()

	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			ev := event(org)
			if i%25 == 0 {
				ev.OnlyWebhookID = uuid.New() // fails its batch, which is retried one by one
			}
			c.Accept(ctx, ev)
		})
	}
	wg.Wait()
	stop()
	<-stopped

	if s.reserved != 0 {
		t.Fatalf("%d reserved deliveries never settled", s.reserved)
	}
	if len(s.tasks) == 0 || len(s.tasks) > 3*s.sends {
		t.Fatalf("%d tasks handed over in %d sends with a room of 3", len(s.tasks), s.sends)
	}
	handed := map[uuid.UUID]bool{}
	for _, tk := range s.tasks {
		handed[tk.Delivery.ID] = true
		if tk.Webhook.ID != hook.ID || tk.Event.OrganizationID != org {
			t.Fatalf("task %+v is not for the webhook", tk.Delivery)
		}
	}
	list, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: hook.ID, Limit: 1000})
	if err != nil || len(list) != 96 {
		t.Fatalf("%d deliveries stored (%v), want 96", len(list), err)
	}
	for _, d := range list {
		want := webhook.DeliveryPending
		if handed[d.ID] {
			want = webhook.DeliveryRunning
			delete(handed, d.ID)
		}
		if d.Status != want {
			t.Errorf("delivery %s is %s, want %s", d.ID, d.Status, want)
		}
	}
	if len(handed) != 0 {
		t.Fatalf("%d tasks handed over are not stored deliveries", len(handed))
	}
}
