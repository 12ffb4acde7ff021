package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hookd/hookd/internal/webhook"
)

func testWebhookRoundTrip(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := newWebhook(t, org)
	w.Kind = webhook.KindSlack
	w.UpdatedAt = base.Add(time.Hour)
	w.Enabled = false
	w.Events = []webhook.EventType{webhook.EventDeploymentFailure, webhook.EventDeploymentStarted}
	w.ProjectNamesFilter = []string{"api-*", "Front"}
	w.EnvironmentTypesFilter = []webhook.EnvironmentMode{webhook.ModeStaging, webhook.ModeProduction}
	w.DisabledReason = "410 Gone"
	w.FailingSince = base.Add(time.Minute)
	w.PreviousSecret = "old-s3cret"
	w.SecretRotatedAt = base.Add(30 * time.Second)
	createWebhook(t, s, w)

	got := getWebhook(t, s, org, w.ID)
	wantEqual(t, "WebhookGet", got, w)

	list, err := s.WebhookList(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "WebhookList", list, []*webhook.Webhook{w})

	// Tenant isolation: another organization never sees it.
	_, err = s.WebhookGet(ctx, newID(t), w.ID)
	wantCode(t, err, webhook.ENotFound)
	_, err = s.WebhookGet(ctx, org, newID(t))
	wantCode(t, err, webhook.ENotFound)
}

func testWebhookEmptyLists(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := newWebhook(t, org)
	w.ProjectNamesFilter = nil
	w.EnvironmentTypesFilter = nil
	w.Description = ""
	w.TargetSecret = ""
	createWebhook(t, s, w)

	got := getWebhook(t, s, org, w.ID)
	if got.ProjectNamesFilter == nil || len(got.ProjectNamesFilter) != 0 {
		t.Fatalf("ProjectNamesFilter = %#v, want empty non-nil", got.ProjectNamesFilter)
	}
	if got.EnvironmentTypesFilter == nil || len(got.EnvironmentTypesFilter) != 0 {
		t.Fatalf("EnvironmentTypesFilter = %#v, want empty non-nil", got.EnvironmentTypesFilter)
	}
	if !got.FailingSince.IsZero() || !got.SecretRotatedAt.IsZero() {
		t.Fatalf("FailingSince = %v, SecretRotatedAt = %v, want zero", got.FailingSince, got.SecretRotatedAt)
	}
	if got.TargetSecret != "" || got.PreviousSecret != "" || got.Description != "" || got.DisabledReason != "" {
		t.Fatalf("empty strings came back as %+v", got)
	}

	// An organization without webhooks gets an empty, non-nil list.
	list, err := s.WebhookList(context.Background(), newID(t))
	if err != nil {
		t.Fatal(err)
	}
	if list == nil || len(list) != 0 {
		t.Fatalf("WebhookList of empty org = %#v, want empty non-nil", list)
	}
}

func testWebhookTimePrecision(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := newWebhook(t, org)
	// Nanoseconds in another zone: stored truncated to the microsecond, in UTC.
	zone := time.FixedZone("X", 5*3600+1800)
	w.CreatedAt = time.Date(2026, 3, 4, 5, 6, 7, 999999999, zone)
	w.UpdatedAt = w.CreatedAt.Add(time.Nanosecond)
	w.FailingSince = time.Date(2026, 3, 4, 5, 6, 7, 1001, zone)
	w.PreviousSecret, w.SecretRotatedAt = "old-s3cret", time.Date(2026, 3, 4, 5, 6, 7, 2999, zone)
	createWebhook(t, s, w)

	got := getWebhook(t, s, org, w.ID)
	wantTime(t, "CreatedAt", got.CreatedAt, w.CreatedAt.Truncate(time.Microsecond))
	wantTime(t, "UpdatedAt", got.UpdatedAt, w.UpdatedAt.Truncate(time.Microsecond))
	wantTime(t, "FailingSince", got.FailingSince, w.FailingSince.Truncate(time.Microsecond))
	wantTime(t, "SecretRotatedAt", got.SecretRotatedAt, w.SecretRotatedAt.Truncate(time.Microsecond))
}

