package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

const eventCols = `organization_id, id, created_at, event_type, idempotency_key, project_name, environment_mode, payload, content_hash`

func scanEvent(row rowScanner) (*webhook.Event, error) {
	var (
		ev        webhook.Event
		createdAt time.Time
		key       *string
		payload   []byte // not json.RawMessage: pgx would unmarshal into it and drop surrounding space
	)
	if err := row.Scan(&ev.OrganizationID, &ev.ID, &createdAt, &ev.Type, &key, &ev.ProjectName, &ev.EnvironmentMode, &payload, &ev.ContentHash); err != nil {
		return nil, err
	}
	ev.CreatedAt = createdAt.UTC()
	if key != nil {
		ev.IdempotencyKey = *key
	}
	ev.Payload = payload
	return &ev, nil
}

// EventsCreate does its work in few round trips whatever the batch size:
// one batch of reads (the organizations' webhooks, the stored holders of
// the batch's idempotency keys), webhook.PlanIntake's decisions, then one
// batch of writes in which the deliveries are a single INSERT.
func (db *DB) EventsCreate(ctx context.Context, events []*webhook.Event, lease webhook.Lease) ([]webhook.EventReceipt, error) {
	var receipts []webhook.EventReceipt
	err := db.pipelined(ctx, func(tx *pipe) error {
		var err error
		receipts, err = eventsCreate(ctx, tx, events, lease, db.callerClock, webhookScan(db.keys, true))
		return err
	})
	if err != nil {
		return nil, err
	}
	// Deliveries not leased to the caller are for any node to claim.
	for _, r := range receipts {
		if !r.Replayed && r.Deliveries > len(r.Tasks) {
			db.notifier.notify()
			break
		}
	}
	return secrets.Receipts(ctx, db, receipts), nil
}

// eventsCreate plans and writes one intake in tx, reading the webhooks
// with scanWebhook (a webhookScan, which marks those it cannot open).
// Its writes commit tx unless an event it stores holds an idempotency
// key: that key's race with a concurrent intake may still need a read in
// tx (replayLost), and the caller commits after it.
func eventsCreate(ctx context.Context, tx *pipe, events []*webhook.Event, lease webhook.Lease, callerClock bool,
	scanWebhook func(rowScanner) (*webhook.Webhook, error)) ([]webhook.EventReceipt, error) {
	if len(events) == 0 {
		return []webhook.EventReceipt{}, nil
	}
	in, err := loadForIntake(ctx, tx, events, scanWebhook)
	if err != nil {
		return nil, err
	}
	in.Lease = lease
	plan, err := webhook.PlanIntake(in)
	if err != nil {
		return nil, err
	}
	// Only an event stored with a key can lose a race: without one, no
	// read can follow the writes.
	keyed := slices.ContainsFunc(plan.Store, func(pe webhook.PlannedEvent) bool { return pe.Key() != nil })
	lost, err := write(ctx, tx, plan, lease.Length(), callerClock, !keyed)
	if err != nil {
		return nil, err
	}
	if len(lost) > 0 {
		if err := replayLost(ctx, tx, plan, lost); err != nil {
			return nil, err
		}
	}
	return plan.Receipts, nil
}

