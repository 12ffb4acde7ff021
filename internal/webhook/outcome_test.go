package webhook

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestDecide(t *testing.T) {
	const disableAfter = 120 * time.Hour
	rules := OutcomeRules{
		Schedule:     Schedule{0, 5 * time.Second, 5 * time.Minute, 2 * time.Hour},
		DisableAfter: disableAfter,
		Rand:         func() float64 { return 0.5 }, // no jitter: factor 1
	}
	start := t0
	tests := []struct {
		name       string
		disabled   bool
		failing    time.Duration // how long the webhook has been failing at start; 0: not failing
		number     int
		code       int
		err        string
		retryAfter time.Duration
		status     DeliveryStatus
		next       time.Duration // after start, when pending, and a disable's retry should its streak have ended
		reason     string        // a substring of DisableReason; "" wants none
	}{
		{name: "200", number: 1, code: 200, status: DeliverySucceeded},
		{name: "299", number: 1, code: 299, status: DeliverySucceeded},
		{name: "2xx after a failing run", number: 3, code: 204, failing: 200 * time.Hour, status: DeliverySucceeded},
		{name: "2xx whose body could not be read", number: 1, code: 200, err: "reading the response: reset", status: DeliveryPending, next: 5 * time.Second},
		{name: "199", number: 1, code: 199, status: DeliveryPending, next: 5 * time.Second},
		{name: "300", number: 1, code: 300, status: DeliveryPending, next: 5 * time.Second},
		{name: "500 on the second attempt", number: 2, code: 500, status: DeliveryPending, next: 5 * time.Minute},
		{name: "no answer", number: 1, err: "timed out waiting for the target", status: DeliveryPending, next: 5 * time.Second},
		{name: "the last attempt fails", number: 4, code: 500, status: DeliveryFailed},
		{name: "the one before the last is retried", number: 3, code: 500, status: DeliveryPending, next: 2 * time.Hour},
		{name: "410 disables", number: 1, code: 410, status: DeliveryFailed, reason: "410 Gone at 2026-03-01T12:00:00Z"},
		{name: "410 wins over the failing run", number: 1, code: 410, failing: 200 * time.Hour, status: DeliveryFailed, reason: "410 Gone"},
		{name: "disabled meanwhile: not sent, no reason", disabled: true, number: 1, err: "not sent", status: DeliveryFailed},
		{name: "disabled meanwhile, even with a 410", disabled: true, number: 1, code: 410, status: DeliveryFailed},
		{name: "failing exactly DisableAfter: disabled", number: 2, code: 500, failing: disableAfter, status: DeliveryFailed,
			reason: "every attempt failed since 2026-02-24T12:00:00Z (120h0m0s)", next: 5 * time.Minute},
		{name: "failing for DisableAfter, a 503 asking for longer: the retry it would get", number: 2, code: 503, retryAfter: 10 * time.Minute,
			failing: disableAfter, status: DeliveryFailed, reason: "every attempt failed since", next: 10 * time.Minute},
		{name: "failing for DisableAfter on the last attempt: no retry", number: 4, code: 500, failing: disableAfter, status: DeliveryFailed,
			reason: "every attempt failed since"},
		{name: "failing just under DisableAfter: retried", number: 2, code: 500, failing: disableAfter - time.Microsecond,
			status: DeliveryPending, next: 5 * time.Minute},
		{name: "429 with Retry-After", number: 1, code: 429, retryAfter: 10 * time.Minute, status: DeliveryPending, next: 10 * time.Minute},
		{name: "503 with Retry-After", number: 1, code: 503, retryAfter: 10 * time.Minute, status: DeliveryPending, next: 10 * time.Minute},
		{name: "Retry-After below the schedule's shortest delay", number: 1, code: 429, retryAfter: time.Second, status: DeliveryPending, next: 5 * time.Second},
		{name: "Retry-After below the schedule's next delay: the schedule's", number: 3, code: 503, retryAfter: time.Second, status: DeliveryPending, next: 2 * time.Hour},
		{name: "Retry-After just under the schedule's next delay: the schedule's", number: 2, code: 429, retryAfter: 5*time.Minute - time.Second, status: DeliveryPending, next: 5 * time.Minute},
		{name: "Retry-After just over the schedule's next delay: the target's", number: 2, code: 429, retryAfter: 5*time.Minute + time.Second, status: DeliveryPending, next: 5*time.Minute + time.Second},
		{name: "Retry-After above the schedule's longest delay", number: 1, code: 503, retryAfter: 48 * time.Hour, status: DeliveryPending, next: 2 * time.Hour},
		{name: "Retry-After on a 500 is ignored", number: 2, code: 500, retryAfter: 10 * time.Minute, status: DeliveryPending, next: 5 * time.Minute},
		{name: "429 without Retry-After follows the schedule", number: 2, code: 429, status: DeliveryPending, next: 5 * time.Minute},
		{name: "Retry-After does not extend the schedule", number: 4, code: 429, retryAfter: time.Minute, status: DeliveryFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Webhook{Enabled: !tt.disabled}
			if tt.failing > 0 {
				w.FailingSince = start.Add(-tt.failing)
			}
			a := Attempt{Number: tt.number, CreatedAt: start, StatusCode: tt.code, Error: tt.err}
			o := rules.Decide(w, a, tt.retryAfter)
			if o.Attempt != a {
				t.Fatalf("attempt changed: %+v", o.Attempt)
			}
			if o.Status != tt.status {
				t.Fatalf("status %s, want %s (%+v)", o.Status, tt.status, o)
			}
			var wantNext time.Time
			if tt.status == DeliveryPending || tt.next > 0 {
				wantNext = start.Add(tt.next)
			}
			if !o.NextAttemptAt.Equal(wantNext) {
				t.Fatalf("next attempt at %v, want %v", o.NextAttemptAt, wantNext)
			}
			if (o.DisableReason == "") != (tt.reason == "") || !strings.Contains(o.DisableReason, tt.reason) {
				t.Fatalf("DisableReason %q, want one with %q", o.DisableReason, tt.reason)
			}
		})
	}
}

