// Package storetest is the conformance suite every webhook.Store backend
// runs, so the SQLite and PostgreSQL backends keep one behaviour. It only
// uses the webhook.Store interface; it must never reach into a backend.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

// base is the fixed time the suite works from, so nothing depends on the
// wall clock. It has whole microseconds, the precision every store keeps.
var base = time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)

// Run runs the suite. open returns a fresh, migrated, empty store,
// sealing secrets with a key (Keys), and arranges (with t.Cleanup) to
// close it.
func Run(t *testing.T, open func(t *testing.T) webhook.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s webhook.Store)
	}{
		{"Ping", testPing},
		{"WebhookRoundTrip", testWebhookRoundTrip},
		{"WebhookEmptyLists", testWebhookEmptyLists},
		{"WebhookTimePrecision", testWebhookTimePrecision},
		{"WebhookCreateDuplicate", testWebhookCreateDuplicate},
		{"WebhookList", testWebhookList},
		{"WebhookUpdate", testWebhookUpdate},
		{"WebhookDelete", testWebhookDelete},
		{"WebhookDeleteCascades", testWebhookDeleteCascades},
		{"SecretsOpened", testSecretsOpened},
		{"WebhookCreateLimit", testWebhookCreateLimit},
		{"WebhookCreateLimitConcurrent", testWebhookCreateLimitConcurrent},
		{"Token", testToken},
		{"TokenRevoke", testTokenRevoke},
		{"TokenList", testTokenList},
		{"EventsCreateMatching", testEventsCreateMatching},
		{"EventsCreateOnlyWebhook", testEventsCreateOnlyWebhook},
		{"EventsCreateIdempotency", testEventsCreateIdempotency},
		{"EventsCreateKeyReused", testEventsCreateKeyReused},
		{"EventsCreateBatch", testEventsCreateBatch},
		{"EventsCreateLease", testEventsCreateLease},
		{"EventsCreateFanout", testEventsCreateFanout},
		{"DeliveryClaim", testDeliveryClaim},
		{"DeliveryClaimLease", testDeliveryClaimLease},
		{"DeliveryClaimExclude", testDeliveryClaimExclude},
		{"DeliveryClaimConcurrent", testDeliveryClaimConcurrent},
		{"DeliveryCompleteSuccess", testDeliveryCompleteSuccess},
		{"DeliveryCompleteFailure", testDeliveryCompleteFailure},
		{"DeliveryCompleteDisable", testDeliveryCompleteDisable},
		{"DeliveryCompleteWebhookDeleted", testDeliveryCompleteWebhookDeleted},
		{"DeliveryCompleteBatch", testDeliveryCompleteBatch},
		{"DeliveryCompleteInvalid", testDeliveryCompleteInvalid},
		{"DeliveryCompleteCounts", testDeliveryCompleteCounts},
		{"DeliveryRelease", testDeliveryRelease},
		{"LeaseStaleOutcome", testLeaseStaleOutcome},
		{"LeaseSucceededNeverReopens", testLeaseSucceededNeverReopens},
		{"LeaseRenew", testLeaseRenew},
		{"DeliveryRetry", testDeliveryRetry},
		{"DeliveryRecover", testDeliveryRecover},
		{"DeliveryRecoverConcurrent", testDeliveryRecoverConcurrent},
		{"DeliveryGet", testDeliveryGet},
		{"DeliveryList", testDeliveryList},
		{"DeliveryBacklog", testDeliveryBacklog},
		{"AttemptList", testAttemptList},
		{"AttemptStats", testAttemptStats},
		{"DeleteBefore", testDeleteBefore},
		{"AuditWebhook", testAuditWebhook},
		{"AuditAtomic", testAuditAtomic},
		{"AuditToken", testAuditToken},
		{"AuditList", testAuditList},
		{"AuditDisabledByHookd", testAuditDisabledByHookd},
		{"SourceRoundTrip", testSourceRoundTrip},
		{"SourceList", testSourceList},
		{"SourceAuditAtomic", testSourceAuditAtomic},
		{"SourceSecretRewrite", testSourceSecretRewrite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// ---- helpers ----

func newID(t *testing.T) uuid.UUID {
	t.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newWebhook returns an enabled webhook of org that subscribes to every
// event type and has no filters.
func newWebhook(t *testing.T, org uuid.UUID) *webhook.Webhook {
	t.Helper()
	return &webhook.Webhook{
		ID:                     newID(t),
		OrganizationID:         org,
		CreatedAt:              base,
		UpdatedAt:              base,
		Kind:                   webhook.KindStandard,
		TargetURL:              "https://example.com/hook",
		TargetSecret:           "s3cret",
		Description:            "a webhook",
		Enabled:                true,
		Events:                 slices.Clone(webhook.EventTypes),
		ProjectNamesFilter:     []string{},
		EnvironmentTypesFilter: []webhook.EnvironmentMode{},
	}
}

func createWebhook(t *testing.T, s webhook.Store, w *webhook.Webhook) *webhook.Webhook {
	t.Helper()
	if err := s.WebhookCreate(context.Background(), w, 0, nil); err != nil {
		t.Fatalf("WebhookCreate: %v", err)
	}
	return w
}

// replaceWebhook stores w's fields (all but CreatedAt, which no edit
// changes) over the stored webhook with its organization and id, as an
// edit that names every field, and records audit.
func replaceWebhook(ctx context.Context, s webhook.Store, w *webhook.Webhook, audit *webhook.AuditEntry) error {
	_, err := s.WebhookUpdate(ctx, webhook.WebhookChange{OrganizationID: w.OrganizationID, ID: w.ID,
		Apply: func(cur *webhook.Webhook) (*webhook.AuditEntry, error) {
			*cur = *w
			return audit, nil
		}})
	return err
}

// deleteWebhook deletes a webhook, recording audit.
func deleteWebhook(ctx context.Context, s webhook.Store, orgID, id uuid.UUID, audit *webhook.AuditEntry) error {
	return s.WebhookDelete(ctx, webhook.WebhookChange{OrganizationID: orgID, ID: id,
		Apply: func(*webhook.Webhook) (*webhook.AuditEntry, error) { return audit, nil }})
}

func newEvent(t *testing.T, org uuid.UUID, at time.Time) *webhook.Event {
	t.Helper()
	return &webhook.Event{
		ID:              newID(t),
		OrganizationID:  org,
		CreatedAt:       at,
		Type:            webhook.EventDeploymentStarted,
		ProjectName:     "api-gateway",
		EnvironmentMode: webhook.ModeProduction,
		// Odd spacing and key order: the store must keep the exact bytes.
		Payload: json.RawMessage(`{"z":1,  "a":[true, null],"s":"é\u00e9"}`),
	}
}

func createEvents(t *testing.T, s webhook.Store, evs ...*webhook.Event) []webhook.EventReceipt {
	t.Helper()
	rs, err := s.EventsCreate(context.Background(), evs, webhook.Lease{})
	if err != nil {
		t.Fatalf("EventsCreate: %v", err)
	}
	if len(rs) != len(evs) {
		t.Fatalf("EventsCreate: got %d receipts for %d events", len(rs), len(evs))
	}
	return rs
}

// deliver creates one event at the given time for org and returns the
// one delivery it made (to the only webhook of org that matches it).
func deliver(t *testing.T, s webhook.Store, org uuid.UUID, at time.Time) uuid.UUID {
	t.Helper()
	r := createEvents(t, s, newEvent(t, org, at))[0]
	if len(r.DeliveryIDs) != 1 {
		t.Fatalf("expected one delivery, got %d", len(r.DeliveryIDs))
	}
	return r.DeliveryIDs[0]
}

func claim(t *testing.T, s webhook.Store, p webhook.ClaimParams) []*webhook.Task {
	t.Helper()
	tasks, err := s.DeliveryClaim(context.Background(), p)
	if err != nil {
		t.Fatalf("DeliveryClaim: %v", err)
	}
	return tasks
}

func taskIDs(tasks []*webhook.Task) []uuid.UUID {
	ids := make([]uuid.UUID, len(tasks))
	for i, tk := range tasks {
		ids[i] = tk.Delivery.ID
	}
	sortIDs(ids)
	return ids
}

func sortIDs(ids []uuid.UUID) {
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
}

func getDelivery(t *testing.T, s webhook.Store, org, wh, id uuid.UUID) *webhook.Delivery {
	t.Helper()
	d, err := s.DeliveryGet(context.Background(), org, wh, id)
	if err != nil {
		t.Fatalf("DeliveryGet: %v", err)
	}
	return d
}

func getWebhook(t *testing.T, s webhook.Store, org, id uuid.UUID) *webhook.Webhook {
	t.Helper()
	w, err := s.WebhookGet(context.Background(), org, id)
	if err != nil {
		t.Fatalf("WebhookGet: %v", err)
	}
	return w
}

func newAttempt(t *testing.T, d *webhook.Delivery, number, status int, at time.Time) webhook.Attempt {
	t.Helper()
	a := webhook.Attempt{
		ID:             newID(t),
		OrganizationID: d.OrganizationID,
		WebhookID:      d.WebhookID,
		DeliveryID:     d.ID,
		EventID:        d.EventID,
		CreatedAt:      at,
		Number:         number,
		Kind:           webhook.KindStandard,
		TargetURL:      "https://***@example.com/hook",
		StatusCode:     status,
		ResponseBody:   fmt.Sprintf("body %d", number),
		Duration:       1234567 * time.Microsecond,
	}
	if status == 0 {
		a.Error = "connection refused"
	}
	return a
}

// complete stores outcomes as their delivery's lease holder would: an
// outcome without a Lease gets the delivery's current one. It fails t if
// an outcome of a delivery that exists is stale.
func complete(t *testing.T, s webhook.Store, outcomes ...webhook.Outcome) {
	t.Helper()
	gone := map[uuid.UUID]bool{}
	for i, o := range outcomes {
		if o.Lease == 0 {
			a := o.Attempt
			d, err := s.DeliveryGet(context.Background(), a.OrganizationID, a.WebhookID, a.DeliveryID)
			if webhook.ErrorCode(err) == webhook.ENotFound {
				gone[a.DeliveryID] = true
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			outcomes[i].Lease = d.Lease
		}
	}
	stale, err := s.DeliveryComplete(context.Background(), outcomes)
	if err != nil {
		t.Fatalf("DeliveryComplete: %v", err)
	}
	for _, r := range stale {
		if !gone[r.ID] {
			t.Fatalf("DeliveryComplete: the outcome of %s is stale", r.ID)
		}
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := webhook.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

// wantEqual compares with reflect.DeepEqual; times must therefore come
// back in UTC with no monotonic reading, as the Store contract says.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("%s = %v, want %v (UTC)", what, got, want)
	}
}

// ---- ping ----

func testPing(t *testing.T, s webhook.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// ---- webhooks ----

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
	const max, tries = 5, 24
	start := make(chan struct{})
	errs := make([]error, tries)
	var wg sync.WaitGroup
	for i := range tries {
		w := newWebhook(t, org)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.WebhookCreate(ctx, w, max, nil)
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
		wantTooManyWebhooks(t, err, max)
	}
	list, err := s.WebhookList(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if created != max || len(list) != max {
		t.Fatalf("%d creates succeeded and %d webhooks stored, want %d and %d", created, len(list), max, max)
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
	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Fatalf("deliveries of a deleted webhook: %d", len(ds))
	}
	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 0 {
		t.Fatalf("attempts of a deleted webhook: %d", len(as))
	}
	// The other webhook's delivery of the same event is untouched.
	as, err = s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: org, WebhookID: keep.ID, Limit: 10})
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

// ---- tokens ----

func newToken(t *testing.T, org uuid.UUID, at time.Time) *webhook.Token {
	t.Helper()
	id := newID(t)
	return &webhook.Token{ID: id, OrganizationID: org, Name: "ci", Hash: []byte("hash-" + id.String()), CreatedAt: at}
}

func testToken(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	tok := newToken(t, org, base)
	tok.Hash = []byte{0, 1, 2, 0xff, 0xfe} // arbitrary bytes, not text
	if err := s.TokenCreate(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.TokenGetByHash(ctx, tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "TokenGetByHash", got, tok)

	_, err = s.TokenGetByHash(ctx, []byte("nope"))
	wantCode(t, err, webhook.ENotFound)

	dup := newToken(t, org, base)
	dup.Hash = tok.Hash
	wantCode(t, s.TokenCreate(ctx, dup, nil), webhook.EConflict)

	used := base.Add(time.Hour)
	if err := s.TokenTouch(ctx, tok.ID, used); err != nil {
		t.Fatal(err)
	}
	got, err = s.TokenGetByHash(ctx, tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "LastUsedAt", got.LastUsedAt, used)
	wantCode(t, s.TokenTouch(ctx, newID(t), used), webhook.ENotFound)
}

func testTokenRevoke(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	tok := newToken(t, org, base)
	if err := s.TokenCreate(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	at := base.Add(time.Minute)
	if err := s.TokenRevoke(ctx, tok.ID, at, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.TokenGetByHash(ctx, tok.Hash)
	wantCode(t, err, webhook.ENotFound)
	if err := s.TokenRevoke(ctx, tok.ID, at.Add(time.Minute), nil); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	wantCode(t, s.TokenRevoke(ctx, newID(t), at, nil), webhook.ENotFound)

	list, err := s.TokenList(ctx, org)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != tok.ID || list[0].RevokedAt.IsZero() || list[0].RevokedAt.Location() != time.UTC {
		t.Fatalf("TokenList = %+v, want the revoked token with RevokedAt", list)
	}
}

func testTokenList(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	orgA, orgB := newID(t), newID(t)
	var want []*webhook.Token
	for i := range 3 {
		tok := newToken(t, orgA, base.Add(time.Duration(3-i)*time.Second))
		if err := s.TokenCreate(ctx, tok, nil); err != nil {
			t.Fatal(err)
		}
		want = append([]*webhook.Token{tok}, want...)
	}
	if err := s.TokenCreate(ctx, newToken(t, orgB, base), nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.TokenList(ctx, orgA)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "TokenList", got, want)

	empty, err := s.TokenList(ctx, newID(t))
	if err != nil {
		t.Fatal(err)
	}
	if empty == nil || len(empty) != 0 {
		t.Fatalf("TokenList of empty org = %#v, want empty non-nil", empty)
	}
}

// ---- events ----

func testEventsCreateMatching(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org, other := newID(t), newID(t)

	all := newWebhook(t, org)
	failureOnly := newWebhook(t, org)
	failureOnly.Events = []webhook.EventType{webhook.EventDeploymentFailure}
	disabled := newWebhook(t, org)
	disabled.Enabled = false
	project := newWebhook(t, org)
	project.ProjectNamesFilter = []string{"API-*"}
	otherProject := newWebhook(t, org)
	otherProject.ProjectNamesFilter = []string{"front"}
	prod := newWebhook(t, org)
	prod.EnvironmentTypesFilter = []webhook.EnvironmentMode{webhook.ModeProduction}
	staging := newWebhook(t, org)
	staging.EnvironmentTypesFilter = []webhook.EnvironmentMode{webhook.ModeStaging}
	foreign := newWebhook(t, other)
	hooks := []*webhook.Webhook{all, failureOnly, disabled, project, otherProject, prod, staging}
	for _, w := range append(hooks, foreign) {
		createWebhook(t, s, w)
	}

	ev1 := newEvent(t, org, base) // STARTED, api-gateway, PRODUCTION
	ev2 := newEvent(t, org, base.Add(time.Second))
	ev2.Type = webhook.EventDeploymentFailure
	ev2.ProjectName = "front"
	ev2.EnvironmentMode = webhook.ModeStaging
	for _, ev := range []*webhook.Event{ev1, ev2} {
		var want []uuid.UUID
		for _, w := range hooks {
			if w.Matches(ev) {
				want = append(want, w.ID)
			}
		}
		r := createEvents(t, s, ev)[0]
		if r.Replayed || r.ID != ev.ID || r.Deliveries != len(want) || len(r.DeliveryIDs) != len(want) {
			t.Fatalf("receipt %+v, want id %v and %d deliveries", r, ev.ID, len(want))
		}
		wantTime(t, "receipt CreatedAt", r.CreatedAt, ev.CreatedAt)

		var got []uuid.UUID
		for _, w := range hooks {
			ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.EventID != ev.ID {
					continue
				}
				got = append(got, w.ID)
				if !slices.Contains(r.DeliveryIDs, d.ID) {
					t.Fatalf("delivery %v not in receipt %v", d.ID, r.DeliveryIDs)
				}
				want := webhook.Delivery{
					ID: d.ID, OrganizationID: org, WebhookID: w.ID, EventID: ev.ID,
					CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt,
					Status: webhook.DeliveryPending, DueAt: ev.CreatedAt, EventType: ev.Type,
				}
				wantEqual(t, "new delivery", *d, want)
			}
		}
		sortIDs(got)
		sortIDs(want)
		wantEqual(t, "matched webhooks of "+string(ev.Type), got, want)
	}
	// Sanity check on the expectations themselves.
	if !all.Matches(ev1) || !project.Matches(ev1) || !prod.Matches(ev1) || disabled.Matches(ev1) {
		t.Fatal("Matches disagrees with the suite")
	}

	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: other, WebhookID: foreign.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Fatalf("another organization's webhook got %d deliveries", len(ds))
	}

	// An event nothing matches is still stored and acknowledged.
	none := newEvent(t, newID(t), base)
	r := createEvents(t, s, none)[0]
	if r.ID != none.ID || r.Deliveries != 0 || len(r.DeliveryIDs) != 0 || r.Replayed {
		t.Fatalf("receipt of unmatched event: %+v", r)
	}
}

func testEventsCreateOnlyWebhook(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org)) // would match, but OnlyWebhookID wins
	target := newWebhook(t, org)
	target.Enabled = false
	target.Events = []webhook.EventType{webhook.EventDeploymentFailure}
	target.ProjectNamesFilter = []string{"nothing-matches"}
	createWebhook(t, s, target)

	ev := newEvent(t, org, base)
	ev.OnlyWebhookID = target.ID
	r := createEvents(t, s, ev)[0]
	if r.Deliveries != 1 || len(r.DeliveryIDs) != 1 {
		t.Fatalf("receipt %+v, want one delivery", r)
	}
	d := getDelivery(t, s, org, target.ID, r.DeliveryIDs[0])
	if d.EventID != ev.ID || d.Status != webhook.DeliveryPending {
		t.Fatalf("delivery %+v", d)
	}

	// Another organization's webhook cannot be targeted.
	foreign := createWebhook(t, s, newWebhook(t, newID(t)))
	ev2 := newEvent(t, org, base)
	ev2.OnlyWebhookID = foreign.ID
	_, err := s.EventsCreate(ctx, []*webhook.Event{ev2}, webhook.Lease{})
	wantCode(t, err, webhook.ENotFound)
	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: foreign.OrganizationID, WebhookID: foreign.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Fatalf("foreign webhook got %d deliveries", len(ds))
	}
}

func testEventsCreateIdempotency(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org, orgB := newID(t), newID(t)
	w1 := createWebhook(t, s, newWebhook(t, org))
	createWebhook(t, s, newWebhook(t, org))
	createWebhook(t, s, newWebhook(t, orgB))

	countDeliveries := func() int {
		t.Helper()
		ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w1.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}

	first := newEvent(t, org, base)
	first.IdempotencyKey = "key-1"
	r1 := createEvents(t, s, first)[0]
	if r1.Replayed || r1.Deliveries != 2 {
		t.Fatalf("first receipt %+v", r1)
	}

	again := newEvent(t, org, base.Add(webhook.IdempotencyWindow-time.Second))
	again.IdempotencyKey = "key-1"
	r2 := createEvents(t, s, again)[0]
	if !r2.Replayed || r2.ID != first.ID || r2.Deliveries != 2 || len(r2.DeliveryIDs) != 0 {
		t.Fatalf("replayed receipt %+v, want first event %v with 2 deliveries", r2, first.ID)
	}
	wantTime(t, "replayed CreatedAt", r2.CreatedAt, first.CreatedAt)
	if n := countDeliveries(); n != 1 {
		t.Fatalf("webhook has %d deliveries after a replay, want 1", n)
	}

	// The key is per organization.
	b := newEvent(t, orgB, base.Add(time.Second))
	b.IdempotencyKey = "key-1"
	rb := createEvents(t, s, b)[0]
	if rb.Replayed || rb.ID != b.ID || rb.Deliveries != 1 {
		t.Fatalf("other org receipt %+v", rb)
	}

	// Past the window the key starts a new event; the old one stays.
	late := newEvent(t, org, base.Add(webhook.IdempotencyWindow+time.Second))
	late.IdempotencyKey = "key-1"
	r3 := createEvents(t, s, late)[0]
	if r3.Replayed || r3.ID != late.ID || r3.Deliveries != 2 {
		t.Fatalf("late receipt %+v", r3)
	}
	if n := countDeliveries(); n != 2 {
		t.Fatalf("webhook has %d deliveries, want 2 (old event kept)", n)
	}
	for _, id := range r1.DeliveryIDs {
		if slices.Contains(r3.DeliveryIDs, id) {
			t.Fatal("late event reused a delivery id")
		}
	}

	// And the newest event now owns the key.
	later := newEvent(t, org, late.CreatedAt.Add(time.Minute))
	later.IdempotencyKey = "key-1"
	r4 := createEvents(t, s, later)[0]
	if !r4.Replayed || r4.ID != late.ID {
		t.Fatalf("receipt %+v, want replay of %v", r4, late.ID)
	}
}

// An Idempotency-Key reused with other content is refused, and stores
// nothing; with the same content it replays, and the hash is kept with
// the event.
func testEventsCreateKeyReused(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	withHash := func(ev *webhook.Event) *webhook.Event {
		ev.IdempotencyKey = "reused"
		ev.ContentHash = webhook.ContentHash(ev.Type, ev.Payload)
		return ev
	}
	first := withHash(newEvent(t, org, base))
	r1 := createEvents(t, s, first)[0]

	other := newEvent(t, org, base.Add(time.Minute))
	other.Payload = json.RawMessage(`{"other":true}`)
	_, err := s.EventsCreate(ctx, []*webhook.Event{withHash(other)}, webhook.Lease{})
	wantCode(t, err, webhook.EUnprocessable)
	// In a batch too: the whole batch is refused (the caller retries one by one).
	_, err = s.EventsCreate(ctx, []*webhook.Event{newEvent(t, org, base), other}, webhook.Lease{})
	wantCode(t, err, webhook.EUnprocessable)
	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: org, WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d deliveries after refused reuses, want 1", len(ds))
	}

	same := withHash(newEvent(t, org, base.Add(time.Minute)))
	r2 := createEvents(t, s, same)[0]
	if !r2.Replayed || r2.ID != r1.ID {
		t.Fatalf("same content: receipt %+v, want a replay of %v", r2, r1.ID)
	}
	// The stored hash is read back with the event.
	tasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 10})
	if len(tasks) != 1 {
		t.Fatalf("claimed %d tasks, want 1", len(tasks))
	}
	wantEqual(t, "claimed event", tasks[0].Event, *first)

	// Past the window other content starts a new event.
	late := newEvent(t, org, base.Add(webhook.IdempotencyWindow))
	late.Payload = json.RawMessage(`{"other":true}`)
	if r := createEvents(t, s, withHash(late))[0]; r.Replayed || r.ID != late.ID {
		t.Fatalf("past the window: receipt %+v, want event %v", r, late.ID)
	}
}

