package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

// The queue tables (migration 0030) store ids as 16-byte BLOBs, point at
// each other by seq (their rowid) and keep a delivery's event id and
// type, and an attempt's organization and event, only in the row they
// belong to: the reads below join them back.
const (
	// eventColumns are read from events aliased e.
	eventColumns = `e.organization_id, e.id, e.created_at, e.event_type, e.idempotency_key, e.project_name,
		e.environment_mode, e.payload, e.content_hash`
	// deliveryColumns are read from deliveryTables.
	deliveryColumns = `e.organization_id, d.id, d.webhook_id, e.id, d.created_at, d.updated_at, d.status, d.due_at,
		d.attempts, d.last_status_code, d.last_error, e.event_type, d.lease`
	deliveryTables = `deliveries d JOIN events e ON e.seq = d.event_seq`
)

// A delivery's status as the deliveries table stores it: an integer, the
// unfinished ones below statusSucceeded (the queue index's condition).
const (
	statusPending = iota
	statusRunning
	statusSucceeded
	statusFailed
)

var statusNames = [...]webhook.DeliveryStatus{statusPending: webhook.DeliveryPending, statusRunning: webhook.DeliveryRunning,
	statusSucceeded: webhook.DeliverySucceeded, statusFailed: webhook.DeliveryFailed}

// statusCode is s as stored; -1, which no row holds, for an unknown one.
func statusCode(s webhook.DeliveryStatus) int {
	for i, n := range statusNames {
		if n == s {
			return i
		}
	}
	return -1
}

// key binds a UUID the way the queue tables store it: its 16 bytes
// (uuid.UUID binds as text, and a BLOB column never equals a text).
// uuid.UUID scans from the 16 bytes as it is.
func key(id uuid.UUID) []byte { return id[:] }

// keyBuf binds UUIDs as key does, copied into one buffer: key's copy of an
// id is an allocation of its own, and the multi-row statements of a
// burst bind several ids per row. An id returned stays valid when the
// buffer grows (it keeps the array it was copied to).
type keyBuf []byte

func (k *keyBuf) key(id uuid.UUID) []byte {
	*k = append(*k, id[:]...)
	return (*k)[len(*k)-len(id) : len(*k) : len(*k)]
}

// seqList binds a list of seqs as one JSON array, read in SQL with
// json_each: one statement for any length, so it stays cached.
func seqList(seqs []int64) string {
	b, _ := json.Marshal(seqs) // integers always marshal
	return string(b)
}

type deliveryRow struct {
	d                     webhook.Delivery
	created, updated, due int64
	status                int
}

func (r *deliveryRow) dest() []any {
	return []any{&r.d.OrganizationID, &r.d.ID, &r.d.WebhookID, &r.d.EventID, &r.created, &r.updated, &r.status,
		&r.due, &r.d.Attempts, &r.d.LastStatusCode, &r.d.LastError, &r.d.EventType, &r.d.Lease}
}

func (r *deliveryRow) delivery() *webhook.Delivery {
	d := r.d
	d.CreatedAt, d.UpdatedAt, d.DueAt = fromMicros(r.created), fromMicros(r.updated), fromMicros(r.due)
	d.Status = statusNames[r.status] // the table's CHECK keeps it in range
	return &d
}

func scanDelivery(row scanner) (*webhook.Delivery, error) {
	var r deliveryRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.delivery(), nil
}

