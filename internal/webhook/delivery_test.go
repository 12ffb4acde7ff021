package webhook

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Both backends refuse the same outcomes and refs (ValidateOutcomes,
// ValidateRefs); each case changes one thing of a valid outcome, at the
// edge of what is allowed where there is one.
func TestValidateOutcomes(t *testing.T) {
	valid := Outcome{Status: DeliveryFailed, Lease: 3, Attempt: Attempt{
		OrganizationID: uuid.New(), WebhookID: uuid.New(), DeliveryID: uuid.New(),
		CreatedAt: t0, Number: 1, StatusCode: 500}}
	tests := []struct {
		name string
		edit func(*Outcome)
		ok   bool
	}{
		{"valid", func(*Outcome) {}, true},
		{"succeeded", func(o *Outcome) { o.Status = DeliverySucceeded }, true},
		{"pending with its next attempt", func(o *Outcome) { o.Status, o.NextAttemptAt = DeliveryPending, t0.Add(time.Minute) }, true},
		{"pending without a next attempt", func(o *Outcome) { o.Status = DeliveryPending }, false},
		{"running", func(o *Outcome) { o.Status = DeliveryRunning }, false},
		{"no status", func(o *Outcome) { o.Status = "" }, false},
		{"no answer", func(o *Outcome) { o.Attempt.StatusCode = 0 }, true},
		{"status 999", func(o *Outcome) { o.Attempt.StatusCode = 999 }, true},
		{"status 1000", func(o *Outcome) { o.Attempt.StatusCode = 1000 }, false},
		{"status -1", func(o *Outcome) { o.Attempt.StatusCode = -1 }, false},
		{"attempt 0", func(o *Outcome) { o.Attempt.Number = 0 }, false},
		{"attempt MaxInt32", func(o *Outcome) { o.Attempt.Number = math.MaxInt32 }, true},
		{"attempt past MaxInt32", func(o *Outcome) { n := math.MaxInt32; o.Attempt.Number = n + 1 }, false},
		{"no start", func(o *Outcome) { o.Attempt.CreatedAt = time.Time{} }, false},
		{"no webhook", func(o *Outcome) { o.Attempt.WebhookID = uuid.Nil }, false},
		{"no delivery", func(o *Outcome) { o.Attempt.DeliveryID = uuid.Nil }, false},
		{"a disable about a version", func(o *Outcome) { o.DisableReason, o.WebhookUpdatedAt = "gone", t0 }, true},
		{"a disable about no version", func(o *Outcome) { o.DisableReason = "gone" }, false},
		{"no version, disabling nothing", func(o *Outcome) { o.WebhookUpdatedAt = time.Time{} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.edit(&o)
			// Second in the list, so a check that looked only at the first
			// outcome would pass it.
			err := ValidateOutcomes([]Outcome{valid, o})
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && ErrorCode(err) != EInvalid {
				t.Fatalf("got %v, want an invalid-input error", err)
			}
		})
	}
}

func TestValidateRefs(t *testing.T) {
	valid := DeliveryRef{OrganizationID: uuid.New(), WebhookID: uuid.New(), ID: uuid.New(), Lease: 2}
	noHook, noID := valid, valid
	noHook.WebhookID, noID.ID = uuid.Nil, uuid.Nil
	if err := ValidateRefs([]DeliveryRef{valid, valid}); err != nil {
		t.Fatalf("refused a whole ref: %v", err)
	}
	for _, r := range []DeliveryRef{noHook, noID} {
		if err := ValidateRefs([]DeliveryRef{valid, r}); ErrorCode(err) != EInvalid {
			t.Fatalf("ValidateRefs(%+v) = %v, want an invalid-input error", r, err)
		}
	}
}

// An outcome's ref and its task's name the same delivery under the same
// lease: DeliveryComplete's stale list and the dispatcher's holdings meet.
func TestOutcomeRefIsTaskRef(t *testing.T) {
	tk := Task{Delivery: Delivery{OrganizationID: uuid.New(), WebhookID: uuid.New(), ID: uuid.New(), Lease: 7}}
	o := Outcome{Lease: tk.Delivery.Lease, Attempt: Attempt{OrganizationID: tk.Delivery.OrganizationID,
		WebhookID: tk.Delivery.WebhookID, DeliveryID: tk.Delivery.ID, ID: uuid.New()}}
	if o.Ref() != tk.Ref() {
		t.Fatalf("outcome ref %+v, task ref %+v", o.Ref(), tk.Ref())
	}
	if r := tk.Ref(); r.WebhookID != tk.Delivery.WebhookID || r.Lease != 7 {
		t.Fatalf("task ref %+v", r)
	}
}

func TestStaleRefs(t *testing.T) {
	outcome := func(lease int64) Outcome {
		return Outcome{Lease: lease, Attempt: Attempt{ID: uuid.New(), OrganizationID: uuid.New(), WebhookID: uuid.New(), DeliveryID: uuid.New()}}
	}
	stored, lost := outcome(1), outcome(2)
	tests := []struct {
		name   string
		stored map[uuid.UUID]bool
		want   []DeliveryRef
	}{
		{"an attempt stored by an earlier call is not stale", map[uuid.UUID]bool{stored.Attempt.ID: true}, []DeliveryRef{lost.Ref()}},
		{"the attempts could not be read: all stale", nil, []DeliveryRef{stored.Ref(), lost.Ref()}},
		{"none stored", map[uuid.UUID]bool{}, []DeliveryRef{stored.Ref(), lost.Ref()}},
	}
	for _, tt := range tests {
		if got := StaleRefs([]Outcome{stored, lost}, tt.stored); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: StaleRefs = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if got := StaleRefs(nil, nil); got != nil {
		t.Errorf("StaleRefs of no outcome = %+v, want nil", got)
	}
}

func TestDisablesRecorded(t *testing.T) {
	outcome := func(reason string) Outcome {
		return Outcome{DisableReason: reason, Attempt: Attempt{ID: uuid.New(), OrganizationID: uuid.New(), WebhookID: uuid.New(), DeliveryID: uuid.New()}}
	}
	gone, failed, goneLost := outcome("the receiver answered 410 Gone"), outcome(""), outcome("the receiver answered 410 Gone")
	stored := map[uuid.UUID]bool{gone.Attempt.ID: true, failed.Attempt.ID: true}
	tests := []struct {
		name   string
		stored map[uuid.UUID]bool
		want   []Outcome
	}{
		{"a disable stored by an earlier call, not the plain failure stored, nor the disable whose lease was lost", stored, []Outcome{gone}},
		{"the attempts could not be read: none", nil, nil},
	}
	for _, tt := range tests {
		if got := DisablesRecorded([]Outcome{gone, failed, goneLost}, tt.stored); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: DisablesRecorded = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