func testEventsCreateBatch(t *testing.T, s webhook.Store) {
	orgA, orgB := newID(t), newID(t)
	wa := createWebhook(t, s, newWebhook(t, orgA))
	createWebhook(t, s, newWebhook(t, orgB))
	createWebhook(t, s, newWebhook(t, orgB))

	e1 := newEvent(t, orgA, base)
	e1.IdempotencyKey = "k"
	e2 := newEvent(t, orgB, base)
	e3 := newEvent(t, orgA, base.Add(time.Second))
	e3.IdempotencyKey = "k" // repeats e1 within the same batch
	e4 := newEvent(t, orgA, base.Add(2*time.Second))
	rs := createEvents(t, s, e1, e2, e3, e4)

	want := []struct {
		id       uuid.UUID
		n        int
		replayed bool
	}{{e1.ID, 1, false}, {e2.ID, 2, false}, {e1.ID, 1, true}, {e4.ID, 1, false}}
	for i, w := range want {
		if rs[i].ID != w.id || rs[i].Deliveries != w.n || rs[i].Replayed != w.replayed {
			t.Fatalf("receipt %d = %+v, want %+v", i, rs[i], w)
		}
	}
	ds, err := s.DeliveryList(context.Background(), webhook.DeliveryListParams{OrganizationID: orgA, WebhookID: wa.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 {
		t.Fatalf("orgA webhook has %d deliveries, want 2", len(ds))
	}
}

// ---- claim ----

// Deliveries leased at intake come back as DeliveryClaim would return
// them, stay leased until the lease ends, and are claimed like any other
// after that (a process that died before sending them).
func testEventsCreateLease(t *testing.T, s webhook.Store) {
	org := newID(t)
	var hooks []*webhook.Webhook
	for range 3 {
		hooks = append(hooks, createWebhook(t, s, newWebhook(t, org)))
	}
	evs := []*webhook.Event{newEvent(t, org, base), newEvent(t, org, base.Add(time.Second))}
	evs[0].IdempotencyKey = "lease"
	until := base.Add(time.Minute)
	rs, err := s.EventsCreate(context.Background(), evs, webhook.Lease{Until: until, Limit: 4})
	if err != nil {
		t.Fatalf("EventsCreate: %v", err)
	}
	if len(rs[0].Tasks) != 3 || len(rs[1].Tasks) != 1 {
		t.Fatalf("leased %d and %d deliveries, want 3 and 1 (Limit 4 over the batch)", len(rs[0].Tasks), len(rs[1].Tasks))
	}
	var leased []uuid.UUID
	for i, r := range rs {
		for j, tk := range r.Tasks {
			leased = append(leased, tk.Delivery.ID)
			wantEqual(t, "Task.Delivery.ID", tk.Delivery.ID, r.DeliveryIDs[j])
			wantEqual(t, "Task.Event", tk.Event, *evs[i])
			wantEqual(t, "Task.Webhook", tk.Webhook, *hooks[j])
			d := getDelivery(t, s, org, hooks[j].ID, tk.Delivery.ID)
			wantEqual(t, "stored leased delivery", *d, tk.Delivery)
			if d.Status != webhook.DeliveryRunning || !d.DueAt.Equal(until) {
				t.Fatalf("leased delivery is %s due %s, want running until %s", d.Status, d.DueAt, until)
			}
		}
	}

	// Before the lease ends only the two deliveries left pending are due.
	now := base.Add(30 * time.Second)
	got := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
	want := []uuid.UUID{rs[1].DeliveryIDs[1], rs[1].DeliveryIDs[2]}
	sortIDs(want)
	wantEqual(t, "claimed during the intake lease", taskIDs(got), want)
	// After it, the leased ones are taken over.
	got = claim(t, s, webhook.ClaimParams{Now: until, LeaseUntil: until.Add(time.Minute), Limit: 10})
	sortIDs(leased)
	wantEqual(t, "claimed after the intake lease", taskIDs(got), leased)

	// A replayed event leases nothing; Limit 0 leases nothing.
	again := *evs[0]
	again.ID = uuid.Nil
	rs, err = s.EventsCreate(context.Background(), []*webhook.Event{&again, newEvent(t, org, base)}, webhook.Lease{Until: until, Limit: 10})
	if err != nil {
		t.Fatalf("EventsCreate: %v", err)
	}
	if !rs[0].Replayed || len(rs[0].Tasks) != 0 || len(rs[1].Tasks) != 3 {
		t.Fatalf("replayed %v with %d tasks, then %d tasks; want a replay with none, then 3", rs[0].Replayed, len(rs[0].Tasks), len(rs[1].Tasks))
	}
	rs = createEvents(t, s, newEvent(t, org, base))
	if len(rs[0].Tasks) != 0 {
		t.Fatalf("no lease asked, %d tasks returned", len(rs[0].Tasks))
	}
}

// An event matching many webhooks gets one delivery for each, whatever
// the backend's write batching: 101 is no multiple of any batch size.
func testEventsCreateFanout(t *testing.T, s webhook.Store) {
	org := newID(t)
	hooks := map[uuid.UUID]bool{}
	for range 101 {
		hooks[createWebhook(t, s, newWebhook(t, org)).ID] = true
	}
	r := createEvents(t, s, newEvent(t, org, base))[0]
	if r.Deliveries != 101 || len(r.DeliveryIDs) != 101 {
		t.Fatalf("%d deliveries (%d ids), want 101", r.Deliveries, len(r.DeliveryIDs))
	}
	got := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 500})
	if len(got) != 101 {
		t.Fatalf("claimed %d deliveries, want 101", len(got))
	}
	for _, tk := range got {
		if !hooks[tk.Webhook.ID] {
			t.Fatalf("a second delivery to webhook %s", tk.Webhook.ID)
		}
		delete(hooks, tk.Webhook.ID)
	}
}