func testWebhookCreateDuplicate(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	dup := *w
	wantCode(t, s.WebhookCreate(context.Background(), &dup, 0, nil), webhook.EConflict)
}

func testWebhookList(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	orgA, orgB := newID(t), newID(t)
	var want []*webhook.Webhook
	for i := range 3 {
		w := newWebhook(t, orgA)
		// Created in reverse ID order so the list must follow CreatedAt.
		w.CreatedAt = base.Add(time.Duration(3-i) * time.Second)
		want = append([]*webhook.Webhook{w}, want...)
		createWebhook(t, s, w)
	}
	createWebhook(t, s, newWebhook(t, orgB))

	got, err := s.WebhookList(ctx, orgA)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "WebhookList", got, want)
}

func testWebhookUpdate(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := newWebhook(t, org)
	w.FailingSince = base
	w.DisabledReason = "failing"
	createWebhook(t, s, w)

	u := *w
	u.UpdatedAt = base.Add(time.Hour)
	u.Kind = webhook.KindSlack
	u.TargetURL = "https://other.example.com/x"
	u.TargetSecret = "new-secret"
	u.Description = "changed"
	u.Enabled = false
	u.Events = []webhook.EventType{webhook.EventDeploymentSuccessful}
	u.ProjectNamesFilter = []string{"web"}
	u.EnvironmentTypesFilter = []webhook.EnvironmentMode{webhook.ModePreview}
	u.DisabledReason = ""
	u.FailingSince = time.Time{}
	u.PreviousSecret = w.TargetSecret
	u.SecretRotatedAt = base.Add(time.Hour)
	// created_at is never written by an edit, whatever it says.
	u.CreatedAt = base.Add(-time.Hour)
	if err := replaceWebhook(ctx, s, &u, nil); err != nil {
		t.Fatal(err)
	}
	u.CreatedAt = w.CreatedAt
	wantEqual(t, "after update", getWebhook(t, s, org, w.ID), &u)

	// The secret removed: both secrets and the rotation time go.
	cleared := u
	cleared.TargetSecret, cleared.PreviousSecret, cleared.SecretRotatedAt = "", "", time.Time{}
	if err := replaceWebhook(ctx, s, &cleared, nil); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "after removing the secrets", getWebhook(t, s, org, w.ID), &cleared)
	if err := replaceWebhook(ctx, s, &u, nil); err != nil {
		t.Fatal(err)
	}

	// Another organization's row with the same id is not reachable.
	other := u
	other.OrganizationID = newID(t)
	other.Description = "hijacked"
	wantCode(t, replaceWebhook(ctx, s, &other, nil), webhook.ENotFound)
	wantEqual(t, "after foreign update", getWebhook(t, s, org, w.ID), &u)

	missing := u
	missing.ID = newID(t)
	wantCode(t, replaceWebhook(ctx, s, &missing, nil), webhook.ENotFound)
}

func testWebhookDelete(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))

	wantCode(t, deleteWebhook(ctx, s, newID(t), w.ID, nil), webhook.ENotFound)
	wantCode(t, deleteWebhook(ctx, s, org, newID(t), nil), webhook.ENotFound)
	getWebhook(t, s, org, w.ID)

	if err := deleteWebhook(ctx, s, org, w.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.WebhookGet(ctx, org, w.ID)
	wantCode(t, err, webhook.ENotFound)
	wantCode(t, deleteWebhook(ctx, s, org, w.ID, nil), webhook.ENotFound)
}

