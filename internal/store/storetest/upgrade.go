package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// OldRows names what a backend's upgrade test wrote through the previous
// schema (migrations 0001–0003) before migrating: a webhook (description
// "old", target https://example.com/hook), an event holding the key
// "deploy-1" (project billing, PRODUCTION, payload {"id":"d1"}), a
// delivery that succeeded with one attempt (200, "ok") and a delivery
// still pending, all created at At.
type OldRows struct {
	Org, Webhook, Event, Done, Queued uuid.UUID
	At                                time.Time
}

// NewOldRows returns fresh ids for an upgrade test's rows.
func NewOldRows() OldRows {
	v7 := func() uuid.UUID { return uuid.Must(uuid.NewV7()) }
	return OldRows{Org: uuid.New(), Webhook: v7(), Event: v7(), Done: v7(), Queued: v7(),
		At: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
}

// Upgraded checks a store migrated in place from the previous schema:
// what it held reads back, its queued delivery is claimed and recorded
// under the new lease token, and the event stored without a content hash
// still replays its key.
func Upgraded(t *testing.T, s webhook.Store, o OldRows) {
	t.Helper()
	ctx := context.Background()
	w, err := s.WebhookGet(ctx, o.Org, o.Webhook)
	if err != nil || w.Description != "old" || w.TargetURL != "https://example.com/hook" || !w.Enabled {
		t.Fatalf("webhook after the upgrade: %+v, %v", w, err)
	}
	attempts, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: o.Org, WebhookID: o.Webhook, Limit: 10})
	if err != nil || len(attempts) != 1 || attempts[0].StatusCode != 200 || attempts[0].ResponseBody != "ok" {
		t.Fatalf("delivery log after the upgrade: %+v, %v", attempts, err)
	}
	tasks, err := s.DeliveryClaim(ctx, webhook.ClaimParams{Now: o.At.Add(time.Second), LeaseUntil: o.At.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 1 || tasks[0].Delivery.ID != o.Queued || tasks[0].Delivery.Lease != 1 {
		t.Fatalf("claim after the upgrade: %+v, %v", tasks, err)
	}
	stale, err := s.DeliveryComplete(ctx, []webhook.Outcome{{Status: webhook.DeliverySucceeded, Lease: tasks[0].Delivery.Lease,
		Attempt: webhook.Attempt{OrganizationID: o.Org, WebhookID: o.Webhook, DeliveryID: o.Queued, EventID: o.Event,
			CreatedAt: o.At.Add(2 * time.Second), Number: 1, Kind: webhook.KindStandard, StatusCode: 204}}})
	if err != nil || len(stale) != 0 {
		t.Fatalf("recording the queued delivery: stale %v, %v", stale, err)
	}
	if d, err := s.DeliveryGet(ctx, o.Org, o.Webhook, o.Queued); err != nil || d.Status != webhook.DeliverySucceeded {
		t.Fatalf("queued delivery after its outcome: %+v, %v", d, err)
	}
	rs, err := s.EventsCreate(ctx, []*webhook.Event{{OrganizationID: o.Org, CreatedAt: o.At.Add(time.Minute),
		Type: webhook.EventDeploymentStarted, IdempotencyKey: "deploy-1", ProjectName: "billing",
		EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{"id":"d1"}`)}}, webhook.Lease{})
	if err != nil || len(rs) != 1 || !rs[0].Replayed || rs[0].ID != o.Event {
		t.Fatalf("repeating the old event's key: %+v, %v", rs, err)
	}
}

// UpgradedLog checks, before Upgraded records anything, that the delivery
// log of a store migrated in place reads back whole: the old attempt
// under its delivery with its event (which a lean schema may reach
// through the delivery rather than store with the attempt), the stats of
// its window, and its delivery among the webhook's.
func UpgradedLog(t *testing.T, s webhook.Store, o OldRows) {
	t.Helper()
	ctx := context.Background()
	attempts, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: o.Org, WebhookID: o.Webhook, DeliveryID: o.Done, Limit: 10})
	if err != nil || len(attempts) != 1 {
		t.Fatalf("attempts of the old delivery after the upgrade: %+v, %v", attempts, err)
	}
	a := attempts[0]
	if a.DeliveryID != o.Done || a.WebhookID != o.Webhook || a.EventID != o.Event || a.Event == nil || a.Event.ID != o.Event ||
		string(a.Event.Payload) != `{"id":"d1"}` || a.Number != 1 || a.Duration != 1500*time.Microsecond || !a.CreatedAt.Equal(o.At) {
		t.Fatalf("the old attempt after the upgrade: %+v (event %+v)", a, a.Event)
	}
	st, err := s.AttemptStats(ctx, webhook.AttemptStatsParams{OrganizationID: o.Org, WebhookID: o.Webhook,
		Since: o.At.Add(-time.Hour), Until: o.At.Add(time.Hour)})
	if err != nil || st.Attempts != 1 || st.Failures != 0 || st.P50 != 1500*time.Microsecond {
		t.Fatalf("stats of the old attempt after the upgrade: %+v, %v", st, err)
	}
	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: o.Org, WebhookID: o.Webhook, Limit: 10})
	if err != nil || len(ds) != 2 || ds[0].ID != o.Queued || ds[1].ID != o.Done || ds[1].Attempts != 1 || ds[1].LastStatusCode != 200 {
		t.Fatalf("deliveries after the upgrade: %+v, %v", ds, err)
	}
}
