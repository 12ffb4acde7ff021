package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// OldRows names what a backend's upgrade test wrote through an older
// schema before migrating. Through migrations 0001–0003: a webhook
// (description "old", target https://example.com/hook), an event holding
// the key "deploy-1" (project billing, PRODUCTION, payload {"id":"d1"}),
// a delivery that succeeded with one attempt (200, "ok", 1.5 ms) and a
// delivery still pending, all created at At.
//
// With Leased set, the test wrote through the schema before the lean queue
// (migrations up to 0025) and also: an event Hashed holding the key
// "deploy-2" with its content hash (HashedPayload, DEPLOYMENT_STARTED,
// project billing, PRODUCTION); Done's lease token 1; a delivery Running
// of Event, claimed with lease token 3 until At+30s; and a delivery Failed
// of Hashed, lease token 2, failed after two attempts (500 "boom" with error "HTTP 500", then 503 "" with
// error "HTTP 503"), its last status 503 and last error "HTTP 503".
type OldRows struct {
	Org, Webhook, Event, Done, Queued uuid.UUID
	At                                time.Time

	Leased                  bool
	Hashed, Running, Failed uuid.UUID
}

// HashedPayload is the payload of OldRows.Hashed.
const HashedPayload = `{"id":"d2"}`

// NewOldRows returns fresh ids for an upgrade test's rows.
func NewOldRows() OldRows {
	v7 := func() uuid.UUID { return uuid.Must(uuid.NewV7()) }
	return OldRows{Org: uuid.New(), Webhook: v7(), Event: v7(), Done: v7(), Queued: v7(),
		Hashed: v7(), Running: v7(), Failed: v7(),
		At: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
}

// Upgraded checks a store migrated in place from the previous schema:
// what it held reads back, its queued delivery is claimed and recorded
// under the new lease token, the event stored without a content hash
// still replays its key, and last, the webhook's delete takes its
// history, old rows and new, with it.
func Upgraded(t *testing.T, s webhook.Store, o OldRows) {
	t.Helper()
	ctx := context.Background()
	w, err := s.WebhookGet(ctx, o.Org, o.Webhook)
	if err != nil || w.Description != "old" || w.TargetURL != "https://example.com/hook" || !w.Enabled {
		t.Fatalf("webhook after the upgrade: %+v, %v", w, err)
	}
	attempts, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: o.Org, WebhookID: o.Webhook, Limit: 10})
	want := 1
	if o.Leased {
		want = 3 // and the failed delivery's two, newer
	}
	if err != nil || len(attempts) != want || attempts[want-1].StatusCode != 200 || attempts[want-1].ResponseBody != "ok" ||
		attempts[want-1].DeliveryID != o.Done || attempts[want-1].Duration != 1500*time.Microsecond {
		t.Fatalf("delivery log after the upgrade: %+v, %v", attempts, err)
	}
	tasks, err := s.DeliveryClaim(ctx, webhook.ClaimParams{Now: o.At.Add(time.Second), LeaseUntil: o.At.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 1 || tasks[0].Delivery.ID != o.Queued || tasks[0].Delivery.Lease != 1 {
		t.Fatalf("claim after the upgrade: %+v, %v", tasks, err)
	}
	res, err := s.DeliveryComplete(ctx, []webhook.Outcome{{Status: webhook.DeliverySucceeded, Lease: tasks[0].Delivery.Lease,
		Attempt: webhook.Attempt{OrganizationID: o.Org, WebhookID: o.Webhook, DeliveryID: o.Queued, EventID: o.Event,
			CreatedAt: o.At.Add(2 * time.Second), Number: 1, Kind: webhook.KindStandard, StatusCode: 204}}})
	if err != nil || len(res.Stale) != 0 {
		t.Fatalf("recording the queued delivery: stale %v, %v", res.Stale, err)
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
	if o.Leased {
		upgradedLeases(t, s, o)
	}
	if err := deleteWebhook(ctx, s, o.Org, o.Webhook, nil); err != nil {
		t.Fatalf("deleting the webhook after the upgrade: %v", err)
	}
	eventually(t, func() string {
		ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: o.Org, WebhookID: o.Webhook, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: o.Org, WebhookID: o.Webhook, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds)+len(as) != 0 {
			return fmt.Sprintf("the webhook deleted after the upgrade keeps %d deliveries and %d attempts", len(ds), len(as))
		}
		return ""
	})
}

// upgradedLeases checks the rows OldRows.Leased names, after Upgraded's
// own checks recorded the queued delivery.
func upgradedLeases(t *testing.T, s webhook.Store, o OldRows) {
	t.Helper()
	ctx := context.Background()
	want := map[uuid.UUID]webhook.Delivery{
		o.Done: {Status: webhook.DeliverySucceeded, EventID: o.Event, Attempts: 1, LastStatusCode: 200, Lease: 1, DueAt: o.At},
		o.Queued: {Status: webhook.DeliverySucceeded, EventID: o.Event, Attempts: 1, LastStatusCode: 204, Lease: 1,
			DueAt: o.At.Add(time.Minute)}, // recorded by Upgraded; the due time of its claim
		o.Running: {Status: webhook.DeliveryRunning, EventID: o.Event, Lease: 3, DueAt: o.At.Add(30 * time.Second)},
		o.Failed: {Status: webhook.DeliveryFailed, EventID: o.Hashed, Attempts: 2, LastStatusCode: 503,
			LastError: "HTTP 503", Lease: 2, DueAt: o.At},
	}
	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: o.Org, WebhookID: o.Webhook})
	if err != nil || len(ds) != len(want) {
		t.Fatalf("deliveries after the upgrade: %d, %v", len(ds), err)
	}
	for i, d := range ds {
		if i > 0 && d.ID.String() >= ds[i-1].ID.String() {
			t.Fatalf("deliveries after the upgrade are not newest first: %v before %v", ds[i-1].ID, d.ID)
		}
		w, ok := want[d.ID]
		if !ok || d.Status != w.Status || d.EventID != w.EventID || d.Attempts != w.Attempts ||
			d.LastStatusCode != w.LastStatusCode || d.LastError != w.LastError || d.Lease != w.Lease ||
			!d.DueAt.Equal(w.DueAt) || d.OrganizationID != o.Org || d.WebhookID != o.Webhook ||
			!d.CreatedAt.Equal(o.At) || d.EventType != webhook.EventDeploymentStarted {
			t.Errorf("delivery %v after the upgrade: %+v, want %+v", d.ID, d, w)
		}
	}

	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: o.Org, WebhookID: o.Webhook, DeliveryID: o.Failed})
	if err != nil || len(as) != 2 || as[0].StatusCode != 503 || as[0].Error != "HTTP 503" || as[1].ResponseBody != "boom" ||
		as[1].Number != 1 || as[0].Number != 2 || as[0].Event == nil || string(as[0].Event.Payload) != HashedPayload ||
		as[0].EventID != o.Hashed || as[0].OrganizationID != o.Org || as[0].TargetURL != "https://example.com/hook" {
		t.Fatalf("the failed delivery's attempts after the upgrade: %+v, %v", as, err)
	}
	st, err := s.AttemptStats(ctx, webhook.AttemptStatsParams{OrganizationID: o.Org, WebhookID: o.Webhook,
		Since: o.At, Until: o.At.Add(time.Hour), Bucket: time.Hour})
	if err != nil || st.Attempts != 4 || st.Failures != 2 {
		t.Fatalf("stats after the upgrade: %+v, %v", st, err)
	}

	// The running delivery's lease token goes on from 3: the old holder's
	// outcome is refused, the next claim's recorded.
	tasks, err := s.DeliveryClaim(ctx, webhook.ClaimParams{Now: o.At.Add(31 * time.Second), LeaseUntil: o.At.Add(2 * time.Minute), Limit: 10})
	if err != nil || len(tasks) != 1 || tasks[0].Delivery.ID != o.Running || tasks[0].Delivery.Lease != 4 ||
		string(tasks[0].Event.Payload) != `{"id":"d1"}` || tasks[0].Webhook.ID != o.Webhook {
		t.Fatalf("claiming the running delivery once its lease ended: %+v, %v", tasks, err)
	}
	outcome := func(lease int64) webhook.Outcome {
		return webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: lease,
			Attempt: webhook.Attempt{OrganizationID: o.Org, WebhookID: o.Webhook, DeliveryID: o.Running, EventID: o.Event,
				CreatedAt: o.At.Add(32 * time.Second), Number: 1, Kind: webhook.KindStandard, StatusCode: 200}}
	}
	if res, err := s.DeliveryComplete(ctx, []webhook.Outcome{outcome(3)}); err != nil || len(res.Stale) != 1 {
		t.Fatalf("the outcome of the old lease: stale %v, %v; want it refused", res.Stale, err)
	}
	if res, err := s.DeliveryComplete(ctx, []webhook.Outcome{outcome(4)}); err != nil || len(res.Stale) != 0 {
		t.Fatalf("the outcome of the new lease: stale %v, %v", res.Stale, err)
	}

	// The hashed key replays its content and refuses other content.
	event := func(payload string) *webhook.Event {
		return &webhook.Event{OrganizationID: o.Org, CreatedAt: o.At.Add(time.Minute), Type: webhook.EventDeploymentStarted,
			IdempotencyKey: "deploy-2", ProjectName: "billing", EnvironmentMode: webhook.ModeProduction, Payload: []byte(payload),
			ContentHash: webhook.ContentHash(webhook.EventDeploymentStarted, []byte(payload))}
	}
	rs, err := s.EventsCreate(ctx, []*webhook.Event{event(HashedPayload)}, webhook.Lease{})
	if err != nil || len(rs) != 1 || !rs[0].Replayed || rs[0].ID != o.Hashed || rs[0].Deliveries != 1 {
		t.Fatalf("repeating the hashed event's key: %+v, %v", rs, err)
	}
	if _, err := s.EventsCreate(ctx, []*webhook.Event{event(`{"id":"other"}`)}, webhook.Lease{}); webhook.ErrorCode(err) != webhook.EUnprocessable {
		t.Fatalf("reusing the hashed event's key for other content: %v, want refused", err)
	}

	// Recovery finds the failed delivery by its status and time.
	n, err := s.DeliveryRecover(ctx, webhook.DeliveryRecoverParams{OrganizationID: o.Org, WebhookID: o.Webhook,
		Since: o.At, Until: o.At.Add(time.Second), Now: o.At.Add(3 * time.Minute)})
	if err != nil || n != (webhook.Recovered{Failed: 1}) {
		t.Fatalf("recovering the failed delivery: %+v, %v", n, err)
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
