package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// TestWebhookDeleteStall measures what deleting a webhook with a long
// history costs intake: one event a millisecond to another webhook, its
// EventsCreate latency while nothing else runs and then from the delete
// until the purger has removed the deleted webhook's deliveries. It only
// measures: HOOKD_DELETE_DELIVERIES=100000 go test -run
// WebhookDeleteStall -v.
func TestWebhookDeleteStall(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HOOKD_DELETE_DELIVERIES"))
	if n == 0 {
		t.Skip("set HOOKD_DELETE_DELIVERIES to measure")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hookd.db")
	db := open(t, path)
	at := time.Now().UTC().Truncate(time.Microsecond)
	hook := func(org uuid.UUID) *webhook.Webhook {
		w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, UpdatedAt: at,
			Kind: webhook.KindStandard, TargetURL: "http://127.0.0.1:41234/hook/0", Enabled: true, Events: webhook.EventTypes}
		if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
			t.Fatal(err)
		}
		return w
	}
	gone := hook(uuid.Must(uuid.NewV7()))
	deliver(t, db, gone, n, 64)
	kept := hook(uuid.Must(uuid.NewV7()))

	// intake sends one event a millisecond until stop and returns the
	// latencies.
	intake := func(stop <-chan struct{}) []time.Duration {
		var lat []time.Duration
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return lat
			case <-tick.C:
			}
			start := time.Now()
			ev := &webhook.Event{OrganizationID: kept.OrganizationID, CreatedAt: time.Now().UTC(), Type: webhook.EventDeploymentFailure,
				ProjectName: "billing-api", EnvironmentMode: webhook.ModeProduction, Payload: sizePayload}
			if _, err := db.EventsCreate(ctx, []*webhook.Event{ev}, webhook.Lease{}); err != nil {
				t.Error(err)
				return lat
			}
			lat = append(lat, time.Since(start))
		}
	}
	p := func(lat []time.Duration, q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		s := slices.Clone(lat)
		slices.Sort(s)
		return s[int(q*float64(len(s)-1))]
	}

	stop := make(chan struct{})
	time.AfterFunc(3*time.Second, func() { close(stop) })
	steady := intake(stop)

	stop = make(chan struct{})
	var during []time.Duration
	var wg sync.WaitGroup
	wg.Go(func() { during = intake(stop) })
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := db.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: gone.OrganizationID, ID: gone.ID}); err != nil {
		t.Fatal(err)
	}
	answered := time.Since(start)
	// The purger removes the deliveries in the background: intake is
	// measured until they are gone.
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		left, err := db.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: gone.OrganizationID, WebhookID: gone.ID, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted webhook's deliveries were not purged in 5 minutes")
		}
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	wal := size(path + "-wal")
	t.Logf("delete of %d deliveries answered in %v, purged in %v; intake steady p50 %v p99 %v max %v (%d); during the purge p50 %v p99 %v max %v (%d); WAL after %.1f MB",
		n, answered.Round(time.Microsecond), took.Round(time.Millisecond), p(steady, .5), p(steady, .99), p(steady, 1), len(steady),
		p(during, .5), p(during, .99), p(during, 1), len(during), float64(wal)/(1<<20))
}
