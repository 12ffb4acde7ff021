package sqlite_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/sqlite"
	"github.com/hookd/hookd/internal/webhook"
)

// BenchmarkConcurrentWrites is burst's write load without HTTP: several
// callers each accept a batch of events (leased at intake, as burst's
// are) and record an attempt for each delivery, all at once, as the
// committer and the dispatcher's outcome batches do. It reports the
// process's CPU time per delivery, steadier than the wall time on a
// shared machine.
func BenchmarkConcurrentWrites(b *testing.B) {
	for _, batch := range []int{1, 16} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) { benchConcurrentWrites(b, batch) })
	}
}

func benchConcurrentWrites(b *testing.B, batch int) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "hookd.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	org := uuid.Must(uuid.NewV7())
	now := time.Now().UTC().Truncate(time.Microsecond)
	w := &webhook.Webhook{
		ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now, UpdatedAt: now,
		Kind: webhook.KindStandard, TargetURL: "https://example.com/hook", TargetSecret: "s3cret", Enabled: true,
		Events: slices.Clone(webhook.EventTypes), ProjectNamesFilter: []string{}, EnvironmentTypesFilter: []webhook.EnvironmentMode{},
	}
	if err := db.WebhookCreate(ctx, w, 0, nil); err != nil {
		b.Fatal(err)
	}
	payload := json.RawMessage(`{"id":"bench-deploy","current_status":"DEPLOYMENT_ERROR","project":{"name":"billing-api"}}`)
	b.SetParallelism(4)
	b.ReportAllocs()
	before := cpu()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := time.Now().UTC().Truncate(time.Microsecond)
			evs := make([]*webhook.Event, batch)
			for i := range evs {
				evs[i] = &webhook.Event{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now,
					Type: webhook.EventDeploymentFailure, ProjectName: "billing-api", EnvironmentMode: webhook.ModeProduction,
					Payload: payload}
			}
			rs, err := db.EventsCreate(ctx, evs, webhook.Lease{Until: now.Add(time.Minute), Limit: batch})
			if err != nil {
				b.Error(err)
				return
			}
			var outcomes []webhook.Outcome
			for _, r := range rs {
				for _, t := range r.Tasks {
					d := &t.Delivery
					outcomes = append(outcomes, webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: d.Lease, Attempt: webhook.Attempt{
						OrganizationID: d.OrganizationID, WebhookID: d.WebhookID, DeliveryID: d.ID, EventID: d.EventID,
						CreatedAt: now, Number: 1, Kind: webhook.KindStandard, TargetURL: "https://example.com/hook",
						StatusCode: 200, ResponseBody: `{"ok":true}`, Duration: time.Millisecond}})
				}
			}
			if _, err := db.DeliveryComplete(ctx, outcomes); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	n := float64(b.N * batch)
	b.ReportMetric(n/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric((cpu()-before).Seconds()*1e6/n, "cpu-µs/delivery")
}

// cpu is the process's user and system time so far.
func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