// An outcome that disables its webhook, recorded against a version of it
// edited since the attempt read it, disables nothing: its delivery is
// due again at once, and it is Outdated. Against the version it read
// (to the microsecond, as the backends keep it), or disabling nothing,
// an outcome stands as it is.
func TestAgainst(t *testing.T) {
	rules := OutcomeRules{Schedule: Schedule{0, 5 * time.Second}, DisableAfter: time.Hour, Rand: func() float64 { return 0.5 }}
	read := t0.Add(-time.Minute).Add(123 * time.Nanosecond)
	for _, tt := range []struct {
		name    string
		failing time.Duration // how long the webhook has been failing; 0: not failing
		a       Attempt
		status  DeliveryStatus
		next    time.Time
	}{
		{"a 410", 0, Attempt{Number: 1, CreatedAt: t0, StatusCode: 410}, DeliveryPending, t0},
		{"failing past DisableAfter", 2 * time.Hour, Attempt{Number: 1, CreatedAt: t0, StatusCode: 500}, DeliveryPending, t0},
		{"a success", 0, Attempt{Number: 1, CreatedAt: t0, StatusCode: 200}, DeliverySucceeded, time.Time{}},
		{"a retry", 0, Attempt{Number: 1, CreatedAt: t0, StatusCode: 500}, DeliveryPending, t0.Add(5 * time.Second)},
		{"the last attempt", 0, Attempt{Number: 2, CreatedAt: t0, StatusCode: 500}, DeliveryFailed, time.Time{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := &Webhook{Enabled: true, UpdatedAt: read}
			if tt.failing > 0 {
				w.FailingSince = t0.Add(-tt.failing)
			}
			decided := rules.Decide(w, tt.a, 0)
			if !decided.WebhookUpdatedAt.Equal(read) {
				t.Fatalf("decided about version %v, want the webhook's, %v", decided.WebhookUpdatedAt, read)
			}
			// Stored at the microsecond: the same version.
			if got := decided.Against(read.Truncate(time.Microsecond)); got != decided {
				t.Errorf("against the version it read: %+v; want it as decided, %+v", got, decided)
			}
			o := decided.Against(read.Add(time.Microsecond))
			outdated := decided.DisableReason != ""
			if o.DisableReason != "" || o.Status != tt.status || !o.NextAttemptAt.Equal(tt.next) || o.Attempt != tt.a || o.Outdated != outdated || o.Retried != outdated {
				t.Errorf("against a later version: %+v; want status %s, next %v, no disable, outdated and retried %v, the attempt kept", o, tt.status, tt.next, outdated)
			}
		})
	}
}

