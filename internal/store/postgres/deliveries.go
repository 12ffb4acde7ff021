package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

const deliveryCols = `organization_id, id, webhook_id, event_id, created_at, updated_at, status, due_at,
	attempts, last_status_code, last_error, event_type, lease`

func scanDelivery(row rowScanner, extra ...any) (*webhook.Delivery, error) {
	var d webhook.Delivery
	dest := append([]any{&d.OrganizationID, &d.ID, &d.WebhookID, &d.EventID, &d.CreatedAt, &d.UpdatedAt, &d.Status, &d.DueAt,
		&d.Attempts, &d.LastStatusCode, &d.LastError, &d.EventType, &d.Lease}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	d.CreatedAt, d.UpdatedAt, d.DueAt = d.CreatedAt.UTC(), d.UpdatedAt.UTC(), d.DueAt.UTC()
	return &d, nil
}

func scanDeliveryRow(row rowScanner) (*webhook.Delivery, error) { return scanDelivery(row) }

// claimed is a delivery DeliveryClaim leased, with its due time before
// the claim: the order to hand them out in.
type claimed struct {
	d   *webhook.Delivery
	due time.Time
}

// DeliveryClaim claims with one UPDATE over a FOR UPDATE SKIP LOCKED
// subquery, so concurrent claimers on any node pass over each other's
// rows instead of waiting for them, then reads the claimed rows' events
// and webhooks in one more round trip. Due times and leases are compared
// with the database's clock, now(), the one clock all nodes share: a node
// whose clock runs ahead cannot take over a lease another still holds.
func (db *DB) DeliveryClaim(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Task, error) {
	if p.Limit <= 0 {
		return []*webhook.Task{}, nil
	}
	// A nil slice would be sent as NULL, and NOT (x = ANY(NULL)) is never true.
	exclude := p.ExcludeWebhooks
	if exclude == nil {
		exclude = []uuid.UUID{}
	}
	rows, err := db.pool.Query(ctx, `UPDATE deliveries d SET status = 'running',
			due_at = coalesce($5::timestamptz, now()) + $2::bigint * interval '1 microsecond',
			updated_at = $1, lease = d.lease + 1
		FROM (
			SELECT organization_id, id, due_at FROM deliveries
			WHERE status IN ('pending', 'running') AND due_at <= coalesce($5::timestamptz, now()) AND NOT (webhook_id = ANY($3))
			ORDER BY due_at
			LIMIT $4
			FOR UPDATE SKIP LOCKED
		) c
		WHERE d.organization_id = c.organization_id AND d.id = c.id
		RETURNING `+prefixed("d", deliveryCols)+`, c.due_at`,
		ts(p.Now), p.LeaseUntil.Sub(p.Now).Microseconds(), exclude, p.Limit, db.clock(p.Now))
	if err != nil {
		return nil, translate(err)
	}
	cs, err := scanClaimed(rows)
	if err != nil {
		// The UPDATE's answer was cut short, so whether it committed is
		// unknown: the server rolls back a session that loses its client
		// before the Sync that commits it. Its leases, if any, cannot be
		// told from those another claim took since under the same tokens
		// (each claim's is the row's lease + 1), so none is given back:
		// they end by themselves.
		return nil, translate(err)
	}
	if len(cs) == 0 {
		return []*webhook.Task{}, nil
	}
	tasks, unreadable, cannotBeOpened, err := db.tasks(ctx, cs)
	if err != nil {
		// The UPDATE was answered in full, to the ReadyForQuery that
		// follows its commit: its leases are this claim's, given back now
		// rather than left for nobody to send until they end.
		refs := make([]webhook.DeliveryRef, len(cs))
		for i, c := range cs {
			refs[i] = c.d.Ref()
		}
		return nil, errors.Join(translate(err), db.giveBack(ctx, p, refs))
	}
	return secrets.Claimed(ctx, db, p, tasks, unreadable, cannotBeOpened)
}

func scanClaimed(rows pgx.Rows) ([]claimed, error) {
	defer rows.Close()
	var cs []claimed
	for rows.Next() {
		var due time.Time
		d, err := scanDelivery(rows, &due)
		if err != nil {
			return cs, err
		}
		cs = append(cs, claimed{d, due})
	}
	return cs, rows.Err()
}

// GiveBackTimeout bounds DeliveryClaim's give-back of the leases it took
// and could not hand out. The claim has failed, most likely on a
// connection reset or its deadline, so the give-back has a deadline of
// its own, on another connection of the pool. A stop waits for it after
// a claim under way: exported for the bound of a whole stop, which
// deployments' grace periods cover.
const GiveBackTimeout = 5 * time.Second

func (db *DB) giveBack(ctx context.Context, p webhook.ClaimParams, refs []webhook.DeliveryRef) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), GiveBackTimeout)
	defer cancel()
	if err := db.DeliveryRelease(ctx, webhook.ReleaseParams{Refs: refs, Now: p.Now}); err != nil {
		return fmt.Errorf("giving back %d claimed deliveries (their leases end by themselves): %w", len(refs), err)
	}
	return nil
}

