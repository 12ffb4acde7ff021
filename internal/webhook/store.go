package webhook

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Store is hookd's persistence, implemented by internal/store/sqlite and
// internal/store/postgres and checked by one conformance suite
// (internal/store/storetest). Every organization-owned row is looked up by
// its organization id. Methods never return (nil, nil): a missing row is
// an *Error with code ENotFound. Times are stored with microsecond
// precision, in UTC.
//
// The methods that change a webhook, a token or a source take the
// *AuditEntry that records the change and write it in the same
// transaction: either both are stored or neither is. The store sets the entry's ID (when it is
// uuid.Nil), its OrganizationID and its ResourceID (from the row changed,
// so an entry is never filed under another organization). A nil entry
// records nothing: callers pass nil only when nothing changed (an edit
// that sets every field to what it was) or when no one is acting (tests,
// tools). Audit entries are small and kept for good: retention
// (DeleteBefore) never removes them.
type Store interface {
	// WebhookCreate stores w, whose ID and timestamps the caller has set,
	// and audit. When maxPerOrg > 0 and w's organization has that many
	// webhooks already, it stores nothing and returns TooManyWebhooks. The
	// count and the insert are serialized per organization, across
	// processes, so concurrent creates never go past the limit.
	WebhookCreate(ctx context.Context, w *Webhook, maxPerOrg int, audit *AuditEntry) error
	// WebhookGet returns one of the organization's webhooks. One whose
	// sealed fields cannot be decrypted is returned with them empty and
	// Unreadable set, so that its owner sees it and can delete it.
	WebhookGet(ctx context.Context, orgID, id uuid.UUID) (*Webhook, error)
	// WebhookList returns the organization's webhooks, oldest first, the
	// unreadable ones as WebhookGet does: one webhook whose key is gone
	// does not hide the others.
	WebhookList(ctx context.Context, orgID uuid.UUID) ([]*Webhook, error)
	// WebhookUpdate reads the webhook c names in a write transaction,
	// locking it, lets c.Apply change it, writes every field back (but
	// CreatedAt) with the audit entry Apply returned, and returns the
	// webhook as written. Another writer (an edit, hookd's disable) waits
	// for it or is waited for: none is undone.
	WebhookUpdate(ctx context.Context, c WebhookChange) (*Webhook, error)
	// WebhookDelete reads the webhook like WebhookUpdate, lets c.Apply
	// refuse (its error) or describe the delete (its audit entry), and
	// removes it with its deliveries and attempts: by the time it returns
	// the webhook is gone and none of its deliveries can be claimed, but
	// the deliveries and attempts may go after it, in the background
	// (both backends' purgers remove them).
	WebhookDelete(ctx context.Context, c WebhookChange) error

	// TokenCreate stores t (ID, hash and CreatedAt set by the caller) and audit.
	TokenCreate(ctx context.Context, t *Token, audit *AuditEntry) error
	// TokenGetByHash returns the unrevoked token with that hash.
	TokenGetByHash(ctx context.Context, hash []byte) (*Token, error)
	// TokenList returns the organization's tokens, revoked ones included, oldest first.
	TokenList(ctx context.Context, orgID uuid.UUID) ([]*Token, error)
	// TokenRevoke revokes a token; revoking twice is not an error. audit
	// is stored only when the token was revoked by this call, with the
	// token's organization and name filled in.
	TokenRevoke(ctx context.Context, id uuid.UUID, at time.Time, audit *AuditEntry) error
	// TokenTouch records that the token was used at the given time.
	TokenTouch(ctx context.Context, id uuid.UUID, at time.Time) error

	// EventsCreate commits each event with one pending delivery (due at the
	// event's CreatedAt) per webhook of its organization that Matches it,
	// or to OnlyWebhookID alone, all in one transaction: when it returns
	// nil, every receipt is durable. An event whose IdempotencyKey matches
	// one stored within KeyWindow(SourceKind) before its CreatedAt stores
	// nothing and gets the earlier event's receipt, with Replayed set.
	//
	// With lease.Limit > 0, up to that many of the new deliveries are
	// created running instead, leased to the caller until lease.Until (on
	// PostgreSQL, for lease.Length() after the database's now()), and
	// returned in their receipt's Tasks (as DeliveryClaim would return
	// them), so the caller can send them without claiming them: a process
	// that dies before sending them leaves leases that expire, like a claim.
	EventsCreate(ctx context.Context, events []*Event, lease Lease) ([]EventReceipt, error)

	// DeliveryClaim leases up to Limit due deliveries (pending with DueAt
	// <= Now, or running with an expired lease), oldest due first, skipping
	// ExcludeWebhooks, and returns them in that order; each becomes running
	// with DueAt = LeaseUntil. Rows claimed by one caller are never
	// returned to another before the lease ends, across processes.
	DeliveryClaim(ctx context.Context, p ClaimParams) ([]*Task, error)
	// DeliveryComplete records each attempt and applies its outcome to the
	// delivery (and to the webhook: FailingSince is set on a failure if
	// unset and cleared on a success; DisableReason disables it), in one
	// transaction. Disabling a webhook that is still enabled records a
	// DisabledByHookdAudit entry in that transaction; a webhook already
	// disabled keeps its reason and gets no entry. An outcome that would
	// disable its webhook is first put against the webhook as stored in
	// that transaction (Outcome.Against): one about a version edited since
	// is applied as Outdated, and reported in Outdated.
	//
	// An outcome is fenced by its lease: it is applied only to a delivery
	// still running with Lease equal to the outcome's, and named by its
	// attempt's organization, webhook and delivery id (see DeliveryRef).
	// Others (the lease expired and another worker claimed the delivery,
	// the delivery was deleted, or the attempt names another webhook)
	// store nothing, not even the attempt, and are returned as stale, so
	// a succeeded delivery is never reopened by a late writer.
	//
	// The result also names the webhooks this call disabled, each once:
	// only the store knows which disables it applied (another node may
	// have disabled the webhook first, or a person enabled it again since
	// the attempt was decided), and hookd_webhooks_disabled_total counts
	// those. A disable moves the webhook's UpdatedAt as an edit does (see
	// DisabledWebhook), and on PostgreSQL its transaction notifies the
	// other nodes of it as WebhookUpdate's does.
	DeliveryComplete(ctx context.Context, outcomes []Outcome) (CompleteResult, error)
	// DeliveryRenew extends the leases named by refs (each still running
	// under its ref's Lease) to end LeaseUntil - Now from now, and returns
	// those it could not renew: their lease is lost, and the caller must
	// not send them (or record them) any more.
	DeliveryRenew(ctx context.Context, p RenewParams) (lost []DeliveryRef, err error)
	// DeliveryRelease gives leased deliveries back, due p.After from now,
	// without counting an attempt (a graceful stop); like an outcome, only
	// those still running under the ref's Lease. A delay, not a time: on
	// PostgreSQL "now" is the database's now(), the clock every node's
	// claims compare with, so a node whose clock is off does not make the
	// others wait for what it gives back.
	DeliveryRelease(ctx context.Context, p ReleaseParams) error
	// DeliveryRetry makes a pending or finished delivery due now for one
	// more attempt. A running delivery is a Conflict.
	DeliveryRetry(ctx context.Context, orgID, webhookID, id uuid.UUID, now time.Time) (*Delivery, error)
	// DeliveryRecover makes every failed delivery p selects pending, due
	// at p.Now, for one more attempt each (as DeliveryRetry does), and
	// with p.Pending makes those it selects that wait for a retry due at
	// p.Now, attempts unchanged; it stores p.Audit with their counts
	// (RecoveredCount) and returns the counts. PostgreSQL does it all in
	// one transaction; SQLite, whose one writer intake waits for, in
	// batches, writing the entry with the first and setting its counts
	// again in each later one's transaction, so that the entry counts
	// exactly what was made due even if the recovery stops midway.
	// Deliveries running or succeeded are left alone, and so is a pending
	// one that another recovery made due, so two recoveries at once, on
	// any nodes, count each delivery once. A webhook that does not exist
	// is NotFound.
	DeliveryRecover(ctx context.Context, p DeliveryRecoverParams) (Recovered, error)
	DeliveryGet(ctx context.Context, orgID, webhookID, id uuid.UUID) (*Delivery, error)
	// DeliveryList returns a webhook's deliveries newest first.
	DeliveryList(ctx context.Context, p DeliveryListParams) ([]*Delivery, error)
	// DeliveryBacklog counts the deliveries due at now and says when the
	// oldest of them became due (zero when none).
	DeliveryBacklog(ctx context.Context, now time.Time) (due int, oldest time.Time, err error)

	// AttemptList returns a webhook's attempts newest first (by CreatedAt,
	// then ID), each with its Event.
	AttemptList(ctx context.Context, p AttemptListParams) ([]*Attempt, error)
	// AttemptStats summarizes a webhook's attempts over a window: how
	// many, how many failed, the p50 and p95 of their durations, and per
	// bucket when p.Bucket is set. A webhook without attempts (or that
	// does not exist) has zero stats.
	AttemptStats(ctx context.Context, p AttemptStatsParams) (*AttemptStats, error)

	// SourceCreate stores src, whose ID and timestamps the caller has
	// set, and audit. When maxPerOrg > 0 and src's organization has that
	// many sources already, it stores nothing and returns TooManySources,
	// even when creates race (on several nodes).
	SourceCreate(ctx context.Context, src *Source, maxPerOrg int, audit *AuditEntry) error
	// SourceGet returns one source; one whose secret cannot be decrypted
	// is returned with it empty and Unreadable set, as WebhookGet.
	SourceGet(ctx context.Context, ref SourceRef) (*Source, error)
	// SourceList returns the organization's sources, oldest first, the
	// unreadable ones as SourceGet does.
	SourceList(ctx context.Context, orgID uuid.UUID) ([]*Source, error)
	// SourceUpdate applies c to the source as stored inside the writing
	// transaction (see SourceChange), writes every field back but its
	// creation time, stores the audit entry c returns, and returns the
	// source as written.
	SourceUpdate(ctx context.Context, c SourceChange) (*Source, error)
	// SourceDelete decides (c.Apply, which changes nothing) on the source
	// as stored inside the writing transaction, removes it and stores the
	// audit entry c returns; the events it brought in stay.
	SourceDelete(ctx context.Context, c SourceChange) error

	// AuditList returns an organization's audit entries newest first.
	AuditList(ctx context.Context, p AuditListParams) ([]*AuditEntry, error)

	// DeleteBefore removes events created before t, with their deliveries
	// and attempts, unless a delivery of theirs is still pending or running.
	// It goes in batches and returns how many events it removed, also
	// when a batch fails: the batches before it stay done.
	DeleteBefore(ctx context.Context, t time.Time) (int, error)

	// Ping checks the database is reachable and accepts writes
	// (ErrUnwritable when it does not).
	Ping(ctx context.Context) error
	Close() error
}

