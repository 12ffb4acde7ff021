package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// WebhookDeleteFailedKeepsQueue checks a backend that deletes a webhook's
// finished history before the webhook: a delete whose last step fails (an
// audit id already taken) keeps the webhook and its whole queue, and the
// next delete removes all of it.
func WebhookDeleteFailedKeepsQueue(t *testing.T, s webhook.Store) {
	t.Helper()
	ctx := context.Background()
	org := uuid.New()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	w := &webhook.Webhook{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, CreatedAt: at, UpdatedAt: at,
		Kind: webhook.KindStandard, TargetURL: "https://example.com", Enabled: true, Events: webhook.EventTypes}
	if err := s.WebhookCreate(ctx, w, 0, nil); err != nil {
		t.Fatal(err)
	}
	newEvents := func(n int) {
		t.Helper()
		events := make([]*webhook.Event, n)
		for i := range events {
			events[i] = &webhook.Event{OrganizationID: org, CreatedAt: at, Type: webhook.EventDeploymentStarted,
				ProjectName: "p", EnvironmentMode: webhook.ModeProduction, Payload: []byte(`{}`)}
		}
		if _, err := s.EventsCreate(ctx, events, webhook.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	newEvents(3)
	tasks, err := s.DeliveryClaim(ctx, webhook.ClaimParams{Now: at, LeaseUntil: at.Add(time.Minute), Limit: 10})
	if err != nil || len(tasks) != 3 {
		t.Fatalf("claimed %d of 3: %v", len(tasks), err)
	}
	var outcomes []webhook.Outcome
	for _, tk := range tasks {
		outcomes = append(outcomes, webhook.Outcome{Status: webhook.DeliverySucceeded, Lease: tk.Delivery.Lease,
			Attempt: webhook.Attempt{OrganizationID: org, WebhookID: w.ID, DeliveryID: tk.Delivery.ID, EventID: tk.Event.ID,
				CreatedAt: at, Number: 1, Kind: webhook.KindStandard, StatusCode: 200}})
	}
	if _, err := s.DeliveryComplete(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	newEvents(2) // the queue: two pending deliveries

	// An audit entry whose id is already taken makes the last step fail.
	actor := webhook.Actor{Kind: webhook.ActorCLI, ID: "test"}
	taken := &webhook.AuditEntry{CreatedAt: at, Action: webhook.AuditWebhookUpdated, Actor: actor}
	if _, err := s.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
		Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) { return taken, nil }}); err != nil {
		t.Fatal(err)
	}
	err = s.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID,
		Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) {
			return &webhook.AuditEntry{ID: taken.ID, CreatedAt: at, Action: webhook.AuditWebhookDeleted, Actor: actor}, nil
		}})
	if err == nil {
		t.Fatal("the delete succeeded with an audit id already taken")
	}
	if _, err := s.WebhookGet(ctx, org, w.ID); err != nil {
		t.Fatalf("the webhook is gone after a failed delete: %v", err)
	}
	pending, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Status: webhook.DeliveryPending})
	if err != nil || len(pending) != 2 {
		t.Fatalf("after a failed delete %d pending deliveries are left, want 2 (%v)", len(pending), err)
	}
	if err := s.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: org, ID: w.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebhookGet(ctx, org, w.ID); webhook.ErrorCode(err) != webhook.ENotFound {
		t.Fatalf("the webhook after its delete: %v", err)
	}
}