// tasks reads the events and webhooks of the deliveries DeliveryClaim
// leased, in one round trip, and makes their tasks, oldest due first.
// It deletes the deliveries whose event or webhook is gone, and returns
// apart those whose webhook's secrets cannot be opened (unreadable; the
// first such error is cannotBeOpened).
func (db *DB) tasks(ctx context.Context, cs []claimed) (tasks []*webhook.Task, unreadable []webhook.DeliveryRef, cannotBeOpened, err error) {
	slices.SortFunc(cs, func(a, b claimed) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return bytes.Compare(a.d.ID[:], b.d.ID[:])
	})

	type key struct{ org, id uuid.UUID }
	var evOrgs, evIDs, whOrgs, whIDs []uuid.UUID
	seenEv, seenWh := map[key]bool{}, map[key]bool{}
	for _, c := range cs {
		if k := (key{c.d.OrganizationID, c.d.EventID}); !seenEv[k] {
			seenEv[k] = true
			evOrgs, evIDs = append(evOrgs, k.org), append(evIDs, k.id)
		}
		if k := (key{c.d.OrganizationID, c.d.WebhookID}); !seenWh[k] {
			seenWh[k] = true
			whOrgs, whIDs = append(whOrgs, k.org), append(whIDs, k.id)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+eventCols+` FROM events
		WHERE (organization_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))`, evOrgs, evIDs)
	b.Queue(`SELECT `+webhookCols+` FROM webhooks
		WHERE (organization_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))`, whOrgs, whIDs)
	br := db.pool.SendBatch(ctx, b)
	defer br.Close()
	evRows, err := br.Query()
	if err != nil {
		return nil, nil, nil, err
	}
	evs, err := collect(evRows, scanEvent)
	if err != nil {
		return nil, nil, nil, err
	}
	whRows, err := br.Query()
	if err != nil {
		return nil, nil, nil, err
	}
	whs, err := collect(whRows, webhookScan(db.keys, true))
	if err != nil {
		return nil, nil, nil, err
	}
	if err := br.Close(); err != nil {
		return nil, nil, nil, err
	}

	events := map[key]*webhook.Event{}
	for _, ev := range evs {
		events[key{ev.OrganizationID, ev.ID}] = ev
	}
	hooks := map[key]*webhook.Webhook{}
	for _, w := range whs {
		hooks[key{w.OrganizationID, w.ID}] = w
	}
	tasks = make([]*webhook.Task, 0, len(cs))
	var orphans []webhook.DeliveryRef
	for _, c := range cs {
		ev, w := events[key{c.d.OrganizationID, c.d.EventID}], hooks[key{c.d.OrganizationID, c.d.WebhookID}]
		if ev == nil || w == nil {
			// Its webhook was deleted and the purger has not reached it
			// yet (see purge.go); or, during a rolling upgrade from a
			// version before migration 0040, an intake of that version
			// stored it after its webhook was deleted. Nothing to send,
			// nor to claim again.
			orphans = append(orphans, webhook.DeliveryRef{OrganizationID: c.d.OrganizationID, WebhookID: c.d.WebhookID, ID: c.d.ID})
			continue
		}
		t := &webhook.Task{Delivery: *c.d, Event: *ev, Webhook: *w}
		if w.Unreadable != nil {
			unreadable = append(unreadable, t.Ref())
			if cannotBeOpened == nil {
				cannotBeOpened = w.Unreadable
			}
			continue
		}
		tasks = append(tasks, t)
	}
	if len(orphans) > 0 {
		// SKIP LOCKED: a purger deleting the same rows (in its own order)
		// takes those; waiting for it, this statement could deadlock with
		// it, and fail the claim after its leases were committed.
		orgIDs, hookIDs, ids := refKeys(orphans)
		if _, err := db.pool.Exec(ctx, `DELETE FROM deliveries d USING (
				SELECT organization_id, id FROM deliveries
				WHERE (organization_id, webhook_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]))
				FOR UPDATE SKIP LOCKED) l
			WHERE d.organization_id = l.organization_id AND d.id = l.id`,
			orgIDs, hookIDs, ids); err != nil {
			return nil, nil, nil, err
		}
	}
	return tasks, unreadable, cannotBeOpened, nil
}