func testDeliveryClaim(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := newWebhook(t, org)
	w.FailingSince = base.Add(-time.Hour)
	w.ProjectNamesFilter = []string{"api-*"}
	// The dispatcher signs with the previous secret too while rotating.
	w.PreviousSecret, w.SecretRotatedAt = "old-s3cret", base.Add(-time.Minute)
	createWebhook(t, s, w)

	// Created out of due order: the claim must follow DueAt, not creation.
	evs := []*webhook.Event{
		newEvent(t, org, base.Add(2*time.Second)),
		newEvent(t, org, base),
		newEvent(t, org, base.Add(time.Second)),
		newEvent(t, org, base.Add(time.Hour)), // not yet due
	}
	evs[1].IdempotencyKey = "idem"
	evs[1].Type = webhook.EventDeploymentSuccessful
	var ids []uuid.UUID
	for _, ev := range evs {
		ids = append(ids, createEvents(t, s, ev)[0].DeliveryIDs[0])
	}

	if got := claim(t, s, webhook.ClaimParams{Now: base.Add(-time.Second), LeaseUntil: base.Add(time.Minute), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d deliveries before any was due", len(got))
	}

	now := base.Add(10 * time.Second)
	lease := now.Add(time.Minute)
	tasks := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: lease, Limit: 2})
	want := []uuid.UUID{ids[1], ids[2]}
	sortIDs(want)
	wantEqual(t, "claimed", taskIDs(tasks), want)

	for _, tk := range tasks {
		i := slices.Index(ids, tk.Delivery.ID)
		ev := *evs[i]
		wantEqual(t, "Task.Event", tk.Event, ev)
		if !bytes.Equal(tk.Event.Payload, evs[i].Payload) {
			t.Fatalf("payload %q, want %q", tk.Event.Payload, evs[i].Payload)
		}
		wantEqual(t, "Task.Webhook", tk.Webhook, *w)
		wantEqual(t, "Task.Delivery", tk.Delivery, webhook.Delivery{
			ID: tk.Delivery.ID, OrganizationID: org, WebhookID: w.ID, EventID: ev.ID,
			CreatedAt: ev.CreatedAt, UpdatedAt: now, Status: webhook.DeliveryRunning,
			DueAt: lease, EventType: ev.Type, Lease: 1,
		})
		d := getDelivery(t, s, org, w.ID, tk.Delivery.ID)
		wantEqual(t, "stored claimed delivery", *d, tk.Delivery)
	}

	// Limit 0 claims nothing.
	if got := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: lease, Limit: 0}); len(got) != 0 {
		t.Fatalf("Limit 0 claimed %d", len(got))
	}
}

