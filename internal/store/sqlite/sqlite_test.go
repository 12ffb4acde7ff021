package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) webhook.Store {
		return open(t, filepath.Join(t.TempDir(), "hookd.db"))
	})
}

func TestMigrateIdempotent(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "hookd.db"))
	for range 2 {
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestTwoHandles stands in for two processes (server and CLI) sharing
// one file: both migrate at once, and each sees what the other writes.
func TestTwoHandles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	a, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	errs := make(chan error, 2)
	for _, db := range []*sqlite.DB{a, b} {
		go func() { errs <- db.Migrate(ctx) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}

	org := uuid.Must(uuid.NewV7())
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tok := &webhook.Token{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, Name: "cli", Hash: []byte("h"), CreatedAt: at}
	if err := b.TokenCreate(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	got, err := a.TokenGetByHash(ctx, tok.Hash)
	if err != nil || got.ID != tok.ID {
		t.Fatalf("other handle: %v, %v", got, err)
	}

	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, UpdatedAt: at,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", Enabled: true, Events: webhook.EventTypes}
	if err := a.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	// Interleaved writes from both handles.
	for i := range 20 {
		db := []*sqlite.DB{a, b}[i%2]
		ev := &webhook.Event{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentStarted,
			ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
		if _, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := b.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID})
	if err != nil || len(ds) != 20 {
		t.Fatalf("deliveries: %d, %v", len(ds), err)
	}
}