// ClaimParams selects the deliveries DeliveryClaim leases. Now and
// LeaseUntil are the caller's clock; a backend shared by several nodes
// (PostgreSQL) compares due times with its own clock instead, and uses
// only the lease's length, LeaseUntil - Now, so that one node's skewed
// clock cannot take over another's lease early.
type ClaimParams struct {
	Now             time.Time
	LeaseUntil      time.Time
	Limit           int
	ExcludeWebhooks []uuid.UUID
}

// RenewParams names the leases DeliveryRenew extends, and by how much:
// like ClaimParams, the lease then ends LeaseUntil - Now from now.
type RenewParams struct {
	Refs       []DeliveryRef
	Now        time.Time
	LeaseUntil time.Time
}

// ReleaseParams names the leases DeliveryRelease gives back, and when
// their deliveries are due again: After from now (0: now). Now is the
// caller's clock, which only a backend whose queue runs on it (SQLite, or
// PostgreSQL under UseCallerClock) reads; like ClaimParams' times, it
// never moves a due time on a backend shared by several nodes.
type ReleaseParams struct {
	Refs  []DeliveryRef
	Now   time.Time
	After time.Duration
}

// Lease asks EventsCreate to lease new deliveries to the caller. Now and
// Until are one reading of the caller's clock and the lease's end on it,
// as in ClaimParams: a backend shared by several nodes (PostgreSQL) uses
// only the lease's length, Until - Now. Never the event's CreatedAt,
// read earlier: a wall clock stepped back between the two readings would
// store a lease shorter than the one the caller counts on.
type Lease struct {
	Now   time.Time
	Until time.Time
	Limit int // at most this many deliveries in all; 0: none
}