// completeSQL applies a batch of outcomes, at most one per delivery, in
// one statement: one row of the unnest per outcome. A delivery is updated
// only while it is running under the lease ($14) the attempt was made
// under, and only as a delivery of the attempt's webhook ($17; see
// webhook.DeliveryRef): if the webhook was deleted meanwhile, the lease
// expired and another worker claimed the delivery, or the attempt names
// another webhook, the UPDATE finds nothing and the attempt, which hangs
// off its RETURNING, is not written. It returns the
// ordinals (from 1) of the outcomes applied. The next attempt is due
// after the delay the caller chose (next_at - created_at), counted on the
// database's clock, or on the caller's (clock) in tests. attempts counts
// the attempts recorded, one more per outcome, rather than taking the
// attempt's Number: the two agree while Number is Attempts+1 at claim
// time under a fenced lease, and if they ever do not (say, a delivery
// retried or recovered after it finished), the count still matches the
// delivery's attempt log and never goes back, so the next claim's Number
// stays new. updated_at is when the attempt finished (CreatedAt plus
// Duration), the time the delivery log shows. The SQLite backend follows
// the same two rules. One statement for the batch, not one per outcome:
// the database's work per outcome was most of its CPU in a burst.
//
// Each delivery is found by its key alone, checked running under the
// lease after (see lockedDeliveries), and updated by the row address
// (ctid) that lookup returned. That address is the row's newest version
// because an earlier statement of the transaction locked the row
// (DeliveryComplete runs lockedDeliveries first) and this statement's
// snapshot is newer than the lock. The UPDATE names nothing else of the
// row: given a condition on d.lease, the planner joined every outcome to
// every delivery of the same lease.
const completeSQL = `WITH o AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::int[], $6::text[],
		$7::timestamptz[], $8::uuid[], $9::int[], $10::text[], $11::text[], $12::text[], $13::bigint[],
		$14::bigint[], $15::timestamptz[], $16::timestamptz[], $17::uuid[])
		WITH ORDINALITY AS o(organization_id, delivery_id, status, next_at, status_code, error,
			created_at, attempt_id, number, kind, target_url, response_body, duration_us,
			lease, clock, finished_at, webhook_id, ord)
), l AS (
	SELECT o.*, k.tid FROM o, LATERAL (SELECT ctid AS tid, webhook_id, status, lease FROM deliveries
		WHERE organization_id = o.organization_id AND id = o.delivery_id OFFSET 0) k
	WHERE k.status = 'running' AND k.lease = o.lease AND k.webhook_id = o.webhook_id
), d AS (
	UPDATE deliveries d SET
		status = l.status,
		due_at = CASE WHEN l.status = 'pending' THEN coalesce(l.clock, now()) + (l.next_at - l.created_at) ELSE d.due_at END,
		attempts = d.attempts + 1,
		last_status_code = l.status_code,
		last_error = l.error,
		updated_at = l.finished_at
	FROM l
	WHERE d.ctid = l.tid
	RETURNING l.ord, d.webhook_id
), a AS (
	INSERT INTO attempts (organization_id, id, delivery_id, webhook_id, created_at,
		number, kind, target_url, status_code, response_body, duration_us, error)
	SELECT o.organization_id, o.attempt_id, o.delivery_id, d.webhook_id, o.created_at,
		o.number, o.kind, o.target_url, o.status_code, o.response_body, o.duration_us, o.error
	FROM d JOIN o ON o.ord = d.ord
)
SELECT ord, webhook_id FROM d`

// failingSQL sets the failing_since of the webhooks whose outcomes were
// applied, one row per webhook.HealthChange (reset, since), by its rule.
// The rows to change, and those an outcome disables (disable), are locked
// first, in key order, so that completions on other nodes, taking the same
// locks in the same order, cannot deadlock with this one, and the
// disables that follow find their rows locked already. Most outcomes
// change nothing here; not writing the row spares the lock every worker
// of a busy webhook would queue on.
const failingSQL = `UPDATE webhooks w SET
	failing_since = CASE WHEN l.reset THEN l.since ELSE coalesce(w.failing_since, l.since) END
FROM (SELECT w.organization_id, w.id, c.reset, c.since
	FROM webhooks w
	JOIN unnest($1::uuid[], $2::uuid[], $3::bool[], $4::timestamptz[], $5::bool[]) AS c(organization_id, id, reset, since, disable)
		ON w.organization_id = c.organization_id AND w.id = c.id
	WHERE c.disable OR CASE WHEN c.reset THEN w.failing_since IS DISTINCT FROM c.since ELSE w.failing_since IS NULL END
	ORDER BY w.organization_id, w.id
	FOR NO KEY UPDATE OF w) l
WHERE w.organization_id = l.organization_id AND w.id = l.id`