// wantTooManyWebhooks checks err is the refusal of a create past max.
func wantTooManyWebhooks(t *testing.T, err error, max int) {
	t.Helper()
	wantCode(t, err, webhook.EConflict)
	if want := webhook.TooManyWebhooks(max).Error(); err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func testWebhookCreateLimit(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org, other := newID(t), newID(t)
	var hooks []*webhook.Webhook
	for range 3 {
		w := newWebhook(t, org)
		if err := s.WebhookCreate(ctx, w, 3, nil); err != nil {
			t.Fatalf("create %d of 3: %v", len(hooks)+1, err)
		}
		hooks = append(hooks, w)
	}
	extra := newWebhook(t, org)
	wantTooManyWebhooks(t, s.WebhookCreate(ctx, extra, 3, nil), 3)
	_, err := s.WebhookGet(ctx, org, extra.ID)
	wantCode(t, err, webhook.ENotFound)

	// Another organization has its own count.
	if err := s.WebhookCreate(ctx, newWebhook(t, other), 3, nil); err != nil {
		t.Fatalf("another organization: %v", err)
	}
	// A lower limit than what exists refuses too; 0 is no limit.
	wantTooManyWebhooks(t, s.WebhookCreate(ctx, newWebhook(t, org), 2, nil), 2)
	createWebhook(t, s, newWebhook(t, org))

	// Deleting makes room again.
	for _, w := range hooks[:2] {
		if err := deleteWebhook(ctx, s, org, w.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WebhookCreate(ctx, extra, 3, nil); err != nil {
		t.Fatalf("create after deleting: %v", err)
	}
	list, err := s.WebhookList(ctx, org)
	if err != nil || len(list) != 3 {
		t.Fatalf("WebhookList: %d webhooks (%v), want 3", len(list), err)
	}
}

// testWebhookCreateLimitConcurrent races creates in one organization
// (from the pool's several connections: several nodes, as far as the
// database can tell): exactly the limit succeed.
func testWebhookCreateLimitConcurrent(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	const max = 5
	hooks := make([]*webhook.Webhook, raceTries)
	for i := range hooks {
		hooks[i] = newWebhook(t, org)
	}
	raceCreates(t, max, func(i int) error { return s.WebhookCreate(ctx, hooks[i], max, nil) },
		webhook.TooManyWebhooks(max), func() (int, error) {
			list, err := s.WebhookList(ctx, org)
			return len(list), err
		})
}

// raceTries is how many creates raceCreates runs at once.
const raceTries = 24

// raceCreates runs create(i) for each i below raceTries at once (from the
// pool's several connections: several nodes, as far as the database can
// tell) and checks that exactly max succeed, that the others are refused
// with refusal, and that stored then counts max.
func raceCreates(t *testing.T, max int, create func(i int) error, refusal *webhook.Error, stored func() (int, error)) {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, raceTries)
	var wg sync.WaitGroup
	for i := range raceTries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = create(i)
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for _, err := range errs {
		if err == nil {
			created++
			continue
		}
		wantCode(t, err, refusal.Code)
		if err.Error() != refusal.Error() {
			t.Fatalf("error %q, want %q", err, refusal)
		}
	}
	n, err := stored()
	if err != nil {
		t.Fatal(err)
	}
	if created != max || n != max {
		t.Fatalf("%d creates succeeded and %d stored, want %d and %d", created, n, max, max)
	}
}

func testWebhookDeleteCascades(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	keep := createWebhook(t, s, newWebhook(t, org))
	r := createEvents(t, s, newEvent(t, org, base))[0]
	if len(r.DeliveryIDs) != 2 {
		t.Fatalf("got %d deliveries, want 2", len(r.DeliveryIDs))
	}
	tasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 10})
	var outcomes []webhook.Outcome
	for _, tk := range tasks {
		outcomes = append(outcomes, webhook.Outcome{
			Attempt: newAttempt(t, &tk.Delivery, 1, 500, base.Add(time.Second)),
			Status:  webhook.DeliveryPending, NextAttemptAt: base.Add(time.Hour),
		})
	}
	complete(t, s, outcomes...)

	if err := deleteWebhook(ctx, s, org, w.ID, nil); err != nil {
		t.Fatal(err)
	}
	// Its deliveries may go in the background, soon.
	eventually(t, func() string {
		ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 0 || len(as) != 0 {
			return fmt.Sprintf("the deleted webhook keeps %d deliveries and %d attempts", len(ds), len(as))
		}
		return ""
	})
	// The other webhook's delivery of the same event is untouched.
	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: keep.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 {
		t.Fatalf("attempts of the kept webhook: %d, want 1", len(as))
	}
	if due, _, _ := s.DeliveryBacklog(ctx, base.Add(2*time.Hour)); due != 1 {
		t.Fatalf("backlog = %d, want 1", due)
	}
}

// WebhookDeleteFailedKeepsQueue checks that a delete whose last step
// fails (an audit id already taken) keeps the webhook and its whole
// queue, and that the next delete succeeds.
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
