// Package storetest is the conformance suite every webhook.Store backend
// runs, so the SQLite and PostgreSQL backends keep one behaviour. It only
// uses the webhook.Store interface; it must never reach into a backend.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
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
		{"EventsCreateSourceKey", testEventsCreateSourceKey},
		{"EventsCreateBatch", testEventsCreateBatch},
		{"EventsCreateBatchReplays", testEventsCreateBatchReplays},
		{"EventsCreateOddKeys", testEventsCreateOddKeys},
		{"EventsCreateLease", testEventsCreateLease},
		{"EventsCreateFanout", testEventsCreateFanout},
		{"EventsCreateSeesWebhookChanges", testEventsCreateSeesWebhookChanges},
		{"DeliveryClaim", testDeliveryClaim},
		{"DeliveryClaimLease", testDeliveryClaimLease},
		{"DeliveryClaimSharedEvents", testDeliveryClaimSharedEvents},
		{"DeliveryClaimExclude", testDeliveryClaimExclude},
		{"DeliveryClaimConcurrent", testDeliveryClaimConcurrent},
		{"DeliveryCompleteSuccess", testDeliveryCompleteSuccess},
		{"DeliveryCompleteFailure", testDeliveryCompleteFailure},
		{"DeliveryCompleteDisable", testDeliveryCompleteDisable},
		{"DeliveryCompleteReportsDisables", testDeliveryCompleteReportsDisables},
		{"DeliveryCompleteDisableIsAnEdit", testDeliveryCompleteDisableIsAnEdit},
		{"DeliveryCompleteOutdated", testDeliveryCompleteOutdated},
		{"DeliveryCompleteDisableAfterSuccess", testDeliveryCompleteDisableAfterSuccess},
		{"DeliveryCompleteDisableStaleOutcomes", testDeliveryCompleteDisableStaleOutcomes},
		{"DeliveryCompleteStreakEndedLastAttempt", testDeliveryCompleteStreakEndedLastAttempt},
		{"DeliveryCompleteWebhookDeleted", testDeliveryCompleteWebhookDeleted},
		{"DeliveryCompleteOwnWebhook", testDeliveryCompleteOwnWebhook},
		{"DeliveryCompleteBatch", testDeliveryCompleteBatch},
		{"DeliveryCompleteInvalid", testDeliveryCompleteInvalid},
		{"DeliveryCompleteOddText", testDeliveryCompleteOddText},
		{"DeliveryCompleteCounts", testDeliveryCompleteCounts},
		{"DeliveryRelease", testDeliveryRelease},
		{"LeaseStaleOutcome", testLeaseStaleOutcome},
		{"LeaseOutcomeTwice", testLeaseOutcomeTwice},
		{"LeaseOutcomeSentAgain", testLeaseOutcomeSentAgain},
		{"LeaseDisableSentAgain", testLeaseDisableSentAgain},
		{"LeaseSucceededNeverReopens", testLeaseSucceededNeverReopens},
		{"LeaseRenew", testLeaseRenew},
		{"LeaseOtherOrganization", testLeaseOtherOrganization},
		{"LeaseOtherOrganizationBatch", testLeaseOtherOrganizationBatch},
		{"DeliveryRetry", testDeliveryRetry},
		{"DeliveryRecover", testDeliveryRecover},
		{"DeliveryRecoverPending", testDeliveryRecoverPending},
		{"DeliveryRecoverConcurrent", testDeliveryRecoverConcurrent},
		{"DeliveryGet", testDeliveryGet},
		{"DeliveryList", testDeliveryList},
		{"DeliveryBacklog", testDeliveryBacklog},
		{"AttemptList", testAttemptList},
		{"AttemptStats", testAttemptStats},
		{"DeleteBefore", testDeleteBefore},
		{"AuditWebhook", testAuditWebhook},
		{"AuditAtomic", testAuditAtomic},
		{"AuditOddActor", testAuditOddActor},
		{"AuditToken", testAuditToken},
		{"AuditList", testAuditList},
		{"AuditDisabledByHookd", testAuditDisabledByHookd},
		{"SourceRoundTrip", testSourceRoundTrip},
		{"SourceList", testSourceList},
		{"SourceCreateLimit", testSourceCreateLimit},
		{"SourceCreateLimitConcurrent", testSourceCreateLimitConcurrent},
		{"SourceUpdateConcurrent", testSourceUpdateConcurrent},
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
		a := o.Attempt
		// A deleted webhook's deliveries go in the background: an outcome
		// of one is stale or not, by when its delivery goes.
		if _, err := s.WebhookGet(context.Background(), a.OrganizationID, a.WebhookID); webhook.ErrorCode(err) == webhook.ENotFound {
			gone[a.DeliveryID] = true
		}
		if o.Lease == 0 {
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
	res, err := s.DeliveryComplete(context.Background(), outcomes)
	if err != nil {
		t.Fatalf("DeliveryComplete: %v", err)
	}
	for _, r := range res.Stale {
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

// ---- tokens ----

// ---- events ----

// ---- claim ----

// ---- complete ----

// ---- release, retry, get ----

// ---- lists ----

// ---- retention ----

func ptr[T any](v T) *T { return &v }

// eventually is Eventually with 30 seconds: a background purge under the
// race detector is slow.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	Eventually(t, 30*time.Second, check)
}

// Eventually calls check, which says what is wrong or "", every 10 ms
// until it says "" or within has passed, and then fails the test with
// what it said last. For what a store does in the background.
func Eventually(t *testing.T, within time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		wrong := check()
		if wrong == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(wrong)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