// write stores the plan in one round trip, the transaction's last if
// last, and returns the events whose key a concurrent intake committed
// first. A leased delivery's lease lasts leaseFor after now().
// callerClock keeps the due times as the caller gave them (see
// DB.UseCallerClock) instead of moving them onto the database's clock.
func write(ctx context.Context, tx *pipe, plan *webhook.IntakePlan, leaseFor time.Duration, callerClock, last bool) (lost []int, err error) {
	b := &pgx.Batch{}
	if len(plan.Release) > 0 {
		orgs, ids := make([]uuid.UUID, len(plan.Release)), make([]uuid.UUID, len(plan.Release))
		for i, r := range plan.Release {
			orgs[i], ids[i] = r.OrganizationID, r.ID
		}
		b.Queue(`UPDATE events SET idempotency_key = NULL
			WHERE (organization_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))`, orgs, ids)
	}
	b.Queue(storeSQL, storeArgs(plan, leaseFor, callerClock)...)

	br := tx.sendBatch(ctx, b, last)
	defer br.Close()
	if len(plan.Release) > 0 {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	inserted := map[webhook.EventRef]bool{}
	for rows.Next() {
		var r webhook.EventRef
		if err := rows.Scan(&r.OrganizationID, &r.ID); err != nil {
			rows.Close()
			return nil, err
		}
		inserted[r] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, pe := range plan.Store {
		if !inserted[webhook.EventRef{OrganizationID: pe.Event.OrganizationID, ID: pe.Event.ID}] {
			lost = append(lost, pe.Index)
		}
	}
	return lost, br.Close()
}

// storeSQL stores an intake plan (storeArgs).
//
// One statement stores the events and the deliveries of those really
// stored, and returns the events stored. A concurrent intake may have
// committed an event's key since we looked (or be about to: the index
// makes us wait for it); then that event is not inserted, and replayed.
// Joining the deliveries to the events just inserted, rather than
// checking the events table, keeps the cost of a batch independent of
// the table's size (a check planned while the table was small scanned
// all of it). Every webhook read is still there: intakeLock keeps its
// delete waiting until this transaction ends.
const storeSQL = `WITH ev AS (
	INSERT INTO events (` + eventCols + `)
	SELECT org, id, at, typ, key, project, mode, payload::json, hash
	FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $17::bytea[])
		AS e(org, id, at, typ, key, project, mode, payload, hash)
	ON CONFLICT (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
	RETURNING organization_id, id
), d AS (
	INSERT INTO deliveries (organization_id, id, webhook_id, event_id, event_type, created_at, updated_at, due_at, status, lease)
	-- Due times run on the database's clock (see DeliveryClaim): a
	-- lease for as long after now() as the caller's lease lasts ($19
	-- microseconds), and a pending delivery due now at the latest
	-- (not later, if the caller's clock runs ahead).
	SELECT x.org, x.id, x.hook, x.event, x.typ, x.at, x.at,
		CASE WHEN $18 THEN x.due WHEN x.status = 'running' THEN now() + $19::bigint * interval '1 microsecond'
			ELSE least(x.due, now()) END, x.status,
		CASE WHEN x.status = 'running' THEN 1 ELSE 0 END
	FROM unnest($9::uuid[], $10::uuid[], $11::uuid[], $12::uuid[], $13::text[], $14::timestamptz[], $15::timestamptz[], $16::text[])
		AS x(org, id, hook, event, typ, at, due, status)
	JOIN ev ON ev.organization_id = x.org AND ev.id = x.event
)
SELECT organization_id, id FROM ev`

// storeArgs are storeSQL's arrays for plan; callerClock is $18, and the
// lease's length $19.
func storeArgs(plan *webhook.IntakePlan, leaseFor time.Duration, callerClock bool) []any {
	var e struct {
		org, id                     []uuid.UUID
		at                          []time.Time
		typ, project, mode, payload []string
		key                         []*string
		hash                        [][]byte
	}
	var d struct {
		org, id, hook, event []uuid.UUID
		typ, status          []string
		at, due              []time.Time
	}
	for _, pe := range plan.Store {
		ev := pe.Event
		e.org, e.id, e.at = append(e.org, ev.OrganizationID), append(e.id, ev.ID), append(e.at, ts(ev.CreatedAt))
		e.typ, e.project, e.mode = append(e.typ, string(ev.Type)), append(e.project, ev.ProjectName), append(e.mode, string(ev.EnvironmentMode))
		e.payload, e.key, e.hash = append(e.payload, string(ev.Payload)), append(e.key, pe.Key()), append(e.hash, ev.ContentHash)
		for _, x := range pe.Deliveries {
			d.org, d.id, d.hook, d.event = append(d.org, x.OrganizationID), append(d.id, x.ID), append(d.hook, x.WebhookID), append(d.event, x.EventID)
			d.typ, d.status = append(d.typ, string(x.EventType)), append(d.status, string(x.Status))
			d.at, d.due = append(d.at, ts(x.CreatedAt)), append(d.due, ts(x.DueAt))
		}
	}
	return []any{e.org, e.id, e.at, e.typ, e.key, e.project, e.mode, e.payload,
		d.org, d.id, d.hook, d.event, d.typ, d.at, d.due, d.status, e.hash, callerClock, leaseFor.Microseconds()}
}

// replayLost answers the events that lost a key race with the receipt of
// the event that won it, read now that it is committed, by the same rule
// as any replay.
func replayLost(ctx context.Context, tx *pipe, plan *webhook.IntakePlan, lost []int) error {
	lostEvents := make([]*webhook.Event, 0, len(lost))
	for _, pe := range plan.Store {
		if slices.Contains(lost, pe.Index) {
			lostEvents = append(lostEvents, pe.Event)
		}
	}
	held, err := loadKeyHolders(ctx, tx, lostEvents)
	if err != nil {
		return err
	}
	for i, ev := range lostEvents {
		h, ok := held[webhook.KeyRef{OrganizationID: ev.OrganizationID, Key: ev.IdempotencyKey}]
		if !ok {
			// The winner's key was released again before we could read
			// it: rare enough that the caller retrying is the answer.
			return webhook.Errorf(webhook.EConflict, "a concurrent request used the same Idempotency-Key; try again")
		}
		replay, err := webhook.PlanIntake(webhook.IntakeInput{Events: []*webhook.Event{ev},
			Holders: map[webhook.KeyRef]webhook.KeyHolder{{OrganizationID: ev.OrganizationID, Key: ev.IdempotencyKey}: h}})
		if err != nil {
			return err
		}
		if !replay.Receipts[0].Replayed {
			return webhook.Errorf(webhook.EConflict, "a concurrent request used the same Idempotency-Key; try again")
		}
		plan.Answer(lost[i], replay.Receipts[0])
	}
	return nil
}

// intakeLock is the first key of the pg_advisory_xact_lock(int, int)
// that stands for organizations' webhooks in the queue; the second is a
// hash of the organization id, masked (intakeLockKey) so that an
// intake of many organizations takes 64 locks at most (the server's lock
// table is shared and bounded). Intake holds it shared from before it
// reads the webhooks until it commits their deliveries, WebhookDelete
// exclusive before it deletes the webhook row, so the intakes that read
// the webhook commit before the delete does, and the purge after it finds
// their deliveries: what the deliveries' foreign key to webhooks did
// (migration 0040) without locking a webhook's row for every delivery
// made to it.
const intakeLock = 0x686b6469 // "hkdi"

// intakeLockKey is the SQL of intakeLock's second key for the
// organization id org (an expression of type uuid), the one expression
// both intake and WebhookDelete lock by: the lock is only as good as
// their agreement.
func intakeLockKey(org string) string {
	const intakeLockMask = "63"
	return "(hashtext((" + org + ")::text) & " + intakeLockMask + ")"
}

// loadForIntake takes the organizations' intakeLock and reads, in the
// same round trip, the webhooks of every organization in the batch (once
// each, oldest first, the order their deliveries are created in) and the
// stored events holding the batch's idempotency keys.
func loadForIntake(ctx context.Context, tx *pipe, events []*webhook.Event, scanWebhook func(rowScanner) (*webhook.Webhook, error)) (webhook.IntakeInput, error) {
	in := webhook.IntakeInput{Events: events, Webhooks: map[uuid.UUID][]*webhook.Webhook{}, Holders: map[webhook.KeyRef]webhook.KeyHolder{}}
	var orgs []uuid.UUID
	for _, ev := range events {
		if _, seen := in.Webhooks[ev.OrganizationID]; !seen {
			in.Webhooks[ev.OrganizationID] = nil
			orgs = append(orgs, ev.OrganizationID)
		}
	}
	b := &pgx.Batch{}
	// Before the webhooks are read: a delete that has the lock commits
	// first, and its webhook is not read; one that asks for it waits
	// for this transaction's deliveries, which its purge then deletes.
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1, k)
		FROM (SELECT DISTINCT `+intakeLockKey("o")+` AS k FROM unnest($2::uuid[]) o ORDER BY 1) l`, intakeLock, orgs)
	b.Queue(`SELECT `+webhookCols+` FROM webhooks WHERE organization_id = ANY($1) ORDER BY created_at, id`, orgs)
	keyOrgs, keys := keysOf(events)
	if len(keys) > 0 {
		queueKeyHolders(b, keyOrgs, keys)
	}
	br := tx.send(ctx, b)
	defer br.Close()

	if _, err := br.Exec(); err != nil {
		return in, err
	}
	rows, err := br.Query()
	if err != nil {
		return in, err
	}
	list, err := collect(rows, scanWebhook)
	if err != nil {
		return in, err
	}
	for _, w := range list {
		in.Webhooks[w.OrganizationID] = append(in.Webhooks[w.OrganizationID], w)
	}
	if len(keys) > 0 {
		if in.Holders, err = readKeyHolders(br); err != nil {
			return in, err
		}
	}
	return in, br.Close()
}

// loadKeyHolders reads the stored events holding the events' keys.
func loadKeyHolders(ctx context.Context, tx *pipe, events []*webhook.Event) (map[webhook.KeyRef]webhook.KeyHolder, error) {
	b := &pgx.Batch{}
	orgs, keys := keysOf(events)
	queueKeyHolders(b, orgs, keys)
	br := tx.send(ctx, b)
	defer br.Close()
	held, err := readKeyHolders(br)
	if err != nil {
		return nil, err
	}
	return held, br.Close()
}

func keysOf(events []*webhook.Event) (orgs []uuid.UUID, keys []string) {
	for _, ev := range events {
		if ev.IdempotencyKey != "" {
			orgs = append(orgs, ev.OrganizationID)
			keys = append(keys, ev.IdempotencyKey)
		}
	}
	return orgs, keys
}

// keyHoldersSQL reads the stored events holding the keys ($1, $2: an
// organization and a key each), with how many deliveries each has. It
// goes from the keys to the unique index, one probe per key: written as
// "(organization_id, idempotency_key) IN (unnest …)", it was planned
// while the events table was small and not yet analyzed (a new
// database's first minutes) as a hash join over a scan of all events,
// and each connection kept that plan for its prepared statement, so
// every keyed intake read the whole table, PostgreSQL's CPU tripled and
// a burst of keyed events ran a third slower than one without keys.
// OFFSET 0 keeps the planner from turning the lateral probe back into
// that join. A key given twice finds its holder twice, to the same
// effect.
const keyHoldersSQL = `SELECT e.organization_id, e.idempotency_key, e.id, e.created_at, e.content_hash,
		(SELECT count(*) FROM deliveries d WHERE d.organization_id = e.organization_id AND d.event_id = e.id)
	FROM unnest($1::uuid[], $2::text[]) k(org, key)
	CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.organization_id = k.org AND e.idempotency_key = k.key OFFSET 0) e`

func queueKeyHolders(b *pgx.Batch, orgs []uuid.UUID, keys []string) {
	b.Queue(keyHoldersSQL, orgs, keys)
}

func readKeyHolders(br pgx.BatchResults) (map[webhook.KeyRef]webhook.KeyHolder, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	held := map[webhook.KeyRef]webhook.KeyHolder{}
	for rows.Next() {
		var (
			k webhook.KeyRef
			h webhook.KeyHolder
		)
		if err := rows.Scan(&k.OrganizationID, &k.Key, &h.EventID, &h.CreatedAt, &h.ContentHash, &h.Deliveries); err != nil {
			return nil, err
		}
		h.CreatedAt = h.CreatedAt.UTC()
		held[k] = h
	}
	return held, rows.Err()
}

// DeleteBefore deletes whole events, oldest first, retentionBatch at a
// time, each batch its own transaction; the triggers of migration 0040
// delete their deliveries and attempts. One statement for all of them was
// one transaction as large as the history: the first pass after retention
// is turned on over months of events held its locks and vacuum's horizon
// for minutes and, cut short (a deadlock, a restart), kept nothing of its
// work. Each batch goes on after the last event the one before it picked,
// so events kept for their unfinished deliveries are read once per run,
// not once per batch.
func (db *DB) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	total := 0
	var after retentionKey // the zero key sorts before every event
	for {
		picked, gone, last, err := db.deleteBatch(ctx, ts(t), after)
		if err != nil {
			return total, err
		}
		total += gone
		if picked < db.retentionBatch {
			return total, nil
		}
		after = last
	}
}

// allFinished says that no delivery of the event e is pending or running.
const allFinished = `NOT EXISTS (SELECT 1 FROM deliveries d
	WHERE d.organization_id = e.organization_id AND d.event_id = e.id AND d.status IN ('pending', 'running'))`

// retentionKey is an event's place in retention's walk.
type retentionKey struct {
	at      time.Time
	org, id uuid.UUID
}

// defaultRetentionBatch events, with their deliveries and attempts, are
// one transaction of DeleteBefore: what a purge batch deletes
// (historyBatch) when each event has one delivery, a hundred times as
// much for events that fanned out to a hundred webhooks.
const defaultRetentionBatch = 1000

// deleteBatch picks up to retentionBatch events created before t, after
// the key after in the walk, whose deliveries were all finished in its
// first statement's snapshot, and locks them; then it deletes those whose
// deliveries are still all finished. It returns how many it picked, how
// many it deleted and the last one picked.
//
// Two statements, because a finished delivery can be made pending again
// (DeliveryRetry, DeliveryRecover) after the first one's snapshot: the
// second reads the deliveries anew, once the events are locked. A retry
// or a recovery takes its event's row FOR KEY SHARE, which the first
// statement's FOR UPDATE waits for and then keeps out until this
// transaction ends: the second statement sees every retry that got in
// before, and one that comes after finds its delivery gone with the
// event (TestRetryWaitsForRetention), or goes ahead if the event was kept
// for another delivery still pending. With one statement, the trigger
// deleting the events' deliveries, which reads them as they are now,
// took a delivery retried after the statement's snapshot, a promise,
// with its event (TestDeleteBeforeKeepsDeliveryRetriedMeanwhile). The
// first statement waits likewise for an event another transaction holds
// (an intake releasing its idempotency key:
// TestDeleteBeforeTakesAttemptsMadeMeanwhile), and one deleted meanwhile
// (by a pass on another node) makes room for the next rather than
// shortening the batch.
func (db *DB) deleteBatch(ctx context.Context, t time.Time, after retentionKey) (picked, gone int, last retentionKey, err error) {
	err = db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT organization_id, id, created_at FROM events e
			WHERE e.created_at < $1 AND e.created_at >= $3 AND (e.created_at, e.organization_id, e.id) > ($3, $4, $5)
				AND `+allFinished+`
			ORDER BY e.created_at, e.organization_id, e.id LIMIT $2
			FOR UPDATE OF e`, t, db.retentionBatch, after.at, after.org, after.id)
		if err != nil {
			return err
		}
		var orgs, ids []uuid.UUID
		for rows.Next() {
			if err := rows.Scan(&last.org, &last.id, &last.at); err != nil {
				rows.Close()
				return err
			}
			orgs, ids = append(orgs, last.org), append(ids, last.id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if picked = len(ids); picked == 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `DELETE FROM events e USING unnest($1::uuid[], $2::uuid[]) AS k(org, id)
			WHERE e.organization_id = k.org AND e.id = k.id
				AND `+allFinished, orgs, ids)
		gone = int(tag.RowsAffected())
		return err
	})
	return picked, gone, last, err
}
