package api

import (
	"github.com/hookd/hookd/internal/store/storetest"

	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/auth"
	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/webhook"
)

// receiptIntake answers every event at once, as if committed: the
// benchmark measures the request path around the commit.
type receiptIntake struct{}

func (receiptIntake) Accept(_ context.Context, ev *webhook.Event) (webhook.EventReceipt, error) {
	return webhook.EventReceipt{ID: ev.ID, CreatedAt: ev.CreatedAt, Deliveries: 1}, nil
}

// BenchmarkIntakeRequest is one intake request through the handler,
// authentication (a real token on a real store) and the answer included;
// its allocations per request are what the garbage collector pays for.
func BenchmarkIntakeRequest(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "api.db"), storetest.Keys(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	authn, err := auth.New(ctx, auth.Config{}, db, time.Now, log)
	if err != nil {
		b.Fatal(err)
	}
	org := uuid.New()
	plain, hash, err := auth.NewToken()
	if err != nil {
		b.Fatal(err)
	}
	if err := db.TokenCreate(ctx, &webhook.Token{ID: uuid.New(), OrganizationID: org, Hash: hash, CreatedAt: time.Now().UTC()}, nil); err != nil {
		b.Fatal(err)
	}
	s := NewServer(Deps{Store: db, Auth: authn, Log: log, Intake: receiptIntake{}})
	path := "/organization/" + org.String() + "/deployment-event"
	const body = `{"event_type":"DEPLOYMENT_STARTED","deployment_id":"d-1","current_status":"RUNNING","desired_status":"RUNNING",` +
		`"project":{"id":"p-1","name":"shop"},"environment":{"id":"e-1","name":"prod","mode":"PRODUCTION","cluster_name":"c"},` +
		`"applications":[{"id":"a-1","name":"api"}],"databases":[],"containers":[],"jobs":[],"logs":[]}`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Token "+plain)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