// DeliveryComplete records all outcomes inside one transaction, taking
// its locks in the order every other writer takes them, so none can
// deadlock with it:
//   - first the webhooks, FOR KEY SHARE in key order. WebhookDelete locks
//     the webhook FOR UPDATE; this lock makes it wait for completions in
//     flight (or them for it), so a completion never disables or marks
//     failing a webhook as it goes. KEY SHARE does not conflict with
//     itself nor with the failing_since UPDATE, so completions of one busy
//     webhook still do not queue on each other;
//   - then the deliveries, in key order (lockedDeliveries), which
//     completeSQL then updates;
//   - then the webhooks to change, in key order (failingSQL); in a batch
//     that disables one, all of the batch's webhooks, before completeSQL
//     (against).
//
// The effect is that of applying the outcomes one by one, in order.
// Outcomes are sorted by webhook, keeping their order within one, which
// decides failing_since and which disable reason is kept. A batch naming
// one delivery twice (a node that claimed a delivery again, its lease
// lost, may record the old outcome beside the new) goes in rounds,
// the second outcome of a delivery in the round after its first, as
// completeSQL applies one outcome per delivery.
func (db *DB) DeliveryComplete(ctx context.Context, outcomes []webhook.Outcome) (webhook.CompleteResult, error) {
	var res webhook.CompleteResult
	if err := webhook.ValidateOutcomes(outcomes); err != nil {
		return res, err
	}
	if len(outcomes) == 0 {
		return res, nil
	}
	sorted := slices.Clone(outcomes)
	slices.SortStableFunc(sorted, func(a, b webhook.Outcome) int {
		if c := bytes.Compare(a.Attempt.OrganizationID[:], b.Attempt.OrganizationID[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.Attempt.WebhookID[:], b.Attempt.WebhookID[:])
	})
	var whOrgs, whIDs, dOrgs, dIDs []uuid.UUID
	for i, o := range sorted {
		a := o.Attempt
		if i == 0 || a.OrganizationID != sorted[i-1].Attempt.OrganizationID || a.WebhookID != sorted[i-1].Attempt.WebhookID {
			whOrgs, whIDs = append(whOrgs, a.OrganizationID), append(whIDs, a.WebhookID)
		}
		dOrgs, dIDs = append(dOrgs, a.OrganizationID), append(dIDs, a.DeliveryID)
	}
	rounds := completeRounds(sorted)
	var notApplied []webhook.Outcome
	err := db.pipelined(ctx, func(tx *pipe) error {
		// The webhook of each outcome applied, as its delivery row says:
		// never the caller's, so an outcome only touches its own
		// delivery's webhook. uuid.Nil: not applied.
		applied := make([]uuid.UUID, len(sorted))
		b := &pgx.Batch{}
		// Outcomes need not wait for the WAL flush: one lost to a crash of
		// the database server only means that delivery is sent again,
		// which at-least-once allows. Accepted events are never written so.
		b.Queue("SET LOCAL synchronous_commit = off")
		b.Queue(`SELECT count(*) FROM (SELECT FROM webhooks
			WHERE (organization_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))
			ORDER BY organization_id, id
			FOR KEY SHARE) w`, whOrgs, whIDs)
		b.Queue(`SELECT count(*) FROM `+lockedDeliveries+` l`, dOrgs, dIDs)
		if slices.ContainsFunc(sorted, func(o webhook.Outcome) bool { return o.DisableReason != "" }) {
			// Each disable is put against its webhook as stored (see
			// webhook.Outcome.Against), before its outcome is written.
			// The webhooks are locked first, so no edit comes between
			// the version read and the disable: all of the batch's, in key
			// order, as failingSQL would lock them, which then finds them
			// locked already. Disables are rare; the round trip this
			// costs them is not.
			if err := against(ctx, tx, b, sorted, whOrgs, whIDs, dOrgs, dIDs); err != nil {
				return err
			}
			b = &pgx.Batch{}
		}
		for _, round := range rounds {
			b.Queue(completeSQL, db.completeArgs(sorted, round)...).Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var ord int
					var hook uuid.UUID
					if err := rows.Scan(&ord, &hook); err != nil {
						return err
					}
					applied[round[ord-1]] = hook
				}
				return rows.Err()
			})
		}
		if err := tx.send(ctx, b).Close(); err != nil {
			return err
		}
		res = webhook.CompleteResult{}
		for i, o := range sorted {
			switch {
			case applied[i] == uuid.Nil:
				notApplied = append(notApplied, o)
			case o.Retried:
				res.Outdated = append(res.Outdated, o.Ref())
			}
		}
		b, disables, err := healthChanges(sorted, applied, &res.Disabled)
		if err != nil {
			return err
		}
		if disables == 0 {
			return tx.sendLast(ctx, b).Close()
		}
		// A disable's answer (was the webhook still enabled?) is read
		// before the commit: read with the COMMIT already on its way, a
		// failure to read it could no longer stop the commit (see
		// sendLast). Disables are rare; the round trip this costs them is
		// not.
		if err := tx.send(ctx, b).Close(); err != nil {
			return err
		}
		// The other nodes give back the deliveries of the webhooks
		// disabled they hold, read enabled, as after a person's edit (see
		// Listen): with the COMMIT, so only if it commits, and at no
		// round trip more.
		b = &pgx.Batch{}
		for _, d := range res.Disabled {
			b.Queue(`SELECT pg_notify($1, $2)`, editChannel, editPayload(d.ID, d.UpdatedAt))
		}
		return tx.sendLast(ctx, b).Close()
	})
	if err != nil {
		return webhook.CompleteResult{}, err
	}
	if len(notApplied) > 0 {
		stored := db.attemptsStored(ctx, notApplied)
		res.Stale = webhook.StaleRefs(notApplied, stored)
		res.Disabled = append(res.Disabled, db.disablesRecorded(ctx, webhook.DisablesRecorded(outcomes, stored))...)
	}
	return res, nil
}

// attemptsStoredSQL finds attempts by their key, attempts_pkey
// (organization_id, webhook_id, id), one lookup each (the LATERAL): by
// organization and id alone, which no index of attempts begins with, the
// planner read the whole table for them (TestAttemptsStoredUseTheKey).
// An attempt stored is its delivery's row's webhook's, which is the
// outcome's: one naming another webhook was never applied.
const attemptsStoredSQL = `SELECT a.id
	FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS k(org, hook, id),
		LATERAL (SELECT id FROM attempts WHERE organization_id = k.org AND webhook_id = k.hook AND id = k.id) a`

// attemptsStored returns the ids of the outcomes' attempts that are
// stored, or nil if they cannot be read: the outcomes are then all
// stale, as they were before an earlier call's commit could be told from
// a lease lost.
func (db *DB) attemptsStored(ctx context.Context, outcomes []webhook.Outcome) map[uuid.UUID]bool {
	orgs, hooks, ids := make([]uuid.UUID, len(outcomes)), make([]uuid.UUID, len(outcomes)), make([]uuid.UUID, len(outcomes))
	for i, o := range outcomes {
		orgs[i], hooks[i], ids[i] = o.Attempt.OrganizationID, o.Attempt.WebhookID, o.Attempt.ID
	}
	rows, err := db.pool.Query(ctx, attemptsStoredSQL, orgs, hooks, ids)
	if err != nil {
		return nil
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil
	}
	stored := make(map[uuid.UUID]bool, len(found))
	for _, id := range found {
		stored[id] = true
	}
	return stored
}

