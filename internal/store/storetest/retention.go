package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hookd/hookd/internal/webhook"
)

func testDeleteBefore(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	old := base.Add(-48 * time.Hour)
	cut := base.Add(-24 * time.Hour)

	finished := deliver(t, s, org, old)
	failed := deliver(t, s, org, old.Add(time.Second))
	pending := deliver(t, s, org, old.Add(2*time.Second))
	running := deliver(t, s, org, old.Add(3*time.Second))
	createEvents(t, s, newEvent(t, newID(t), old)) // no webhook matches it
	recent := deliver(t, s, org, cut.Add(time.Second))

	// Claim the old ones, then finish two, put one back to pending and
	// leave one running.
	tasks := claim(t, s, webhook.ClaimParams{Now: old.Add(time.Hour), LeaseUntil: base.Add(time.Hour), Limit: 10})
	for _, tk := range tasks {
		a := newAttempt(t, &tk.Delivery, 1, 200, old.Add(time.Hour))
		switch tk.Delivery.ID {
		case finished:
			complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliverySucceeded})
		case failed:
			complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliveryFailed})
		case pending:
			complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliveryPending, NextAttemptAt: base.Add(48 * time.Hour)})
		}
	}
	recentTasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(2 * time.Hour), Limit: 10})
	for _, tk := range recentTasks {
		complete(t, s, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 200, base), Status: webhook.DeliverySucceeded})
	}

	n, err := s.DeleteBefore(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("DeleteBefore removed %d events, want 3 (two finished, one without deliveries)", n)
	}
	for _, id := range []uuid.UUID{finished, failed} {
		_, err := s.DeliveryGet(ctx, org, w.ID, id)
		wantCode(t, err, webhook.ENotFound)
	}
	for _, id := range []uuid.UUID{pending, running, recent} {
		getDelivery(t, s, org, w.ID, id)
	}
	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.DeliveryID == finished || a.DeliveryID == failed {
			t.Fatalf("attempt %v of a removed delivery remains", a.ID)
		}
	}
	if len(as) != 2 {
		t.Fatalf("%d attempts remain, want 2 (pending's and recent's)", len(as))
	}
	if n, err := s.DeleteBefore(ctx, cut); err != nil || n != 0 {
		t.Fatalf("second DeleteBefore = %d, %v; want 0", n, err)
	}
}