// Length is how long the lease lasts.
func (l Lease) Length() time.Duration { return l.Until.Sub(l.Now) }

// DeliveryRef names a delivery, and the lease its holder has on it. The
// webhook is part of the name: every backend finds a delivery by its
// organization, webhook and id, so a ref whose WebhookID is not the
// delivery's names nothing (and a ref without one is invalid). Task.Ref
// and an outcome's Attempt carry the right one.
type DeliveryRef struct {
	OrganizationID uuid.UUID
	WebhookID      uuid.UUID
	ID             uuid.UUID
	Lease          int64
}

// CompleteResult is what DeliveryComplete did besides recording the
// outcomes it stored.
type CompleteResult struct {
	// Stale are the outcomes it did not store, by their ref, and no
	// earlier call did (see StaleRefs).
	Stale []DeliveryRef
	// Disabled are the webhooks it disabled: enabled before its
	// transaction, disabled by it. An outcome asking to disable a webhook
	// disabled already (by a person, by another outcome, on another node)
	// adds none.
	Disabled []DisabledWebhook
	// Outdated are the outcomes it stored as a retry though they were
	// decided as failures (Outcome.Retried), by their ref: each asked to
	// disable a webhook edited since its attempt read it (Outcome.Against),
	// and was stored as pending, due again at once, instead; or disabled
	// it for a streak of failures a success has since ended
	// (AgainstStored), and was stored as the retry the schedule gives it.
	Outdated []DeliveryRef
}