func testDeliveryClaimLease(t *testing.T, s webhook.Store) {
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org))
	a := deliver(t, s, org, base)
	b := deliver(t, s, org, base.Add(time.Second))

	now := base.Add(time.Minute)
	lease := now.Add(time.Minute)
	first := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: lease, Limit: 1})
	wantEqual(t, "first claim", taskIDs(first), []uuid.UUID{a})
	second := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: lease, Limit: 10})
	wantEqual(t, "second claim", taskIDs(second), []uuid.UUID{b})
	if got := claim(t, s, webhook.ClaimParams{Now: lease.Add(-time.Microsecond), LeaseUntil: lease.Add(time.Hour), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d leased deliveries before the lease ended", len(got))
	}
	// A lease that has ended is how a crashed worker's work is taken over.
	again := claim(t, s, webhook.ClaimParams{Now: lease, LeaseUntil: lease.Add(time.Minute), Limit: 10})
	want := []uuid.UUID{a, b}
	sortIDs(want)
	wantEqual(t, "claim after lease", taskIDs(again), want)
	for _, tk := range again {
		wantTime(t, "new lease", tk.Delivery.DueAt, lease.Add(time.Minute))
	}
}

func testDeliveryClaimExclude(t *testing.T, s webhook.Store) {
	org := newID(t)
	w1 := createWebhook(t, s, newWebhook(t, org))
	w2 := createWebhook(t, s, newWebhook(t, org))
	w3 := createWebhook(t, s, newWebhook(t, org))
	createEvents(t, s, newEvent(t, org, base))

	p := webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 10, ExcludeWebhooks: []uuid.UUID{w1.ID, w3.ID}}
	tasks := claim(t, s, p)
	if len(tasks) != 1 || tasks[0].Webhook.ID != w2.ID || tasks[0].Delivery.WebhookID != w2.ID {
		t.Fatalf("claimed %d tasks, want only webhook %v's", len(tasks), w2.ID)
	}
	p.ExcludeWebhooks = []uuid.UUID{w1.ID}
	tasks = claim(t, s, p)
	if len(tasks) != 1 || tasks[0].Webhook.ID != w3.ID {
		t.Fatalf("claimed %d tasks, want only webhook %v's", len(tasks), w3.ID)
	}
}

