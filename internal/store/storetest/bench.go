package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// Bench measures the store calls that bound hookd's throughput: intake's
// EventsCreate and the dispatcher's claim→complete cycle. open returns a
// fresh, migrated, empty store and arranges (with b.Cleanup) to close it.
// Each backend calls it from a Benchmark function.
func Bench(b *testing.B, open func(b *testing.B) webhook.Store) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("EventsCreate/batch=%d", batch), func(b *testing.B) {
			benchEventsCreate(b, open(b), batch)
		})
	}
	// 16 is about what the dispatcher recorded per transaction in burst
	// before it waited for company; 64 is what it waits for.
	for _, n := range []int{16, 64} {
		b.Run(fmt.Sprintf("ClaimComplete/%d", n), func(b *testing.B) {
			benchClaimComplete(b, open(b), n, 1)
		})
	}
	// One event to 64 webhooks: each batch of outcomes touches 64.
	b.Run("ClaimComplete/fanout=64", func(b *testing.B) {
		benchClaimComplete(b, open(b), 1, 64)
	})
	// Several callers at once, as the committer and the dispatcher's
	// outcome batches write during a burst.
	for _, batch := range []int{1, 16} {
		b.Run(fmt.Sprintf("Concurrent/batch=%d", batch), func(b *testing.B) {
			benchConcurrent(b, open(b), batch)
		})
	}
	b.Run("AttemptStats/attempts=50000", func(b *testing.B) {
		benchAttemptStats(b, open(b), 50000)
	})
}

// benchPayload is about the size of a real deployment event's payload.
var benchPayload = json.RawMessage(`{"id":"bench-deploy","deployment_id":"bench-deploy","current_status":"DEPLOYMENT_ERROR","desired_status":"RUNNING",` +
	`"organization":{"id":"0190a6d2-0000-7000-8000-000000000001"},"project":{"id":"p-1","name":"billing-api"},` +
	`"environment":{"id":"e-1","name":"prod-eu","mode":"PRODUCTION","cluster_name":"eu-west-3"},` +
	`"applications":[{"id":"a-1","name":"web","commit_id":"4f2a9c1e7b3d","status":"DEPLOYMENT_ERROR"}],"databases":[],"containers":[],"jobs":[],"logs":[]}`)

// benchSetup creates an organization with one webhook matching every
// event, so each event makes exactly one delivery.
func benchSetup(b *testing.B, s webhook.Store) uuid.UUID {
	return benchSetupHooks(b, s, 1)
}

// benchSetupHooks is benchSetup with n webhooks, each matching every
// event.
func benchSetupHooks(b *testing.B, s webhook.Store, n int) uuid.UUID {
	b.Helper()
	org := uuid.Must(uuid.NewV7())
	now := time.Now().UTC().Truncate(time.Microsecond)
	for range n {
		w := &webhook.Webhook{
			ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now, UpdatedAt: now,
			Kind: webhook.KindStandard, TargetURL: "https://example.com/hook", TargetSecret: "s3cret", Enabled: true,
			Events: slices.Clone(webhook.EventTypes), ProjectNamesFilter: []string{}, EnvironmentTypesFilter: []webhook.EnvironmentMode{},
		}
		if err := s.WebhookCreate(context.Background(), w, 0, nil); err != nil {
			b.Fatalf("WebhookCreate: %v", err)
		}
	}
	return org
}

func benchEvents(org uuid.UUID, n int) []*webhook.Event {
	now := time.Now().UTC().Truncate(time.Microsecond)
	evs := make([]*webhook.Event, n)
	for i := range evs {
		evs[i] = &webhook.Event{
			ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: now,
			Type: webhook.EventDeploymentFailure, ProjectName: "billing-api", EnvironmentMode: webhook.ModeProduction,
			Payload: benchPayload,
		}
	}
	return evs
}