// DeliveryClaim leases due deliveries: it picks them, leases them (see
// lease) and reads their webhooks, all in one write transaction, which
// keeps the events and webhooks read consistent with the lease.
func (db *DB) DeliveryClaim(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Task, error) {
	tasks := []*webhook.Task{}
	if p.Limit <= 0 {
		return tasks, nil
	}
	var (
		unreadable []webhook.DeliveryRef
		failed     error
	)
	err := db.queueWrite(ctx, func(tx *txn) error {
		tasks, unreadable, failed = tasks[:0], unreadable[:0], nil
		args := []any{micros(p.Now)}
		exclude := ""
		if len(p.ExcludeWebhooks) > 0 {
			exclude = ` AND webhook_id NOT IN (` + placeholders(len(p.ExcludeWebhooks)) + `)`
			for _, id := range p.ExcludeWebhooks {
				args = append(args, key(id))
			}
		}
		args = append(args, p.Limit)
		// Chosen, then leased: the tasks are handed out oldest due first,
		// and an UPDATE's RETURNING comes in no set order.
		rows, err := tx.QueryContext(ctx, `SELECT seq FROM deliveries
			WHERE status < 2 AND due_at <= ?`+exclude+`
			ORDER BY due_at, seq LIMIT ?`, args...)
		if err != nil {
			return err
		}
		var seqs []int64
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return err
			}
			seqs = append(seqs, seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(seqs) == 0 {
			return nil
		}
		if tasks, seqs, err = lease(ctx, tx, seqs, p); err != nil {
			return err
		}
		tasks, unreadable, failed, err = claimedWebhooks(ctx, tx, tasks, seqs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return secrets.Claimed(ctx, db, p, tasks, unreadable, failed)
}

const (
	leaseSQL = `UPDATE deliveries SET status = 1, due_at = ?, updated_at = ?, lease = lease + 1
		WHERE seq IN (SELECT value FROM json_each(?))
		RETURNING seq, event_seq, id, webhook_id, created_at, updated_at, status, due_at, attempts, last_status_code, last_error, lease`
	claimedEventsSQL = `SELECT e.seq, ` + eventColumns + ` FROM events e WHERE e.seq IN (SELECT value FROM json_each(?))`
)

// lease leases the deliveries of seqs and returns them as tasks, in the
// order of seqs, with their events, and their rows: the returned seqs[i]
// is tasks[i]'s. It overwrites seqs, which the caller must not read
// again. Each event is read once, however many of its deliveries are
// claimed: reading it beside every delivery (a join) read a fan-out's
// payload once per webhook, and was the most expensive statement of a
// backlog's drain.
func lease(ctx context.Context, tx *txn, seqs []int64, p webhook.ClaimParams) ([]*webhook.Task, []int64, error) {
	at := make(map[int64]int, len(seqs))
	for i, seq := range seqs {
		at[seq] = i
	}
	rows, err := tx.QueryContext(ctx, leaseSQL, micros(p.LeaseUntil), micros(p.Now), seqList(seqs))
	if err != nil {
		return nil, nil, err
	}
	leased := make([]*webhook.Task, len(seqs))
	eventOf := make([]int64, len(seqs))
	var events []int64
	seen := map[int64]bool{}
	for rows.Next() {
		var (
			seq, eventSeq int64
			dr            deliveryRow
		)
		// leaseSQL's RETURNING, column by column; the organization, the
		// event's id and type come with the event.
		if err := rows.Scan(&seq, &eventSeq, &dr.d.ID, &dr.d.WebhookID, &dr.created, &dr.updated, &dr.status,
			&dr.due, &dr.d.Attempts, &dr.d.LastStatusCode, &dr.d.LastError, &dr.d.Lease); err != nil {
			rows.Close()
			return nil, nil, err
		}
		i := at[seq]
		leased[i], eventOf[i] = &webhook.Task{Delivery: *dr.delivery()}, eventSeq
		if !seen[eventSeq] {
			seen[eventSeq] = true
			events = append(events, eventSeq)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	rows, err = tx.QueryContext(ctx, claimedEventsSQL, seqList(events))
	if err != nil {
		return nil, nil, err
	}
	byEvent := make(map[int64]*webhook.Event, len(events))
	for rows.Next() {
		var (
			seq int64
			er  eventRow
		)
		if err := rows.Scan(append([]any{&seq}, er.dest()...)...); err != nil {
			rows.Close()
			return nil, nil, err
		}
		e := er.event()
		byEvent[seq] = &e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	tasks, taskSeqs := leased[:0], seqs[:0]
	for i, t := range leased {
		e := byEvent[eventOf[i]]
		if t == nil || e == nil {
			// Not seen in practice: retention deletes an event only when
			// its deliveries are finished, and them with it. Left out, as
			// the join this replaced left it out.
			continue
		}
		t.Event = *e
		t.Delivery.OrganizationID, t.Delivery.EventID, t.Delivery.EventType = e.OrganizationID, e.ID, e.Type
		tasks, taskSeqs = append(tasks, t), append(taskSeqs, seqs[i])
	}
	return tasks, taskSeqs, nil
}

// claimedWebhooks fills in each task's webhook, from its organization's
// webhooks (the writer's cache of them: see webhookCache), and returns
// the tasks that have one. A task without one is a delivery of a deleted
// webhook that the purger has not reached yet (see purge.go): it is deleted
// here, with its attempts, all such together in two statements (seqs[i]
// is tasks[i]'s row). A task whose webhook's secrets cannot be opened (its
// key is not configured) is left out and returned as unreadable, with the
// first such error, for secrets.Claimed.
func claimedWebhooks(ctx context.Context, tx *txn, tasks []*webhook.Task, seqs []int64) (_ []*webhook.Task, unreadable []webhook.DeliveryRef, failed error, _ error) {
	orgs := map[uuid.UUID]cachedWebhooks{} // an id alone could name another organization's webhook
	out := tasks[:0]
	var orphans []int64
	for i, t := range tasks {
		d := &t.Delivery
		e, ok := orgs[d.OrganizationID]
		if !ok {
			var err error
			if e, err = tx.orgEntry(ctx, d.OrganizationID); err != nil {
				return nil, nil, nil, err
			}
			orgs[d.OrganizationID] = e
		}
		w := e.byID[d.WebhookID]
		switch {
		case w == nil:
			orphans = append(orphans, seqs[i])
		case w.Unreadable != nil:
			unreadable = append(unreadable, t.Ref())
			if failed == nil {
				failed = w.Unreadable
			}
		default:
			t.Webhook = *w
			out = append(out, t)
		}
	}
	if len(orphans) > 0 {
		if err := deleteDeliveries(ctx, tx, seqList(orphans)); err != nil {
			return nil, nil, nil, err
		}
	}
	return out, unreadable, failed, nil
}

// DeliveryComplete records attempts and applies their outcomes.
func (db *DB) DeliveryComplete(ctx context.Context, outcomes []webhook.Outcome) (webhook.CompleteResult, error) {
	var res webhook.CompleteResult
	if err := webhook.ValidateOutcomes(outcomes); err != nil {
		return res, err
	}
	// Attempt ids are made, and the text a target sent cleaned, before
	// the transaction, in a copy of the outcomes (the caller's stay as
	// they are): the writer does only SQL, and may run it again (see
	// writer.go). Stored as PostgreSQL stores it (webhook.StoredText), the
	// delivery log shows one answer the same way on both backends.
	outcomes = slices.Clone(outcomes)
	for i := range outcomes {
		o := &outcomes[i]
		a := &o.Attempt
		a.Error, a.TargetURL, a.ResponseBody = webhook.StoredText(a.Error), webhook.StoredText(a.TargetURL), webhook.StoredText(a.ResponseBody)
		o.DisableReason = webhook.StoredText(o.DisableReason)
		if a.ID == uuid.Nil {
			var err error
			if a.ID, err = uuid.NewV7(); err != nil {
				return res, err
			}
		}
	}
	// A chunk's UPDATE changes a delivery row once, under whichever of
	// the chunk's outcomes naming it matched, and tells only which rows
	// it changed: outcomes that name one delivery twice (another
	// organization's beside the lease holder's, or one outcome sent
	// twice) are told apart only one by one. The dispatcher never sends
	// such a batch, so the slow way costs nothing in practice.
	chunks := deliveryChunks
	seen := make(map[uuid.UUID]bool, len(outcomes))
	for _, o := range outcomes {
		if seen[o.Attempt.DeliveryID] {
			chunks = []int{1}
			break
		}
		seen[o.Attempt.DeliveryID] = true
	}
	var notApplied []webhook.Outcome
	err := db.queueWrite(ctx, func(tx *txn) error {
		// The writer may run this again (see writer.go): from scratch.
		res, notApplied = webhook.CompleteResult{}, notApplied[:0]
		rest, err := against(ctx, tx, outcomes)
		if err != nil {
			return err
		}
		for _, n := range chunks {
			for len(rest) >= n {
				if err := complete(ctx, tx, rest[:n], &res, &notApplied); err != nil {
					return err
				}
				rest = rest[n:]
			}
		}
		return nil
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

// attemptStoredSQL counts an attempt by its delivery's webhook and id,
// and its own id (attempts keep no index on it).
const attemptStoredSQL = `SELECT count(*) FROM attempts
	WHERE delivery_seq = (SELECT seq FROM deliveries WHERE webhook_id = ? AND id = ?) AND id = ?`

// attemptsStored returns the ids of the outcomes' attempts that are
// stored, or nil if they cannot be read (see webhook.StaleRefs). Stale
// outcomes are rare: one lookup each, by its delivery.
func (db *DB) attemptsStored(ctx context.Context, outcomes []webhook.Outcome) map[uuid.UUID]bool {
	stored := make(map[uuid.UUID]bool)
	for _, o := range outcomes {
		var n int
		err := db.read.QueryRowContext(ctx, attemptStoredSQL,
			key(o.Attempt.WebhookID), key(o.Attempt.DeliveryID), key(o.Attempt.ID)).Scan(&n)
		if err != nil {
			return nil
		}
		if n > 0 {
			stored[o.Attempt.ID] = true
		}
	}
	return stored
}

// disableRecordedSQL finds the webhook that hookd's disable, by an
// attempt that ended at the third term, disabled: its audit entry, dated
// at the attempt's end (see changeHealth), by the organization's key.
// With the webhook's UpdatedAt now, which the dispatcher's give-back
// compares with (a later edit's, if a person edited it since, only gives
// back more).
const disableRecordedSQL = `SELECT updated_at FROM webhooks w
	WHERE organization_id = ?1 AND id = ?2 AND EXISTS (SELECT 1 FROM audit_entries
		WHERE organization_id = ?1 AND resource_id = ?2 AND created_at = ?3 AND actor_kind = 'hookd' AND action = 'webhook.disabled')`

// disablesRecorded returns the webhooks the outcomes' disables, applied
// by an earlier call, disabled (see webhook.DisablesRecorded); those it
// cannot read are left out, as before such a disable could be told. Rare:
// one lookup each.
func (db *DB) disablesRecorded(ctx context.Context, outcomes []webhook.Outcome) []webhook.DisabledWebhook {
	var disabled []webhook.DisabledWebhook
	for _, o := range outcomes {
		a := o.Attempt
		ref := webhook.WebhookRef{OrganizationID: a.OrganizationID, ID: a.WebhookID}
		if slices.ContainsFunc(disabled, func(d webhook.DisabledWebhook) bool { return d.WebhookRef == ref }) {
			continue
		}
		var updated int64
		err := db.read.QueryRowContext(ctx, disableRecordedSQL, a.OrganizationID, a.WebhookID, micros(a.CreatedAt.Add(a.Duration))).Scan(&updated)
		if err == nil {
			disabled = append(disabled, webhook.DisabledWebhook{WebhookRef: ref, UpdatedAt: fromMicros(updated)})
		}
	}
	return disabled
}

// against returns the outcomes with each one that disables its webhook
// put against the webhook as stored (see webhook.AgainstStored): read in
// the writer's transaction, before its outcomes are written, so no edit
// comes between the version read and the disable, and all chunks of a
// batch are put against the webhooks as they were before it, as on
// PostgreSQL. Only the webhooks of disables are read, and they are rare;
// a batch with none is returned as it is. The outcomes given are not
// changed: the writer may run the transaction again (see writer.go),
// after an edit of its group was rolled back.
func against(ctx context.Context, tx *txn, outcomes []webhook.Outcome) ([]webhook.Outcome, error) {
	var stored map[webhook.WebhookRef]webhook.StoredWebhook
	for _, o := range outcomes {
		w := webhook.WebhookRef{OrganizationID: o.Attempt.OrganizationID, ID: o.Attempt.WebhookID}
		if _, read := stored[w]; o.DisableReason == "" || read {
			continue
		}
		var (
			updated int64
			failing sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT updated_at, failing_since FROM webhooks WHERE organization_id = ? AND id = ?`,
			w.OrganizationID, w.ID).Scan(&updated, &failing)
		if errors.Is(err, sql.ErrNoRows) {
			continue // deleted: its delivery is gone with it, and nothing is disabled
		}
		if err != nil {
			return nil, err
		}
		if stored == nil {
			stored = map[webhook.WebhookRef]webhook.StoredWebhook{}
		}
		stored[w] = webhook.StoredWebhook{UpdatedAt: fromMicros(updated), FailingSince: fromNullMicros(failing)}
	}
	if stored == nil {
		return outcomes, nil
	}
	// Which of those webhooks' outcomes complete will record: the
	// streak AgainstStored follows is the one the store writes.
	running := map[webhook.DeliveryRef]bool{}
	for _, o := range outcomes {
		r := o.Ref()
		if _, read := stored[webhook.WebhookRef{OrganizationID: r.OrganizationID, ID: r.WebhookID}]; !read || running[r] {
			continue
		}
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM deliveries`+heldByRef,
			key(r.WebhookID), key(r.ID), r.Lease, key(r.OrganizationID)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		running[r] = true
	}
	return webhook.AgainstStored(outcomes, stored, running), nil
}

// Outcomes are written in chunks (of deliveryChunks sizes, so the
// statement cache holds a few statements): one UPDATE of their
// deliveries and one INSERT of their attempts per chunk, and per webhook
// they touch, one UPDATE of its health (and a disable).
var (
	completeUpdates = map[int]string{}
	attemptInserts  = map[int]string{}
)

const attemptParams = 11

func init() {
	for _, n := range deliveryChunks {
		// attempts counts the attempts recorded, one more per outcome,
		// not the attempt's Number: see completeSQL in the PostgreSQL
		// backend, which follows the same rule. updated_at is when the
		// attempt finished (CreatedAt plus Duration).
		completeUpdates[n] = `WITH v(org, hook, id, status, due, code, err, updated, lease) AS (VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), ", ") + `)
			UPDATE deliveries SET status = v.status, due_at = coalesce(v.due, deliveries.due_at), attempts = deliveries.attempts + 1,
				last_status_code = v.code, last_error = v.err, updated_at = v.updated
			FROM v WHERE deliveries.webhook_id = v.hook AND deliveries.id = v.id AND deliveries.status = 1 AND deliveries.lease = v.lease
				AND (SELECT organization_id FROM events WHERE seq = deliveries.event_seq) = v.org
			RETURNING deliveries.id, deliveries.seq`
		attemptInserts[n] = `INSERT INTO attempts (id, delivery_seq, webhook_id, created_at, number, kind, target_url,
			status_code, duration_us, error, response_body) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), ", ")
	}
}

// complete applies one chunk of outcomes, whose attempts have ids, adds
// to notApplied those whose lease was gone, and to res the webhooks it
// disabled (see webhook.Store.DeliveryComplete).
func complete(ctx context.Context, tx *txn, outcomes []webhook.Outcome, res *webhook.CompleteResult, notApplied *[]webhook.Outcome) error {
	args := make([]any, 0, attemptParams*len(outcomes))
	ids := make(keyBuf, 0, 5*16*len(outcomes)) // five a row: three here, two in the attempts
	for _, o := range outcomes {
		a := o.Attempt
		var due any // NULL keeps the due time: only a pending delivery has a next one
		if o.Status == webhook.DeliveryPending {
			due = micros(o.NextAttemptAt)
		}
		args = append(args, ids.key(a.OrganizationID), ids.key(a.WebhookID), ids.key(a.DeliveryID), statusCode(o.Status), due, a.StatusCode, a.Error,
			micros(a.CreatedAt.Add(a.Duration)), o.Lease)
	}
	// The seq of each delivery updated, by id. Its webhook is the
	// attempt's: the update found it by that webhook and id.
	found := make(map[uuid.UUID]int64, len(outcomes))
	rows, err := tx.QueryContext(ctx, completeUpdates[len(outcomes)], args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id uuid.UUID
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			rows.Close()
			return err
		}
		found[id] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	args = args[:0]
	hooks := make([]uuid.UUID, len(outcomes)) // of the outcomes recorded; uuid.Nil: not recorded
	for i, o := range outcomes {
		a := o.Attempt
		seq, ok := found[a.DeliveryID]
		if !ok {
			// Its lease was taken over, or the webhook was deleted while
			// the attempt ran, taking the delivery with it: there is
			// nothing left to record against.
			*notApplied = append(*notApplied, o)
			continue
		}
		hooks[i] = a.WebhookID
		if o.Retried {
			res.Outdated = append(res.Outdated, o.Ref())
		}
		args = append(args, ids.key(a.ID), seq, ids.key(a.WebhookID), micros(a.CreatedAt), a.Number, string(a.Kind),
			a.TargetURL, a.StatusCode, a.Duration.Microseconds(), a.Error, a.ResponseBody)
	}
	if n := len(args) / attemptParams; n == len(outcomes) {
		if _, err := tx.ExecContext(ctx, attemptInserts[n], args...); err != nil {
			return err
		}
	} else {
		// Some deliveries were gone: rare enough to go one by one.
		for ; len(args) > 0; args = args[attemptParams:] {
			if _, err := tx.ExecContext(ctx, attemptInserts[1], args[:attemptParams]...); err != nil {
				return err
			}
		}
	}
	changes := webhook.HealthChanges(outcomes, hooks)
	kept, err := keptHealth(ctx, tx, changes)
	if err != nil {
		return err
	}
	for i, c := range changes {
		if kept[i] {
			continue
		}
		disabled, err := changeHealth(ctx, tx, c)
		if err != nil {
			return err
		}
		if !disabled.IsZero() {
			res.Disabled = append(res.Disabled, webhook.DisabledWebhook{
				WebhookRef: webhook.WebhookRef{OrganizationID: c.OrganizationID, ID: c.WebhookID}, UpdatedAt: disabled})
		}
	}
	return nil
}

// keptHealth reports, for each change, whether it leaves its webhook as
// it is: no disable, and FailingSince already what the change would
// write (a success on a healthy webhook, a failure on one failing
// already), by the webhook as the writer's cache holds it for this
// transaction. changeHealth's UPDATE would change no row then, and is not
// run: in a fan-out, a batch of successes cost one such UPDATE per
// webhook. The changes of an organization the cache does not hold are all
// run; it is not read for this.
//
// A change that is run moves the webhooks' version, but it changes only
// its own webhook, which no later change of the same batch names: the
// others' rows are still the ones read.
func keptHealth(ctx context.Context, tx *txn, changes []webhook.HealthChange) ([]bool, error) {
	kept := make([]bool, len(changes))
	orgs := map[uuid.UUID]map[uuid.UUID]*webhook.Webhook{} // nil: not cached
	for i, c := range changes {
		if c.Disable != nil {
			continue
		}
		hooks, ok := orgs[c.OrganizationID]
		if !ok {
			var err error
			if hooks, err = tx.cachedByID(ctx, c.OrganizationID); err != nil {
				return nil, err
			}
			orgs[c.OrganizationID] = hooks
		}
		w := hooks[c.WebhookID]
		switch {
		case w == nil:
		case c.Reset:
			kept[i] = micros(w.FailingSince) == micros(c.Since) // the zero time included
		default:
			kept[i] = !w.FailingSince.IsZero()
		}
	}
	return kept, nil
}

// changeHealth writes what c does to its webhook's health, by the rule
// of webhook.HealthChange written in SQL. Where the writer's cache holds
// the webhook, keptHealth has already left out the changes that would
// change nothing; elsewhere one UPDATE that writes no row costs less than
// reading the row first (which cost about a tenth more CPU in the fan-out
// benchmark). A webhook deleted, its deliveries going after it (see
// purger), is not found: nothing to do. It returns the UpdatedAt its
// disable gave the webhook, zero if it disabled none.
func changeHealth(ctx context.Context, tx *txn, c webhook.HealthChange) (disabled time.Time, _ error) {
	if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET
		failing_since = CASE WHEN ?1 THEN ?2 ELSE coalesce(failing_since, ?2) END
		WHERE organization_id = ?3 AND id = ?4
		AND CASE WHEN ?1 THEN failing_since IS NOT ?2 ELSE failing_since IS NULL END`,
		c.Reset, nullMicros(c.Since), c.OrganizationID, c.WebhookID); err != nil {
		return time.Time{}, err
	}
	if c.Disable == nil {
		return time.Time{}, nil
	}
	// Only a webhook still enabled is disabled, and audited: one disabled
	// meanwhile (by a person, or by another outcome) keeps its reason.
	// Dated when the attempt ended, by webhook.EditedAt's rule, so the
	// tasks that read it enabled are read before (see
	// webhook.DisabledWebhook).
	a := c.Disable.Attempt
	ended := a.CreatedAt.Add(a.Duration)
	var updated int64
	err := tx.QueryRowContext(ctx, `UPDATE webhooks SET enabled = 0, disabled_reason = ?, updated_at = max(updated_at + 1, ?)
		WHERE organization_id = ? AND id = ? AND enabled RETURNING updated_at`,
		c.Disable.DisableReason, micros(ended), c.OrganizationID, c.WebhookID).Scan(&updated)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	// The attempt's URL is the webhook's as claimed, masked: the name of
	// what hookd gave up on.
	audit := webhook.DisabledByHookdAudit(ended, a.TargetURL, c.Disable.DisableReason)
	return fromMicros(updated), insertAudit(ctx, tx, audit, c.OrganizationID, c.WebhookID)
}

// releaseSQL and renewSQL give back, or extend, the lease of one delivery
// still running under it, found by its webhook and id (see
// webhook.DeliveryRef).
const (
	heldByRef = ` WHERE webhook_id = ? AND id = ? AND status = 1 AND lease = ?
		AND (SELECT organization_id FROM events WHERE seq = event_seq) = ?`
	releaseSQL = `UPDATE deliveries SET status = 0, due_at = ?` + heldByRef
	renewSQL   = `UPDATE deliveries SET due_at = ?` + heldByRef
)

// DeliveryRelease gives leased deliveries back without counting an
// attempt, due p.After after p.Now: the queue runs on the caller's clock.
func (db *DB) DeliveryRelease(ctx context.Context, p webhook.ReleaseParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if len(p.Refs) == 0 {
		return nil
	}
	due := micros(p.Now.Add(p.After))
	return db.queueWrite(ctx, func(tx *txn) error {
		for _, ref := range p.Refs {
			if _, err := tx.ExecContext(ctx, releaseSQL, due, key(ref.WebhookID), key(ref.ID), ref.Lease, key(ref.OrganizationID)); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeliveryRenew extends each lease still held, one statement per delivery
// in one write transaction (SQLite has one writer: the batch costs one
// commit).
func (db *DB) DeliveryRenew(ctx context.Context, p webhook.RenewParams) ([]webhook.DeliveryRef, error) {
	var lost []webhook.DeliveryRef
	if len(p.Refs) == 0 {
		return lost, nil
	}
	if err := webhook.ValidateRefs(p.Refs); err != nil {
		return nil, err
	}
	err := db.queueWrite(ctx, func(tx *txn) error {
		lost = lost[:0]
		for _, ref := range p.Refs {
			res, err := tx.ExecContext(ctx, renewSQL, micros(p.LeaseUntil), key(ref.WebhookID), key(ref.ID), ref.Lease, key(ref.OrganizationID))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				lost = append(lost, ref)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// DeliveryRetry makes a delivery that is not running due now.
func (db *DB) DeliveryRetry(ctx context.Context, orgID, webhookID, id uuid.UUID, now time.Time) (*webhook.Delivery, error) {
	var d *webhook.Delivery
	err := db.transact(ctx, func(tx *txn) error {
		var status int
		err := tx.QueryRowContext(ctx, `SELECT d.status FROM `+deliveryTables+` WHERE d.id = ? AND d.webhook_id = ? AND e.organization_id = ?`,
			key(id), key(webhookID), key(orgID)).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("delivery")
		}
		if err != nil {
			return err
		}
		if status == statusRunning {
			return webhook.Errorf(webhook.EConflict, "the delivery is being attempted right now; retry it once that attempt ends")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 0, due_at = ?, updated_at = ? WHERE webhook_id = ? AND id = ?`,
			micros(now), micros(now), key(webhookID), key(id)); err != nil {
			return err
		}
		d, err = scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM `+deliveryTables+` WHERE d.webhook_id = ? AND d.id = ?`,
			key(webhookID), key(id)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DeliveryGet returns one delivery of one of the organization's webhooks.
func (db *DB) DeliveryGet(ctx context.Context, orgID, webhookID, id uuid.UUID) (*webhook.Delivery, error) {
	d, err := scanDelivery(db.read.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM `+deliveryTables+`
		WHERE d.id = ? AND d.webhook_id = ? AND e.organization_id = ?`, key(id), key(webhookID), key(orgID)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("delivery")
	}
	return d, translate(err)
}

// limit maps "no limit" (zero or less) to SQLite's -1.
func limit(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// deliveryListSQL selects a webhook's deliveries of one status (all of
// them for ""), from an index that holds those rows, never from the
// webhook's whole history to find a few:
//   - all, and succeeded ones: deliveries_webhook, in order;
//   - failed ones: deliveries_webhook_failed, in order (migration 0060);
//   - pending or running ones: the queue's index, deliveries_due, sorted:
//     the queue is what is left to send, and an index of each webhook's
//     unfinished rows would be written at every claim and outcome (a
//     fifth more CPU in a fan-out, docs/performance.md). DeliveryList
//     reads the webhook's newest deliveries first (queuedInHistorySQL),
//     and this only for what they do not hold.
//
// The status is written in the statement, so that a partial index's own
// term is in it, and the index is named: without statistics the planner
// picks deliveries_webhook for the webhook_id term, as for
// recoverPendingSQL (TestPlansUseKeys).
func deliveryListSQL(status webhook.DeliveryStatus) string {
	if status == "" {
		return deliverySelect(deliveryTables)
	}
	code := statusCode(status) // -1 for a status no row holds
	from, queued := deliveryTables, ""
	switch code {
	case statusPending, statusRunning:
		from, queued = deliveriesIndexedBy("deliveries_due"), ` AND d.status < 2`
	case statusFailed:
		from = deliveriesIndexedBy("deliveries_webhook_failed")
	}
	return deliverySelect(from) + queued + ` AND d.status = ` + strconv.Itoa(code)
}

// deliverySelect selects a webhook's deliveries from the tables from;
// its arguments are the webhook's and the organization's, which
// deliveryPage binds.
func deliverySelect(from string) string {
	return `SELECT ` + deliveryColumns + ` FROM ` + from + ` WHERE d.webhook_id = ? AND e.organization_id = ?`
}

// deliveriesIndexedBy is deliveryTables reading deliveries through index.
func deliveriesIndexedBy(index string) string {
	return `deliveries d INDEXED BY ` + index + ` JOIN events e ON e.seq = d.event_seq`
}

// queuedInHistorySQL selects a webhook's deliveries of a queued status
// (code: pending or running) from its history, deliveries_webhook, in
// order. DeliveryList bounds it below by windowEdgeSQL's id.
func queuedInHistorySQL(code int) string {
	return deliverySelect(deliveriesIndexedBy("deliveries_webhook")) + ` AND d.status = ` + strconv.Itoa(code)
}

// windowEdgeSQL finds the id of the queuedListWindow-th newest delivery
// of a webhook (before a cursor) in deliveries_webhook's keys alone.
const windowEdgeSQL = `SELECT id FROM deliveries INDEXED BY deliveries_webhook
	WHERE webhook_id = ? AND id < ? ORDER BY id DESC LIMIT 1 OFFSET ?`

// queuedListWindow is how many of a webhook's newest deliveries a list
// of its pending or running ones reads before it turns to the queue.
var queuedListWindow = 1000

// DeliveryList returns a webhook's deliveries newest first.
//
// Pending and running ones are where the webhook's newest deliveries are
// during a target's outage, when their list is opened and the queue is
// longest: a page read from the queue's index alone (deliveryListSQL)
// cost the whole queue, 1.2–2.7 s with a million queued. So the list
// reads the webhook's newest queuedListWindow deliveries first, and the
// queue only for the older ones when those do not fill the page: at
// most a window and the queue, whichever webhook is listed.
func (db *DB) DeliveryList(ctx context.Context, p webhook.DeliveryListParams) ([]*webhook.Delivery, error) {
	code := statusCode(p.Status)
	if p.Status == "" || (code != statusPending && code != statusRunning) {
		return db.deliveryPage(ctx, deliveryListSQL(p.Status), p, nil, limit(p.Limit))
	}
	before := key(p.Before)
	if p.Before == uuid.Nil {
		before = key(uuid.Max)
	}
	var edge []byte
	err := db.read.QueryRowContext(ctx, windowEdgeSQL, key(p.WebhookID), before, queuedListWindow-1).Scan(&edge)
	if errors.Is(err, sql.ErrNoRows) { // the history left is shorter than the window
		return db.deliveryPage(ctx, queuedInHistorySQL(code), p, nil, limit(p.Limit))
	}
	if err != nil {
		return nil, translate(err)
	}
	out, err := db.deliveryPage(ctx, queuedInHistorySQL(code)+` AND d.id >= ?`, p, edge, limit(p.Limit))
	if err != nil || (p.Limit > 0 && len(out) >= p.Limit) {
		return out, err
	}
	older, err := db.deliveryPage(ctx, deliveryListSQL(p.Status)+` AND d.id < ?`, p, edge, limit(p.Limit-len(out)))
	return append(out, older...), err
}

// deliveryPage runs a DeliveryList statement q, whose arguments are the
// webhook's and the organization's, for p's page: after p.Before, and
// bound (nil: none) for q's own last term, newest first, n at most (-1:
// all).
func (db *DB) deliveryPage(ctx context.Context, q string, p webhook.DeliveryListParams, bound []byte, n int) ([]*webhook.Delivery, error) {
	args := []any{key(p.WebhookID), key(p.OrganizationID)}
	if bound != nil {
		args = append(args, bound)
	}
	if p.Before != uuid.Nil {
		q += ` AND d.id < ?`
		args = append(args, key(p.Before))
	}
	q += ` ORDER BY d.id DESC LIMIT ?`
	args = append(args, n)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []*webhook.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, translate(err)
		}
		out = append(out, d)
	}
	return out, translate(rows.Err())
}

// DeliveryBacklog counts the deliveries due at now.
func (db *DB) DeliveryBacklog(ctx context.Context, now time.Time) (int, time.Time, error) {
	var (
		n      int
		oldest sql.NullInt64
	)
	err := db.read.QueryRowContext(ctx, `SELECT count(*), min(due_at) FROM deliveries
		WHERE status < 2 AND due_at <= ?`, micros(now)).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, translate(err)
	}
	return n, fromNullMicros(oldest), nil
}

// attemptListSQL reads a webhook's attempts newest first, by when they
// started, from attempts_webhook_created (see migration 0050); the id
// orders those started in the same microsecond.
const attemptListSQL = `SELECT e.organization_id, a.id, d.id, a.webhook_id, e.id, a.created_at, a.number, a.kind, a.target_url,
			a.status_code, a.response_body, a.duration_us, a.error, ` + eventColumns + `
		FROM attempts a JOIN deliveries d ON d.seq = a.delivery_seq JOIN events e ON e.seq = d.event_seq
		WHERE a.webhook_id = ? AND e.organization_id = ?`

const attemptListOrder = ` ORDER BY a.created_at DESC, a.id DESC LIMIT ?`

// AttemptList returns a webhook's attempts newest first, each with its Event.
func (db *DB) AttemptList(ctx context.Context, p webhook.AttemptListParams) ([]*webhook.Attempt, error) {
	q := attemptListSQL
	args := []any{key(p.WebhookID), key(p.OrganizationID)}
	if p.DeliveryID != uuid.Nil {
		q += ` AND a.delivery_seq = (SELECT seq FROM deliveries WHERE webhook_id = ? AND id = ?)`
		args = append(args, key(p.WebhookID), key(p.DeliveryID))
	}
	q += attemptListOrder
	args = append(args, limit(p.Limit))
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []*webhook.Attempt{}
	for rows.Next() {
		var (
			a        webhook.Attempt
			created  int64
			duration int64
			er       eventRow
		)
		dest := append([]any{&a.OrganizationID, &a.ID, &a.DeliveryID, &a.WebhookID, &a.EventID, &created, &a.Number,
			&a.Kind, &a.TargetURL, &a.StatusCode, &a.ResponseBody, &duration, &a.Error}, er.dest()...)
		if err := rows.Scan(dest...); err != nil {
			return nil, translate(err)
		}
		a.CreatedAt = fromMicros(created)
		a.Duration = time.Duration(duration) * time.Microsecond
		ev := er.event()
		a.Event = &ev
		out = append(out, &a)
	}
	return out, translate(rows.Err())
}