func testDeliveryClaimConcurrent(t *testing.T, s webhook.Store) {
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org))
	const n = 60
	evs := make([]*webhook.Event, n)
	for i := range evs {
		evs[i] = newEvent(t, org, base.Add(time.Duration(i)*time.Millisecond))
	}
	createEvents(t, s, evs...)

	var (
		mu      sync.Mutex
		seen    = map[uuid.UUID]int{}
		claimed int
		wg      sync.WaitGroup
		errs    = make(chan error, 8)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				tasks, err := s.DeliveryClaim(context.Background(), webhook.ClaimParams{
					Now: base.Add(time.Second), LeaseUntil: base.Add(time.Hour), Limit: 3,
				})
				if err != nil {
					errs <- err
					return
				}
				if len(tasks) == 0 {
					return
				}
				mu.Lock()
				for _, tk := range tasks {
					seen[tk.Delivery.ID]++
					claimed++
				}
				// A store that hands rows out twice would keep this
				// loop going for ever; stop and let the checks report it.
				over := claimed > n
				mu.Unlock()
				if over {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("DeliveryClaim: %v", err)
	}
	if len(seen) != n {
		t.Fatalf("claimed %d distinct deliveries, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("delivery %v claimed %d times", id, c)
		}
	}
}

// ---- complete ----

// claimOne creates a webhook (changed by edit) and one event for it, and
// claims the one delivery.
func claimOne(t *testing.T, s webhook.Store, edit func(*webhook.Webhook)) (*webhook.Webhook, *webhook.Task) {
	t.Helper()
	org := newID(t)
	w := newWebhook(t, org)
	if edit != nil {
		edit(w)
	}
	createWebhook(t, s, w)
	deliver(t, s, org, base)
	tasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Minute), Limit: 10})
	if len(tasks) != 1 {
		// Other subtests' rows never share a store, so exactly one is due.
		t.Fatalf("claimed %d tasks, want 1", len(tasks))
	}
	return w, tasks[0]
}