func benchEventsCreate(b *testing.B, s webhook.Store, batch int) {
	ctx := context.Background()
	org := benchSetup(b, s)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.EventsCreate(ctx, benchEvents(org, batch), webhook.Lease{}); err != nil {
			b.Fatalf("EventsCreate: %v", err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// benchOutcome is a successful first attempt of d.
func benchOutcome(d *webhook.Delivery, now time.Time) webhook.Outcome {
	return webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: d.Lease, Attempt: webhook.Attempt{
		ID: uuid.Must(uuid.NewV7()), OrganizationID: d.OrganizationID, WebhookID: d.WebhookID, DeliveryID: d.ID, EventID: d.EventID,
		CreatedAt: now, Number: d.Attempts + 1, Kind: webhook.KindStandard, TargetURL: "https://example.com/hook",
		StatusCode: 200, ResponseBody: `{"ok":true}`, Duration: 3 * time.Millisecond,
	}}
}

// benchClaimComplete times what the dispatcher does per batch: claim
// the deliveries of events to hooks webhooks, then record a successful
// attempt for each. The deliveries are created with the timer stopped.
func benchClaimComplete(b *testing.B, s webhook.Store, events, hooks int) {
	ctx := context.Background()
	org := benchSetupHooks(b, s, hooks)
	n := events * hooks
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if _, err := s.EventsCreate(ctx, benchEvents(org, events), webhook.Lease{}); err != nil {
			b.Fatalf("EventsCreate: %v", err)
		}
		b.StartTimer()
		now := time.Now().UTC().Truncate(time.Microsecond)
		tasks, err := s.DeliveryClaim(ctx, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: n})
		if err != nil {
			b.Fatalf("DeliveryClaim: %v", err)
		}
		if len(tasks) != n {
			b.Fatalf("claimed %d deliveries, want %d", len(tasks), n)
		}
		outcomes := make([]webhook.Outcome, len(tasks))
		for i, t := range tasks {
			outcomes[i] = benchOutcome(&t.Delivery, now)
		}
		if _, err := s.DeliveryComplete(ctx, outcomes); err != nil {
			b.Fatalf("DeliveryComplete: %v", err)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "deliveries/s")
}

// benchConcurrent is burst's write load without HTTP: callers each
// accept a batch of events (leased at intake, as burst's are) and record
// an attempt for each delivery, several at once. Beside the wall time it
// reports the process's CPU time per delivery, steadier on a shared
// machine.
func benchConcurrent(b *testing.B, s webhook.Store, batch int) {
	ctx := context.Background()
	org := benchSetup(b, s)
	b.SetParallelism(4)
	b.ReportAllocs()
	before := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			now := time.Now().UTC().Truncate(time.Microsecond)
			rs, err := s.EventsCreate(ctx, benchEvents(org, batch), webhook.Lease{Now: now, Until: now.Add(time.Minute), Limit: batch})
			if err != nil {
				b.Errorf("EventsCreate: %v", err)
				return
			}
			var outcomes []webhook.Outcome
			for _, r := range rs {
				for _, t := range r.Tasks {
					outcomes = append(outcomes, benchOutcome(&t.Delivery, now))
				}
			}
			if _, err := s.DeliveryComplete(ctx, outcomes); err != nil {
				b.Errorf("DeliveryComplete: %v", err)
				return
			}
		}
	})
	b.StopTimer()
	n := float64(b.N * batch)
	b.ReportMetric(n/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric((processCPU()-before).Seconds()*1e6/n, "cpu-µs/delivery")
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchAttemptStats times what GET …/stats asks the store for (24 hours
// in hourly buckets, 7 days in daily ones) for a webhook with n attempts
// spread over the week, about five a minute, one in ten failed.
func benchAttemptStats(b *testing.B, s webhook.Store, n int) {
	ctx := context.Background()
	org := benchSetup(b, s)
	now := time.Now().UTC().Truncate(time.Microsecond)
	week := 7 * 24 * time.Hour
	var webhookID uuid.UUID
	for done := 0; done < n; {
		batch := min(1000, n-done)
		if _, err := s.EventsCreate(ctx, benchEvents(org, batch), webhook.Lease{}); err != nil {
			b.Fatalf("EventsCreate: %v", err)
		}
		due := time.Now().Add(time.Second)
		tasks, err := s.DeliveryClaim(ctx, webhook.ClaimParams{Now: due, LeaseUntil: due.Add(time.Hour), Limit: batch})
		if err != nil || len(tasks) != batch {
			b.Fatalf("DeliveryClaim: %v, %d tasks", err, len(tasks))
		}
		outcomes := make([]webhook.Outcome, len(tasks))
		for i, t := range tasks {
			d := &t.Delivery
			webhookID = d.WebhookID
			k := done + i
			status := 200
			if k%10 == 0 {
				status = 503
			}
			outcomes[i] = webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: d.Lease, Attempt: webhook.Attempt{
				ID: uuid.Must(uuid.NewV7()), OrganizationID: d.OrganizationID, WebhookID: d.WebhookID, DeliveryID: d.ID, EventID: d.EventID,
				CreatedAt: now.Add(-week * time.Duration(k) / time.Duration(n)), Number: 1, Kind: webhook.KindStandard,
				TargetURL: "https://example.com/hook", StatusCode: status, ResponseBody: `{"ok":true}`, Duration: time.Duration(k%997) * time.Millisecond,
			}}
		}
		if _, err := s.DeliveryComplete(ctx, outcomes); err != nil {
			b.Fatalf("DeliveryComplete: %v", err)
		}
		done += batch
	}
	b.ResetTimer()
	for range b.N {
		for _, w := range []struct{ span, bucket time.Duration }{{24 * time.Hour, time.Hour}, {week, 24 * time.Hour}} {
			st, err := s.AttemptStats(ctx, webhook.AttemptStatsParams{OrganizationID: org, WebhookID: webhookID,
				Since: now.Add(-w.span), Until: now.Add(time.Second), Bucket: w.bucket})
			if err != nil || st.Attempts == 0 {
				b.Fatalf("AttemptStats: %v %+v", err, st)
			}
		}
	}
}