// disablesRecordedSQL finds the webhooks that hookd's disables, by the
// attempts that ended at $3, disabled: their audit entries, dated at the
// attempt's end (see disableSQL), by the organization's key. With the
// webhook's UpdatedAt now, which the dispatcher's give-back compares
// with (a later edit's, if a person edited it since, only gives back
// more).
const disablesRecordedSQL = `SELECT DISTINCT w.organization_id, w.id, w.updated_at
	FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS k(org, hook, ended)
	JOIN webhooks w ON w.organization_id = k.org AND w.id = k.hook
	WHERE EXISTS (SELECT FROM audit_entries a WHERE a.organization_id = k.org AND a.resource_id = k.hook
		AND a.created_at = k.ended AND a.actor_kind = 'hookd' AND a.action = 'webhook.disabled')`

// disablesRecorded returns the webhooks the outcomes' disables, applied
// by an earlier call, disabled (see webhook.DisablesRecorded); none if
// they cannot be read, as before such a disable could be told.
func (db *DB) disablesRecorded(ctx context.Context, outcomes []webhook.Outcome) []webhook.DisabledWebhook {
	if len(outcomes) == 0 {
		return nil
	}
	orgs, hooks, ended := make([]uuid.UUID, len(outcomes)), make([]uuid.UUID, len(outcomes)), make([]time.Time, len(outcomes))
	for i, o := range outcomes {
		a := o.Attempt
		orgs[i], hooks[i], ended[i] = a.OrganizationID, a.WebhookID, ts(a.CreatedAt.Add(a.Duration))
	}
	rows, err := db.pool.Query(ctx, disablesRecordedSQL, orgs, hooks, ended)
	if err != nil {
		return nil
	}
	disabled, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (webhook.DisabledWebhook, error) {
		var d webhook.DisabledWebhook
		err := row.Scan(&d.OrganizationID, &d.ID, &d.UpdatedAt)
		d.UpdatedAt = d.UpdatedAt.UTC()
		return d, err
	})
	if err != nil {
		return nil
	}
	return disabled
}

// runningSQL reads the running deliveries among those whose keys are in
// $1 and $2, by their key as lockedDeliveries does, without locking
// again the ones it locked.
const runningSQL = `SELECT d.organization_id, d.webhook_id, d.id, d.lease
	FROM (SELECT DISTINCT org, id FROM unnest($1::uuid[], $2::uuid[]) AS k(org, id)) k,
		LATERAL (SELECT organization_id, webhook_id, id, status, lease FROM deliveries
			WHERE organization_id = k.org AND id = k.id AND status NOT IN ('succeeded', 'failed') OFFSET 0) d
	WHERE d.status = 'running'`

// against sends b, which takes the batch's first locks, with the lock of
// the outcomes' webhooks (orgs, ids, in key order), and puts each
// outcome that disables its webhook against the webhook as read (see
// webhook.AgainstStored), with the outcomes' deliveries (dOrgs, dIDs,
// locked by b) that are running, whose outcomes completeSQL records. It
// changes outcomes in place.
func against(ctx context.Context, tx *pipe, b *pgx.Batch, outcomes []webhook.Outcome, orgs, ids, dOrgs, dIDs []uuid.UUID) error {
	running := make(map[webhook.DeliveryRef]bool, len(dIDs))
	b.Queue(runningSQL, dOrgs, dIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var r webhook.DeliveryRef
			if err := rows.Scan(&r.OrganizationID, &r.WebhookID, &r.ID, &r.Lease); err != nil {
				return err
			}
			running[r] = true
		}
		return rows.Err()
	})
	stored := make(map[webhook.WebhookRef]webhook.StoredWebhook, len(ids))
	b.Queue(`SELECT organization_id, id, updated_at, failing_since FROM webhooks
		WHERE (organization_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))
		ORDER BY organization_id, id
		FOR NO KEY UPDATE`, orgs, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				w       webhook.WebhookRef
				updated time.Time
				failing *time.Time
			)
			if err := rows.Scan(&w.OrganizationID, &w.ID, &updated, &failing); err != nil {
				return err
			}
			stored[w] = webhook.StoredWebhook{UpdatedAt: updated, FailingSince: fromNullTime(failing)}
		}
		return rows.Err()
	})
	if err := tx.send(ctx, b).Close(); err != nil {
		return err
	}
	// A webhook deleted is not read: its delivery is gone with it, and
	// nothing is disabled.
	copy(outcomes, webhook.AgainstStored(outcomes, stored, running))
	return nil
}

// completeRounds splits the outcomes (their indexes) into rounds naming
// each delivery at most once, keeping their order: one round unless a
// delivery has several outcomes.
func completeRounds(outcomes []webhook.Outcome) [][]int {
	seen := make(map[uuid.UUID]int, len(outcomes))
	var rounds [][]int
	for i, o := range outcomes {
		r := seen[o.Attempt.DeliveryID]
		seen[o.Attempt.DeliveryID] = r + 1
		if r == len(rounds) {
			rounds = append(rounds, make([]int, 0, len(outcomes)))
		}
		rounds[r] = append(rounds[r], i)
	}
	return rounds
}