func testDeliveryCompleteSuccess(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, func(w *webhook.Webhook) { w.FailingSince = base.Add(-time.Hour) })
	a := newAttempt(t, &tk.Delivery, 1, 204, base.Add(time.Second))
	complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliverySucceeded})

	d := getDelivery(t, s, w.OrganizationID, w.ID, tk.Delivery.ID)
	if d.Status != webhook.DeliverySucceeded || d.Attempts != 1 || d.LastStatusCode != 204 || d.LastError != "" {
		t.Fatalf("delivery after success: %+v", d)
	}
	if got := getWebhook(t, s, w.OrganizationID, w.ID); !got.FailingSince.IsZero() || !got.Enabled {
		t.Fatalf("webhook after success: %+v", got)
	}
	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 {
		t.Fatalf("got %d attempts, want 1", len(as))
	}
	want := a
	ev := tk.Event
	want.Event = &ev
	wantEqual(t, "attempt", *as[0], want)
	// A succeeded delivery is never claimed again.
	if got := claim(t, s, webhook.ClaimParams{Now: base.Add(time.Hour), LeaseUntil: base.Add(2 * time.Hour), Limit: 10}); len(got) != 0 {
		t.Fatalf("claimed %d finished deliveries", len(got))
	}
}

// An outcome that would leave its delivery in no state the queue knows
// is refused on every backend, and nothing of it is stored.
func testDeliveryCompleteInvalid(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, nil)
	a := newAttempt(t, &tk.Delivery, 1, 500, base.Add(time.Second))
	for _, o := range []webhook.Outcome{
		{Attempt: a, Lease: tk.Delivery.Lease, Status: webhook.DeliveryPending}, // no NextAttemptAt
		{Attempt: a, Lease: tk.Delivery.Lease, Status: webhook.DeliveryRunning},
		{Attempt: a, Lease: tk.Delivery.Lease, Status: "lost"},
	} {
		if _, err := s.DeliveryComplete(ctx, []webhook.Outcome{o}); webhook.ErrorCode(err) != webhook.EInvalid {
			t.Fatalf("outcome %q (next attempt %v): %v, want invalid", o.Status, o.NextAttemptAt, err)
		}
	}
	if d := getDelivery(t, s, w.OrganizationID, w.ID, tk.Delivery.ID); d.Status != webhook.DeliveryRunning || d.Attempts != 0 {
		t.Fatalf("delivery after refused outcomes: %+v", d)
	}
}

func testDeliveryCompleteFailure(t *testing.T, s webhook.Store) {
	w, tk := claimOne(t, s, nil)
	org := w.OrganizationID
	next := base.Add(5 * time.Minute)
	a1 := newAttempt(t, &tk.Delivery, 1, 0, base.Add(time.Second))
	complete(t, s, webhook.Outcome{Attempt: a1, Status: webhook.DeliveryPending, NextAttemptAt: next})

	d := getDelivery(t, s, org, w.ID, tk.Delivery.ID)
	if d.Status != webhook.DeliveryPending || d.Attempts != 1 || d.LastStatusCode != 0 || d.LastError != "connection refused" {
		t.Fatalf("delivery after failure: %+v", d)
	}
	wantTime(t, "DueAt", d.DueAt, next)
	wantTime(t, "FailingSince", getWebhook(t, s, org, w.ID).FailingSince, a1.CreatedAt)

	if got := claim(t, s, webhook.ClaimParams{Now: next.Add(-time.Microsecond), LeaseUntil: next.Add(time.Hour), Limit: 10}); len(got) != 0 {
		t.Fatal("claimed a delivery before its next attempt")
	}
	tasks := claim(t, s, webhook.ClaimParams{Now: next, LeaseUntil: next.Add(time.Minute), Limit: 10})
	if len(tasks) != 1 {
		t.Fatalf("claimed %d, want the retried delivery", len(tasks))
	}
	a2 := newAttempt(t, &tasks[0].Delivery, 2, 503, next.Add(time.Second))
	complete(t, s, webhook.Outcome{Attempt: a2, Status: webhook.DeliveryFailed})
	d = getDelivery(t, s, org, w.ID, tk.Delivery.ID)
	if d.Status != webhook.DeliveryFailed || d.Attempts != 2 || d.LastStatusCode != 503 || d.LastError != "" {
		t.Fatalf("delivery after final failure: %+v", d)
	}
	got := getWebhook(t, s, org, w.ID)
	// The first failure after the last success still dates the trouble.
	wantTime(t, "FailingSince", got.FailingSince, a1.CreatedAt)
	if !got.Enabled || got.DisabledReason != "" {
		t.Fatalf("webhook disabled without a reason: %+v", got)
	}
}

func testDeliveryCompleteDisable(t *testing.T, s webhook.Store) {
	w, tk := claimOne(t, s, nil)
	a := newAttempt(t, &tk.Delivery, 1, 410, base.Add(time.Second))
	complete(t, s, webhook.Outcome{Attempt: a, Status: webhook.DeliveryFailed, DisableReason: "the receiver answered 410 Gone"})
	got := getWebhook(t, s, w.OrganizationID, w.ID)
	if got.Enabled || got.DisabledReason != "the receiver answered 410 Gone" {
		t.Fatalf("webhook after disable: %+v", got)
	}
	want := *w
	want.Enabled = false
	want.DisabledReason = got.DisabledReason
	want.FailingSince = a.CreatedAt
	want.UpdatedAt = got.UpdatedAt // when a backend records the change is its own
	wantEqual(t, "webhook after disable", got, &want)
}