// StaleRefs names the outcomes DeliveryComplete did not apply but for
// those whose attempt is stored already (stored holds their attempt ids;
// nil when it could not be read): a batch sent again after a failure that
// came after its commit (a connection reset with the COMMIT on its way)
// finds its outcomes applied by that commit. They are recorded, not
// stale: the caller counts them as the attempts they were, and warns of
// no lease lost.
func StaleRefs(notApplied []Outcome, stored map[uuid.UUID]bool) []DeliveryRef {
	var refs []DeliveryRef
	for i := range notApplied {
		if !stored[notApplied[i].Attempt.ID] {
			refs = append(refs, notApplied[i].Ref())
		}
	}
	return refs
}

// DisablesRecorded returns the outcomes, as given to DeliveryComplete,
// that asked to disable their webhook and whose attempt is stored (see
// StaleRefs; stored holds only those of outcomes not applied): the commit
// of an earlier call applied them, and may have disabled their webhook.
// As given: put against the webhook as it is now, such an outcome reads
// as Outdated, the disable having moved the webhook's UpdatedAt. The
// store reports each webhook it finds one of them did disable (by the
// audit entry dated at the attempt's end, see DisabledByHookdAudit) in
// Disabled, as the earlier call would have had its answer arrived:
// without it, a disable whose answer was lost is counted by no node.
func DisablesRecorded(outcomes []Outcome, stored map[uuid.UUID]bool) []Outcome {
	var out []Outcome
	for _, o := range outcomes {
		if o.DisableReason != "" && stored[o.Attempt.ID] {
			out = append(out, o)
		}
	}
	return out
}

// WebhookRef names a webhook.
type WebhookRef struct {
	OrganizationID uuid.UUID
	ID             uuid.UUID
}

// DisabledWebhook is a webhook DeliveryComplete disabled, with the
// UpdatedAt the disable gave it: EditedAt(its UpdatedAt before, the end
// of the attempt that disabled it). hookd's disable is an edit like a
// person's, so that the dispatcher can give back the tasks it holds that
// read the webhook enabled (delivery.Dispatcher.Edited): without a new
// version they could not be told from those read after the disable.
type DisabledWebhook struct {
	WebhookRef
	UpdatedAt time.Time
}

// DeliveryListParams selects deliveries. Before is a cursor: only
// deliveries with a smaller ID (older) are returned.
type DeliveryListParams struct {
	OrganizationID uuid.UUID
	WebhookID      uuid.UUID
	Status         DeliveryStatus // empty: any
	Before         uuid.UUID      // uuid.Nil: from the newest
	Limit          int
}

// AttemptListParams selects attempts: the newest Limit of a webhook's
// (by when they started), or of one of its deliveries.
type AttemptListParams struct {
	OrganizationID uuid.UUID
	WebhookID      uuid.UUID
	DeliveryID     uuid.UUID // uuid.Nil: any
	Limit          int
}