// completeArgs are completeSQL's arrays for the outcomes of one round.
func (db *DB) completeArgs(outcomes []webhook.Outcome, round []int) []any {
	n := len(round)
	var (
		orgs, deliveries, ids       = make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
		hooks                       = make([]uuid.UUID, n)
		statuses, errs, kinds, urls = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		bodies                      = make([]string, n)
		next, created, finished     = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		clocks                      = make([]*time.Time, n)
		codes, numbers              = make([]int32, n), make([]int32, n)
		durations, leases           = make([]int64, n), make([]int64, n)
	)
	for j, i := range round {
		o := outcomes[i]
		a := o.Attempt
		orgs[j], hooks[j], deliveries[j], ids[j] = a.OrganizationID, a.WebhookID, a.DeliveryID, a.ID
		if ids[j] == uuid.Nil {
			ids[j] = uuid.Must(uuid.NewV7())
		}
		statuses[j], errs[j], kinds[j], urls[j], bodies[j] = string(o.Status), text(a.Error), string(a.Kind), text(a.TargetURL), text(a.ResponseBody)
		next[j], created[j], finished[j] = ts(o.NextAttemptAt), ts(a.CreatedAt), ts(a.CreatedAt.Add(a.Duration))
		if db.callerClock {
			clocks[j] = &created[j]
		}
		codes[j], numbers[j] = int32(a.StatusCode), int32(a.Number)
		durations[j], leases[j] = a.Duration.Microseconds(), o.Lease
	}
	return []any{orgs, deliveries, statuses, next, codes, errs, created, ids, numbers, kinds, urls, bodies, durations,
		leases, clocks, finished, hooks}
}

// healthChanges is what the applied outcomes change on their webhooks
// (applied[i] is the stored webhook of outcome i, uuid.Nil if it was not
// applied): failing_since (failingSQL), then the disables, audited, each
// adding its webhook to disabled when the batch's results are read if it
// was still enabled. It returns how many disables it queued.
func healthChanges(outcomes []webhook.Outcome, applied []uuid.UUID, disabled *[]webhook.DisabledWebhook) (*pgx.Batch, int, error) {
	b := &pgx.Batch{}
	changes := webhook.HealthChanges(outcomes, applied)
	if len(changes) == 0 {
		return b, 0, nil
	}
	orgs, ids := make([]uuid.UUID, len(changes)), make([]uuid.UUID, len(changes))
	resets, disable, since := make([]bool, len(changes)), make([]bool, len(changes)), make([]*time.Time, len(changes))
	for i, c := range changes {
		orgs[i], ids[i], resets[i], disable[i], since[i] = c.OrganizationID, c.WebhookID, c.Reset, c.Disable != nil, nullTime(c.Since)
	}
	b.Queue(failingSQL, orgs, ids, resets, since, disable)
	n := 0
	for _, c := range changes {
		if c.Disable != nil {
			if err := queueDisable(b, *c.Disable, disabled); err != nil {
				return nil, 0, err
			}
			n++
		}
	}
	return b, n, nil
}

// DeliveryRelease only touches running deliveries: one that was finished
// or retried meanwhile is not the caller's to give back. They are due
// p.After after the database's now(), the clock the claims compare with
// (p.Now under UseCallerClock).
func (db *DB) DeliveryRelease(ctx context.Context, p webhook.ReleaseParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if len(p.Refs) == 0 {
		return nil
	}
	orgs, hooks, ids := refKeys(p.Refs)
	_, err := db.pool.Exec(ctx, releaseSQL, orgs, ids, leases(p.Refs), p.After.Microseconds(), hooks, db.clock(p.Now))
	if err != nil {
		return translate(err)
	}
	// A node stopping gives its deliveries back: another can take them now.
	db.notifier.notify()
	return nil
}

// asyncCommit, a condition that always holds, turns synchronous_commit
// off for the rest of the one-statement transaction it is part of (a
// one-time filter, evaluated before the scan): releases and renewals then hold
// their row locks, which completions and claims wait on, for their own
// work only, not also for the WAL flush of their commit. Losing one to a
// crash of the database server is safe: a release lost leaves the
// delivery running until its lease ends and any node claims it; a
// renewal lost gives the lease its previous end, after which another
// claim may take it over and the first node's outcome is refused by the
// lease token, and the delivery is at most sent again, which at-least-once
// allows.
const asyncCommit = `(SELECT set_config('synchronous_commit', 'off', true)) = 'off'`

// lockedDeliveries locks the unfinished deliveries whose keys are in $1
// and $2 in key order, the one order every statement that locks several
// deliveries takes them in: two nodes locking overlapping sets (a
// release or a renewal under a lease takeover, and a completion) would
// otherwise each wait for a row the other holds. It returns the running
// ones, with their webhook and lease.
//
// Each is looked up by its key (the sorted keys drive a LATERAL lookup).
// The queue index (deliveries_due) must stay out of it: the planner
// believes it small, but it keeps every finished delivery's entry until
// VACUUM, and reading it cost 5 ms per batch of 80 outcomes in a burst
// (20,000 entries). So the lookup's own condition on the status (not
// finished) is one the planner cannot match to that index's predicate,
// and OFFSET 0 keeps the "running" check out of it. Finished deliveries
// stay unlocked: retention and recovery lock those in orders of their
// own. TestDeliveryLookupsUseKeys checks the plans.
const lockedDeliveries = `(SELECT d.organization_id, d.webhook_id, d.id, d.lease
	FROM (SELECT DISTINCT org, id FROM unnest($1::uuid[], $2::uuid[]) AS k(org, id) ORDER BY org, id) k,
		LATERAL (SELECT organization_id, webhook_id, id, status, lease FROM deliveries
			WHERE organization_id = k.org AND id = k.id AND status NOT IN ('succeeded', 'failed')
			OFFSET 0 FOR NO KEY UPDATE) d
	WHERE d.status = 'running')`