func testDeliveryCompleteWebhookDeleted(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, nil)
	// A second delivery in the same call, to a webhook that still exists.
	w2, tk2 := claimOne(t, s, nil)
	if err := deleteWebhook(ctx, s, w.OrganizationID, w.ID, nil); err != nil {
		t.Fatal(err)
	}
	complete(t, s,
		webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 200, base.Add(time.Second)), Status: webhook.DeliverySucceeded},
		webhook.Outcome{Attempt: newAttempt(t, &tk2.Delivery, 1, 200, base.Add(time.Second)), Status: webhook.DeliverySucceeded},
	)
	_, err := s.DeliveryGet(ctx, w.OrganizationID, w.ID, tk.Delivery.ID)
	wantCode(t, err, webhook.ENotFound)
	as, err := s.AttemptList(ctx, webhook.AttemptListParams{OrganizationID: w.OrganizationID, WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 0 {
		t.Fatalf("stored %d attempts for a deleted webhook", len(as))
	}
	if d := getDelivery(t, s, w2.OrganizationID, w2.ID, tk2.Delivery.ID); d.Status != webhook.DeliverySucceeded {
		t.Fatalf("other delivery: %+v", d)
	}
}

// ---- release, retry, get ----

// One DeliveryComplete call with many outcomes, interleaved across
// webhooks, has the effect of applying them one by one, in order,
// whatever the backend's batching.
func testDeliveryCompleteBatch(t *testing.T, s webhook.Store) {
	org := newID(t)
	a := createWebhook(t, s, newWebhook(t, org))
	b := newWebhook(t, org)
	b.FailingSince = base.Add(-time.Hour)
	createWebhook(t, s, b)
	gone := createWebhook(t, s, newWebhook(t, org))
	for i := range 35 {
		createEvents(t, s, newEvent(t, org, base.Add(time.Duration(i)*time.Millisecond)))
	}
	tasks := claim(t, s, webhook.ClaimParams{Now: base.Add(time.Second), LeaseUntil: base.Add(time.Hour), Limit: 500})
	if len(tasks) != 105 {
		t.Fatalf("claimed %d, want 105", len(tasks))
	}
	// One webhook is deleted while its attempts run: its outcomes are
	// dropped, the others still recorded.
	if err := deleteWebhook(context.Background(), s, org, gone.ID, nil); err != nil {
		t.Fatal(err)
	}
	var outcomes []webhook.Outcome
	var aFirstFailureAfterSuccess time.Time
	na, nb := 0, 0
	for i, tk := range tasks {
		at := base.Add(time.Minute + time.Duration(i)*time.Second)
		o := webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 500, at), Status: webhook.DeliveryPending, NextAttemptAt: at.Add(time.Hour)}
		switch tk.Webhook.ID {
		case a.ID: // failures, one success, then failures again
			if na == 20 {
				o.Attempt.StatusCode, o.Status, o.NextAttemptAt = 200, webhook.DeliverySucceeded, time.Time{}
			} else if na == 21 {
				aFirstFailureAfterSuccess = at
			}
			na++
		case b.ID: // successes, two disabling failures, successes
			switch nb {
			case 5:
				o.Status, o.NextAttemptAt, o.DisableReason = webhook.DeliveryFailed, time.Time{}, "first reason"
			case 6:
				o.Status, o.NextAttemptAt, o.DisableReason = webhook.DeliveryFailed, time.Time{}, "second reason"
			default:
				o.Attempt.StatusCode, o.Status, o.NextAttemptAt = 200, webhook.DeliverySucceeded, time.Time{}
			}
			nb++
		}
		outcomes = append(outcomes, o)
	}
	complete(t, s, outcomes...)

	gotA := getWebhook(t, s, org, a.ID)
	wantTime(t, "a.FailingSince", gotA.FailingSince, aFirstFailureAfterSuccess)
	if !gotA.Enabled {
		t.Fatal("a was disabled")
	}
	gotB := getWebhook(t, s, org, b.ID)
	if !gotB.FailingSince.IsZero() || gotB.Enabled || gotB.DisabledReason != "first reason" {
		t.Fatalf("b: failing since %v, enabled %v, reason %q; want not failing, disabled for the first reason",
			gotB.FailingSince, gotB.Enabled, gotB.DisabledReason)
	}
	for _, o := range outcomes {
		if o.Attempt.WebhookID == gone.ID {
			continue
		}
		d := getDelivery(t, s, org, o.Attempt.WebhookID, o.Attempt.DeliveryID)
		if d.Status != o.Status || d.Attempts != 1 || d.LastStatusCode != o.Attempt.StatusCode {
			t.Fatalf("delivery %+v after outcome %s %d", d, o.Status, o.Attempt.StatusCode)
		}
	}
	for _, w := range []*webhook.Webhook{a, b} {
		var n int
		p := webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 20}
		for {
			page, err := s.AttemptList(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			n += len(page)
			if len(page) < p.Limit {
				break
			}
			p.Before = page[len(page)-1].ID
		}
		if n != 35 {
			t.Fatalf("webhook %s has %d attempts recorded, want 35", w.ID, n)
		}
	}
}

func testDeliveryRelease(t *testing.T, s webhook.Store) {
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	deliver(t, s, org, base)
	deliver(t, s, org, base)
	tasks := claim(t, s, webhook.ClaimParams{Now: base, LeaseUntil: base.Add(time.Hour), Limit: 10})
	if len(tasks) != 2 {
		t.Fatalf("claimed %d, want 2", len(tasks))
	}
	due := base.Add(time.Minute)
	refs := []webhook.DeliveryRef{tasks[0].Ref(), tasks[1].Ref()}
	if err := s.DeliveryRelease(context.Background(), refs, due); err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		d := getDelivery(t, s, org, w.ID, tk.Delivery.ID)
		if d.Status != webhook.DeliveryPending || d.Attempts != 0 {
			t.Fatalf("released delivery: %+v", d)
		}
		wantTime(t, "DueAt", d.DueAt, due)
	}
	tasks = claim(t, s, webhook.ClaimParams{Now: due, LeaseUntil: due.Add(time.Hour), Limit: 10})
	if len(tasks) != 2 {
		t.Fatalf("claimed %d released deliveries, want 2", len(tasks))
	}
	// Another organization cannot release them.
	refs[0] = tasks[0].Ref()
	refs[0].OrganizationID = newID(t)
	if err := s.DeliveryRelease(context.Background(), refs[:1], due); err != nil {
		t.Fatal(err)
	}
	if d := getDelivery(t, s, org, w.ID, tasks[0].Delivery.ID); d.Status != webhook.DeliveryRunning {
		t.Fatalf("foreign release changed the delivery: %+v", d)
	}
}

func testDeliveryRetry(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	w, tk := claimOne(t, s, nil)
	org := w.OrganizationID
	id := tk.Delivery.ID

	_, err := s.DeliveryRetry(ctx, org, w.ID, id, base.Add(time.Second))
	wantCode(t, err, webhook.EConflict)

	complete(t, s, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 500, base.Add(time.Second)), Status: webhook.DeliveryFailed})
	now := base.Add(time.Hour)
	d, err := s.DeliveryRetry(ctx, org, w.ID, id, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != webhook.DeliveryPending || d.Attempts != 1 || d.ID != id {
		t.Fatalf("retried delivery: %+v", d)
	}
	wantTime(t, "DueAt", d.DueAt, now)
	wantTime(t, "UpdatedAt", d.UpdatedAt, now)
	wantEqual(t, "stored retried delivery", getDelivery(t, s, org, w.ID, id), d)

	// Retrying a pending delivery is allowed.
	if _, err := s.DeliveryRetry(ctx, org, w.ID, id, now); err != nil {
		t.Fatal(err)
	}
	tasks := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
	if len(tasks) != 1 || tasks[0].Delivery.ID != id {
		t.Fatalf("claimed %d after retry", len(tasks))
	}

	_, err = s.DeliveryRetry(ctx, newID(t), w.ID, id, now)
	wantCode(t, err, webhook.ENotFound)
	_, err = s.DeliveryRetry(ctx, org, newID(t), id, now)
	wantCode(t, err, webhook.ENotFound)
	_, err = s.DeliveryRetry(ctx, org, w.ID, newID(t), now)
	wantCode(t, err, webhook.ENotFound)
}

func testDeliveryGet(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	id := deliver(t, s, org, base)
	getDelivery(t, s, org, w.ID, id)

	_, err := s.DeliveryGet(ctx, newID(t), w.ID, id)
	wantCode(t, err, webhook.ENotFound)
	_, err = s.DeliveryGet(ctx, org, newID(t), id)
	wantCode(t, err, webhook.ENotFound)
	_, err = s.DeliveryGet(ctx, org, w.ID, newID(t))
	wantCode(t, err, webhook.ENotFound)
}