// The jitter varies every delay after the first by ±20%.
func TestDecideJitter(t *testing.T) {
	for _, c := range []struct {
		rnd  float64
		want time.Duration
	}{{0, 4 * time.Second}, {0.5, 5 * time.Second}, {0.999999, 6 * time.Second}} {
		rules := OutcomeRules{Schedule: Schedule{0, 5 * time.Second}, DisableAfter: time.Hour, Rand: func() float64 { return c.rnd }}
		o := rules.Decide(&Webhook{Enabled: true}, Attempt{Number: 1, CreatedAt: t0, StatusCode: 500}, 0)
		if d := o.NextAttemptAt.Sub(t0); d < c.want-time.Millisecond || d > c.want+time.Millisecond {
			t.Fatalf("rand %v: delay %v, want %v", c.rnd, d, c.want)
		}
	}
}

// HealthChanges folds outcomes as if applied one by one: each webhook's
// failing_since and first disable follow its own outcomes, in order.
func TestHealthChanges(t *testing.T) {
	h1, h2 := uuid.UUID{0: 0xff, 15: 1}, uuid.UUID{0: 0xff, 15: 2}
	// Outcome i starts i seconds after t0, on webhook hook as stored.
	type o struct {
		hook     uuid.UUID // uuid.Nil: not recorded
		status   DeliveryStatus
		reason   string
		outdated bool // see Against
	}
	type change struct {
		hook    uuid.UUID
		reset   bool
		since   int // the outcome whose start it is; -1: none
		disable int // the outcome kept as the disable; -1: none
	}
	ok, retry, failed := DeliverySucceeded, DeliveryPending, DeliveryFailed
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	tests := []struct {
		name     string
		outcomes []o
		want     []change
	}{
		{name: "none recorded", outcomes: []o{{uuid.Nil, ok, "", false}, {uuid.Nil, retry, "gone", false}}},
		{name: "a failure starts the run", outcomes: []o{{h1, retry, "", false}},
			want: []change{{h1, false, 0, -1}}},
		{name: "a final failure counts too", outcomes: []o{{h1, failed, "", false}},
			want: []change{{h1, false, 0, -1}}},
		{name: "the first failure of a run is kept", outcomes: []o{{h1, retry, "", false}, {h1, failed, "", false}},
			want: []change{{h1, false, 0, -1}}},
		{name: "a success ends the run", outcomes: []o{{h1, retry, "", false}, {h1, ok, "", false}},
			want: []change{{h1, true, -1, -1}}},
		{name: "a failure after a success starts another", outcomes: []o{{h1, retry, "", false}, {h1, ok, "", false}, {h1, retry, "", false}, {h1, retry, "", false}},
			want: []change{{h1, true, 2, -1}}},
		{name: "an outcome not recorded changes nothing", outcomes: []o{{h1, retry, "", false}, {uuid.Nil, ok, "", false}},
			want: []change{{h1, false, 0, -1}}},
		{name: "each webhook its own, in order of first outcome",
			outcomes: []o{{h2, ok, "", false}, {h1, retry, "", false}, {h2, retry, "", false}, {h1, ok, "", false}},
			want:     []change{{h2, true, 2, -1}, {h1, true, -1, -1}}},
		{name: "the first disable is kept", outcomes: []o{{h1, failed, "", false}, {h1, failed, "410", false}, {h1, failed, "run", false}},
			want: []change{{h1, false, 0, 1}}},
		{name: "a disable on one webhook is not another's", outcomes: []o{{h1, failed, "410", false}, {h2, retry, "", false}},
			want: []change{{h1, false, 0, 0}, {h2, false, 1, -1}}},
		{name: "a disable not recorded is not kept", outcomes: []o{{uuid.Nil, failed, "410", false}, {h1, failed, "run", false}},
			want: []change{{h1, false, 1, 1}}},
		{name: "an outdated failure changes nothing", outcomes: []o{{h1, retry, "", true}}},
		{name: "an outdated failure starts no run", outcomes: []o{{h1, retry, "", true}, {h1, retry, "", false}, {h1, retry, "", true}},
			want: []change{{h1, false, 1, -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outcomes, stored := make([]Outcome, len(tt.outcomes)), make([]uuid.UUID, len(tt.outcomes))
			for i, x := range tt.outcomes {
				// The attempt names another webhook than the stored one:
				// the stored one is the one changed.
				outcomes[i] = Outcome{Attempt: Attempt{OrganizationID: orgA, WebhookID: uuid.UUID{0: 0xee}, CreatedAt: at(i)},
					Status: x.status, DisableReason: x.reason, Outdated: x.outdated}
				stored[i] = x.hook
			}
			got := HealthChanges(outcomes, stored)
			if len(got) != len(tt.want) {
				t.Fatalf("%d changes, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, c := range got {
				w := tt.want[i]
				var since time.Time
				if w.since >= 0 {
					since = at(w.since)
				}
				if c.OrganizationID != orgA || c.WebhookID != w.hook || c.Reset != w.reset || !c.Since.Equal(since) {
					t.Errorf("change %d: %+v, want %+v", i, c, w)
				}
				switch {
				case w.disable < 0 && c.Disable != nil:
					t.Errorf("change %d disables (%q), want no disable", i, c.Disable.DisableReason)
				case w.disable >= 0 && c.Disable != &outcomes[w.disable]:
					t.Errorf("change %d disables with %+v, want outcome %d", i, c.Disable, w.disable)
				}
			}
		})
	}
}

// A disable for failing too long stands only while the streak it judged
// does: not once a success has been recorded since (stored, or earlier in
// the batch), nor against a later streak; a 410 is not about a streak.
// Only the outcomes the store records (running: not stale) move the
// streak, as in HealthChanges.
func TestAgainstStored(t *testing.T) {
	rules := OutcomeRules{Schedule: Schedule{0, 5 * time.Second}, DisableAfter: time.Hour, Rand: func() float64 { return 0.5 }}
	org, hook := uuid.New(), uuid.New()
	ref := WebhookRef{OrganizationID: org, ID: hook}
	streak := t0.Add(-2 * time.Hour)
	w := &Webhook{Enabled: true, UpdatedAt: t0.Add(-3 * time.Hour), FailingSince: streak}
	decide := func(code int, at time.Time) Outcome {
		return rules.Decide(w, Attempt{OrganizationID: org, WebhookID: hook, DeliveryID: uuid.New(), Number: 1, CreatedAt: at, StatusCode: code}, 0)
	}
	long, gone, ok, early := decide(500, t0), decide(410, t0), decide(200, t0.Add(-time.Minute)), decide(500, streak.Add(-time.Hour))
	// A delivery's failure, then a success under the same lease: the
	// first finishes the delivery, and the second is not recorded.
	failed, again := decide(500, t0.Add(-2*time.Minute)), ok
	again.Attempt.DeliveryID = failed.Attempt.DeliveryID
	if long.DisableReason == "" || !long.FailingSince.Equal(streak) || !gone.FailingSince.IsZero() {
		t.Fatalf("decided %+v and %+v; want the first to disable for the streak it read, the 410 for no streak", long, gone)
	}
	for _, tt := range []struct {
		name    string
		failing time.Time // stored
		batch   []Outcome
		retried []bool
		stale   []bool // its lease taken over: not recorded
	}{
		{"the streak it read", streak, []Outcome{long}, []bool{false}, nil},
		{"an older one", streak.Add(-time.Hour), []Outcome{long}, []bool{false}, nil},
		{"a success since", time.Time{}, []Outcome{long}, []bool{true}, nil},
		{"a later streak", t0.Add(-time.Minute), []Outcome{long}, []bool{true}, nil},
		{"a success before it in the batch", streak, []Outcome{ok, long}, []bool{false, true}, nil},
		{"a success after it in the batch", streak, []Outcome{long, ok}, []bool{false, false}, nil},
		{"a 410 after a success", time.Time{}, []Outcome{gone}, []bool{false}, nil},
		{"a stale success before it in the batch", streak, []Outcome{ok, long}, []bool{false, false}, []bool{true, false}},
		{"a stale failure from before the streak, after a success", time.Time{}, []Outcome{early, long}, []bool{false, true}, []bool{true, false}},
		{"a success of a delivery already finished in the batch", streak, []Outcome{failed, again, long}, []bool{false, false, false}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			batch := slices.Clone(tt.batch)
			running := map[DeliveryRef]bool{}
			for i, o := range batch {
				running[o.Ref()] = i >= len(tt.stale) || !tt.stale[i]
			}
			got := AgainstStored(batch, map[WebhookRef]StoredWebhook{ref: {UpdatedAt: w.UpdatedAt, FailingSince: tt.failing}}, running)
			for i, o := range got {
				// A streak ended: the failure it is, counted in the
				// webhook's health (not Outdated), retried when the
				// schedule says (5 s after it), not at once.
				if o.Retried != tt.retried[i] || o.Outdated || (o.Retried && (o.DisableReason != "" || o.Status != DeliveryPending)) {
					t.Errorf("outcome %d: %+v; want retried %v, not outdated", i, o, tt.retried[i])
				}
				if o.Retried && !o.NextAttemptAt.Equal(o.Attempt.CreatedAt.Add(5*time.Second)) {
					t.Errorf("outcome %d retried at %v; want the schedule's 5 s after %v", i, o.NextAttemptAt, o.Attempt.CreatedAt)
				}
			}
			if !slices.EqualFunc(batch, tt.batch, func(a, b Outcome) bool { return a == b }) {
				t.Error("changed the outcomes it was given")
			}
		})
	}
}

// A 429 or 503 without a Retry-After keeps the schedule's delay as jitter
// made it, even below the schedule's shortest: only a Retry-After moves
// it, and only later.
func TestDecideRetryAfterAbsentKeepsJitter(t *testing.T) {
	rules := OutcomeRules{Schedule: Schedule{0, 5 * time.Second, time.Hour}, Rand: func() float64 { return 0 }} // factor 0.8
	for _, code := range []int{429, 503} {
		o := rules.Decide(&Webhook{Enabled: true}, Attempt{Number: 1, CreatedAt: t0, StatusCode: code}, 0)
		if o.Status != DeliveryPending || !o.NextAttemptAt.Equal(t0.Add(4*time.Second)) {
			t.Errorf("%d without Retry-After: %s at %v; want pending at +4s", code, o.Status, o.NextAttemptAt.Sub(t0))
		}
	}
}

// A disable for failing too long on the schedule's last attempt, once the
// streak it judged has ended, is the last failure it is: failed for good,
// without a disable, and counted in the webhook's health (not Outdated).
func TestAgainstStoredLastAttempt(t *testing.T) {
	rules := OutcomeRules{Schedule: Schedule{0, 5 * time.Second}, DisableAfter: time.Hour, Rand: func() float64 { return 0.5 }}
	w := &Webhook{Enabled: true, UpdatedAt: t0.Add(-3 * time.Hour), FailingSince: t0.Add(-2 * time.Hour)}
	a := Attempt{OrganizationID: uuid.New(), WebhookID: uuid.New(), DeliveryID: uuid.New(), Number: 2, CreatedAt: t0, StatusCode: 500}
	o := rules.Decide(w, a, 0)
	if o.DisableReason == "" || !o.NextAttemptAt.IsZero() {
		t.Fatalf("decided %+v; want a disable with no retry left", o)
	}
	got := AgainstStored([]Outcome{o}, map[WebhookRef]StoredWebhook{{OrganizationID: a.OrganizationID, ID: a.WebhookID}: {UpdatedAt: w.UpdatedAt}},
		map[DeliveryRef]bool{o.Ref(): true})[0]
	if got.DisableReason != "" || got.Status != DeliveryFailed || got.Outdated || got.Retried {
		t.Fatalf("after a success: %+v; want failed for good, no disable, not outdated nor retried", got)
	}
}