// releaseSQL and renewSQL update the deliveries lockedDeliveries returns
// under the caller's lease, found again by key: a row address from the
// lock would name the version this statement's snapshot sees, which a
// renewal committed while the lock waited has replaced. Nothing of d but
// its key is named, so the planner has no condition to read the queue
// index for. The refs' webhooks (releaseSQL's $5, renewSQL's $6, after
// the parameters each had before) are checked on the locked row, as
// lockedDeliveries returns it. releaseSQL makes the deliveries due $4
// microseconds after the database's now() (or $6, the caller's clock in
// tests), and renewSQL extends the lease that long after it (or $5).
const (
	releaseSQL = `UPDATE deliveries d SET status = 'pending', due_at = coalesce($6::timestamptz, now()) + $4::bigint * interval '1 microsecond'
		FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $5::uuid[]) AS r(org, id, lease, hook), ` + lockedDeliveries + ` l
		WHERE ` + asyncCommit + ` AND d.organization_id = l.organization_id AND d.id = l.id
			AND l.organization_id = r.org AND l.id = r.id AND l.lease = r.lease AND l.webhook_id = r.hook`
	renewSQL = `UPDATE deliveries d SET due_at = coalesce($5::timestamptz, now()) + $4::bigint * interval '1 microsecond'
		FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $6::uuid[]) AS r(org, id, lease, hook), ` + lockedDeliveries + ` l
		WHERE ` + asyncCommit + ` AND d.organization_id = l.organization_id AND d.id = l.id
			AND l.organization_id = r.org AND l.id = r.id AND l.lease = r.lease AND l.webhook_id = r.hook
		RETURNING d.organization_id, d.webhook_id, d.id, d.lease`
)

// refKeys are the arrays of the refs' organizations, webhooks and ids.
func refKeys(refs []webhook.DeliveryRef) (orgs, hooks, ids []uuid.UUID) {
	orgs, hooks, ids = make([]uuid.UUID, len(refs)), make([]uuid.UUID, len(refs)), make([]uuid.UUID, len(refs))
	for i, r := range refs {
		orgs[i], hooks[i], ids[i] = r.OrganizationID, r.WebhookID, r.ID
	}
	return orgs, hooks, ids
}

func leases(refs []webhook.DeliveryRef) []int64 {
	l := make([]int64, len(refs))
	for i, r := range refs {
		l[i] = r.Lease
	}
	return l
}

// DeliveryRenew extends the leases still held in one statement, on the
// database's clock like DeliveryClaim.
func (db *DB) DeliveryRenew(ctx context.Context, p webhook.RenewParams) ([]webhook.DeliveryRef, error) {
	lost := []webhook.DeliveryRef{}
	if len(p.Refs) == 0 {
		return lost, nil
	}
	if err := webhook.ValidateRefs(p.Refs); err != nil {
		return nil, err
	}
	orgs, hooks, ids := refKeys(p.Refs)
	rows, err := db.pool.Query(ctx, renewSQL, orgs, ids, leases(p.Refs), p.LeaseUntil.Sub(p.Now).Microseconds(), db.clock(p.Now), hooks)
	if err != nil {
		return nil, translate(err)
	}
	renewed, err := pgx.CollectRows(rows, pgx.RowToStructByPos[webhook.DeliveryRef])
	if err != nil {
		return nil, translate(err)
	}
	// Whole refs, not ids: a ref naming a renewed delivery's id under
	// another organization, webhook or lease renewed nothing, and is lost.
	// (RowToStructByPos: renewSQL returns DeliveryRef's fields in order.)
	held := make(map[webhook.DeliveryRef]bool, len(renewed))
	for _, r := range renewed {
		held[r] = true
	}
	for _, r := range p.Refs {
		if !held[r] {
			lost = append(lost, r)
		}
	}
	return lost, nil
}

func (db *DB) DeliveryRetry(ctx context.Context, orgID, webhookID, id uuid.UUID, now time.Time) (*webhook.Delivery, error) {
	// The event's row is locked FOR KEY SHARE, so that retention, which
	// may be deleting the event with its finished deliveries, sees this
	// one pending or is seen to have deleted it (see deleteBatch).
	// Due now on the database's clock, which the claims compare with: on
	// the caller's, a node whose clock runs ahead would make it wait.
	d, err := scanDelivery(db.pool.QueryRow(ctx, `UPDATE deliveries SET status = 'pending', due_at = coalesce($5::timestamptz, now()), updated_at = $4
		WHERE organization_id = $1 AND webhook_id = $2 AND id = $3 AND status <> 'running'
			AND EXISTS (SELECT 1 FROM events e WHERE e.organization_id = deliveries.organization_id AND e.id = deliveries.event_id FOR KEY SHARE)
		RETURNING `+deliveryCols, orgID, webhookID, id, ts(now), db.clock(now)))
	if errors.Is(err, pgx.ErrNoRows) {
		// Either it does not exist or it is running; the second read
		// tells which, for the right error.
		if _, err := db.DeliveryGet(ctx, orgID, webhookID, id); err != nil {
			return nil, err
		}
		return nil, webhook.Errorf(webhook.EConflict, "delivery %s is being attempted right now; retry it once the attempt ends", id)
	}
	if err != nil {
		return nil, translate(err)
	}
	db.notifier.notify()
	return d, nil
}