// ---- lists ----

func testDeliveryList(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	var ids []uuid.UUID // oldest first
	for i := range 5 {
		ids = append(ids, deliver(t, s, org, base.Add(time.Duration(i)*time.Second)))
	}
	slices.Reverse(ids) // newest first

	list := func(p webhook.DeliveryListParams) []uuid.UUID {
		t.Helper()
		p.OrganizationID, p.WebhookID = org, w.ID
		ds, err := s.DeliveryList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		out := []uuid.UUID{}
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	wantEqual(t, "all", list(webhook.DeliveryListParams{Limit: 10}), ids)
	wantEqual(t, "limit", list(webhook.DeliveryListParams{Limit: 2}), ids[:2])
	wantEqual(t, "before", list(webhook.DeliveryListParams{Limit: 2, Before: ids[1]}), ids[2:4])
	wantEqual(t, "before last", list(webhook.DeliveryListParams{Limit: 2, Before: ids[4]}), []uuid.UUID{})

	// Finish the newest and the oldest; filter by status.
	tasks := claim(t, s, webhook.ClaimParams{Now: base.Add(time.Hour), LeaseUntil: base.Add(2 * time.Hour), Limit: 10})
	for _, tk := range tasks {
		if tk.Delivery.ID == ids[0] || tk.Delivery.ID == ids[4] {
			complete(t, s, webhook.Outcome{Attempt: newAttempt(t, &tk.Delivery, 1, 200, base.Add(time.Hour)), Status: webhook.DeliverySucceeded})
		}
	}
	wantEqual(t, "succeeded", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliverySucceeded}), []uuid.UUID{ids[0], ids[4]})
	wantEqual(t, "running", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliveryRunning}), ids[1:4])
	wantEqual(t, "succeeded before", list(webhook.DeliveryListParams{Limit: 10, Status: webhook.DeliverySucceeded, Before: ids[0]}), []uuid.UUID{ids[4]})

	ds, err := s.DeliveryList(ctx, webhook.DeliveryListParams{OrganizationID: newID(t), WebhookID: w.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if ds == nil || len(ds) != 0 {
		t.Fatalf("another organization listed %#v", ds)
	}
}

func testDeliveryBacklog(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	due, oldest, err := s.DeliveryBacklog(ctx, base)
	if err != nil || due != 0 || !oldest.IsZero() {
		t.Fatalf("empty backlog = %d, %v, %v", due, oldest, err)
	}
	org := newID(t)
	createWebhook(t, s, newWebhook(t, org))
	deliver(t, s, org, base)
	deliver(t, s, org, base.Add(time.Second))
	deliver(t, s, org, base.Add(2*time.Second))
	deliver(t, s, org, base.Add(time.Hour))

	due, oldest, err = s.DeliveryBacklog(ctx, base.Add(10*time.Second))
	if err != nil || due != 3 {
		t.Fatalf("backlog = %d, %v, want 3", due, err)
	}
	wantTime(t, "oldest", oldest, base)

	// Running deliveries count only once their lease has passed.
	claim(t, s, webhook.ClaimParams{Now: base.Add(10 * time.Second), LeaseUntil: base.Add(time.Minute), Limit: 1})
	due, oldest, err = s.DeliveryBacklog(ctx, base.Add(10*time.Second))
	if err != nil || due != 2 {
		t.Fatalf("backlog = %d, %v, want 2", due, err)
	}
	wantTime(t, "oldest", oldest, base.Add(time.Second))
	due, oldest, err = s.DeliveryBacklog(ctx, base.Add(time.Minute))
	if err != nil || due != 3 {
		t.Fatalf("backlog = %d, %v, want 3", due, err)
	}
	wantTime(t, "oldest", oldest, base.Add(time.Second))
}

func testAttemptList(t *testing.T, s webhook.Store) {
	ctx := context.Background()
	org := newID(t)
	w := createWebhook(t, s, newWebhook(t, org))
	other := createWebhook(t, s, newWebhook(t, newID(t)))
	deliver(t, s, org, base)
	deliver(t, s, org, base.Add(time.Second))
	deliver(t, s, other.OrganizationID, base)

	// Three rounds of attempts on both deliveries: six attempts in all.
	var attempts []webhook.Attempt // oldest first
	events := map[uuid.UUID]webhook.Event{}
	now := base.Add(time.Minute)
	for round := 1; round <= 3; round++ {
		tasks := claim(t, s, webhook.ClaimParams{Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
		sort.Slice(tasks, func(i, j int) bool { return tasks[i].Delivery.ID.String() < tasks[j].Delivery.ID.String() })
		var outs []webhook.Outcome
		for _, tk := range tasks {
			if tk.Delivery.OrganizationID != org {
				continue
			}
			events[tk.Event.ID] = tk.Event
			a := newAttempt(t, &tk.Delivery, round, 500, now.Add(time.Second))
			attempts = append(attempts, a)
			outs = append(outs, webhook.Outcome{Attempt: a, Status: webhook.DeliveryPending, NextAttemptAt: now.Add(time.Minute)})
		}
		complete(t, s, outs...)
		now = now.Add(time.Minute)
	}
	if len(attempts) != 6 {
		t.Fatalf("made %d attempts, want 6", len(attempts))
	}
	slices.Reverse(attempts) // newest first

	list := func(p webhook.AttemptListParams) []*webhook.Attempt {
		t.Helper()
		as, err := s.AttemptList(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	ids := func(as []*webhook.Attempt) []uuid.UUID {
		out := []uuid.UUID{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	wantIDs := func(as []webhook.Attempt) []uuid.UUID {
		out := []uuid.UUID{}
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}

	all := list(webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 100})
	wantEqual(t, "all attempts", ids(all), wantIDs(attempts))
	for i, a := range all {
		want := attempts[i]
		ev := events[want.EventID]
		want.Event = &ev
		wantEqual(t, "attempt", *a, want)
	}
	wantEqual(t, "limit", ids(list(webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 2})), wantIDs(attempts[:2]))
	wantEqual(t, "before", ids(list(webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, Limit: 3, Before: attempts[1].ID})), wantIDs(attempts[2:5]))

	var ofDelivery []webhook.Attempt
	for _, a := range attempts {
		if a.DeliveryID == attempts[0].DeliveryID {
			ofDelivery = append(ofDelivery, a)
		}
	}
	wantEqual(t, "by delivery", ids(list(webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, DeliveryID: attempts[0].DeliveryID, Limit: 100})), wantIDs(ofDelivery))
	wantEqual(t, "by delivery before", ids(list(webhook.AttemptListParams{OrganizationID: org, WebhookID: w.ID, DeliveryID: attempts[0].DeliveryID, Before: ofDelivery[0].ID, Limit: 100})), wantIDs(ofDelivery[1:]))

	if as := list(webhook.AttemptListParams{OrganizationID: other.OrganizationID, WebhookID: w.ID, Limit: 100}); as == nil || len(as) != 0 {
		t.Fatalf("another organization listed %d attempts", len(as))
	}
}

// ---- retention ----

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

func ptr[T any](v T) *T { return &v }