func (db *DB) DeliveryGet(ctx context.Context, orgID, webhookID, id uuid.UUID) (*webhook.Delivery, error) {
	d, err := scanDelivery(db.pool.QueryRow(ctx, `SELECT `+deliveryCols+` FROM deliveries
		WHERE organization_id = $1 AND webhook_id = $2 AND id = $3`, orgID, webhookID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("delivery", id)
	}
	if err != nil {
		return nil, translate(err)
	}
	return d, nil
}

// query builds a WHERE clause from optional conditions, numbering the
// placeholders, so each list query has the plan of what it really filters on.
type query struct {
	where []string
	args  []any
}

func (q *query) and(cond string, arg any) {
	q.args = append(q.args, arg)
	q.where = append(q.where, fmt.Sprintf(cond, len(q.args)))
}

func (q *query) sql(prefix, suffix string, limit int) string {
	s := prefix + " WHERE " + strings.Join(q.where, " AND ") + " " + suffix
	if limit > 0 {
		q.args = append(q.args, limit)
		s += fmt.Sprintf(" LIMIT $%d", len(q.args))
	}
	return s
}

func (db *DB) DeliveryList(ctx context.Context, p webhook.DeliveryListParams) ([]*webhook.Delivery, error) {
	sql, args := deliveryListQuery(p)
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err)
	}
	return collect(rows, scanDeliveryRow)
}

// deliveryListQuery is DeliveryList's statement. Its status is written
// in it, not a parameter: a prepared statement's generic plan, which
// pgx's cached statements come to after five runs, cannot use a partial
// index for a parameter, and read the webhook's whole history for a
// status few of its rows have (7 s for 3 million deliveries, none
// running). With it, failed ones are read in order from
// deliveries_webhook_failed and pending or running ones from the queue
// (deliveries_due), as TestDeliveryListPlans checks.
func deliveryListQuery(p webhook.DeliveryListParams) (string, []any) {
	var q query
	q.and("organization_id = $%d", p.OrganizationID)
	q.and("webhook_id = $%d", p.WebhookID)
	switch {
	case slices.Contains(webhook.DeliveryStatuses, p.Status):
		q.where = append(q.where, "status = '"+string(p.Status)+"'")
	case p.Status != "":
		q.and("status = $%d", string(p.Status)) // one no row holds
	}
	if p.Before != uuid.Nil {
		q.and("id < $%d", p.Before)
	}
	return q.sql(`SELECT `+deliveryCols+` FROM deliveries`, `ORDER BY id DESC`, p.Limit), q.args
}

// DeliveryBacklog counts what is due on the database's clock, which due
// times are written and claimed on, and moves the oldest due time onto
// the caller's clock, which its age is measured with: a node whose clock
// is off would otherwise count retries not yet due, and add its skew to
// the age of the oldest.
func (db *DB) DeliveryBacklog(ctx context.Context, now time.Time) (int, time.Time, error) {
	var (
		due    int
		oldest *time.Time
		dbNow  time.Time
	)
	err := db.pool.QueryRow(ctx, `SELECT count(*), min(due_at), coalesce($1::timestamptz, now()) FROM deliveries
		WHERE status IN ('pending', 'running') AND due_at <= coalesce($1::timestamptz, now())`, db.clock(now)).Scan(&due, &oldest, &dbNow)
	if err != nil {
		return 0, time.Time{}, translate(err)
	}
	if oldest == nil {
		return due, time.Time{}, nil
	}
	return due, fromNullTime(oldest).Add(now.Sub(dbNow)), nil
}

const attemptCols = `organization_id, id, delivery_id, webhook_id, created_at, number, kind,
	target_url, status_code, response_body, duration_us, error`

// AttemptList joins each attempt's event, through its delivery (an
// attempt does not repeat the delivery's event id); attempts of one event
// share one *Event.
func (db *DB) AttemptList(ctx context.Context, p webhook.AttemptListParams) ([]*webhook.Attempt, error) {
	var q query
	q.and("a.organization_id = $%d", p.OrganizationID)
	q.and("a.webhook_id = $%d", p.WebhookID)
	if p.DeliveryID != uuid.Nil {
		q.and("a.delivery_id = $%d", p.DeliveryID)
	}
	rows, err := db.pool.Query(ctx, q.sql(`SELECT `+prefixed("a", attemptCols)+`, `+prefixed("e", eventCols)+`
		FROM attempts a
		JOIN deliveries d ON d.organization_id = a.organization_id AND d.id = a.delivery_id
		JOIN events e ON e.organization_id = d.organization_id AND e.id = d.event_id`,
		`ORDER BY a.created_at DESC, a.id DESC`, p.Limit), q.args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	events := map[uuid.UUID]*webhook.Event{}
	out := []*webhook.Attempt{}
	for rows.Next() {
		var (
			a   webhook.Attempt
			us  int64
			key *string
			ev  webhook.Event
			pl  []byte
		)
		err := rows.Scan(&a.OrganizationID, &a.ID, &a.DeliveryID, &a.WebhookID, &a.CreatedAt, &a.Number, &a.Kind,
			&a.TargetURL, &a.StatusCode, &a.ResponseBody, &us, &a.Error,
			&ev.OrganizationID, &ev.ID, &ev.CreatedAt, &ev.Type, &key, &ev.ProjectName, &ev.EnvironmentMode, &pl, &ev.ContentHash)
		if err != nil {
			return nil, translate(err)
		}
		a.CreatedAt = a.CreatedAt.UTC()
		a.Duration = time.Duration(us) * time.Microsecond
		if events[ev.ID] == nil {
			ev.CreatedAt = ev.CreatedAt.UTC()
			if key != nil {
				ev.IdempotencyKey = *key
			}
			ev.Payload = pl
			events[ev.ID] = &ev
		}
		a.EventID, a.Event = ev.ID, events[ev.ID]
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}
