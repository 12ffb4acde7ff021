package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hookd/hookd/internal/secrets"
	"github.com/hookd/hookd/internal/webhook"
)

type eventRow struct {
	e       webhook.Event
	created int64
	key     sql.NullString
}

func (r *eventRow) dest() []any {
	return []any{&r.e.OrganizationID, &r.e.ID, &r.created, &r.e.Type, &r.key, &r.e.ProjectName,
		&r.e.EnvironmentMode, &r.e.Payload, &r.e.ContentHash}
}

func (r *eventRow) event() webhook.Event {
	e := r.e
	e.CreatedAt = fromMicros(r.created)
	e.IdempotencyKey = r.key.String
	return e
}

// EventsCreate loads what webhook.PlanIntake decides from (the batch's
// organizations' webhooks and the holders of its keys) and writes the
// plan, all in one transaction. The one writer makes the plan exact: no
// other intake can commit between the reads and the writes.
func (db *DB) EventsCreate(ctx context.Context, events []*webhook.Event, lease webhook.Lease) ([]webhook.EventReceipt, error) {
	var receipts []webhook.EventReceipt
	// A batch a client can have refused on purpose (an Idempotency-Key
	// reused with another body, a test event for a missing webhook) keeps
	// its savepoint: its refusal must not undo and redo a whole group.
	rerun := true
	for _, ev := range events {
		if ev.IdempotencyKey != "" || ev.OnlyWebhookID != uuid.Nil {
			rerun = false
		}
	}
	err := db.w.do(ctx, true, rerun, func(tx *txn) error {
		in, err := loadIntake(ctx, tx, events, lease)
		if err != nil {
			return err
		}
		plan, err := webhook.PlanIntake(in)
		if err != nil {
			return err
		}
		if err := writeIntake(ctx, tx, plan); err != nil {
			return err
		}
		receipts = plan.Receipts
		return nil
	})
	if err != nil {
		return nil, err
	}
	return secrets.Receipts(ctx, db, receipts), nil
}

// loadIntake reads each organization's webhooks once, however many of its
// events the batch has (from the writer's cache: see webhookCache), and
// the stored holders of its events' keys, one statement per organization.
// A webhook whose secrets cannot be opened still matches (the event is
// promised to it), marked Unreadable, for EventsCreate to keep its
// deliveries from the caller.
func loadIntake(ctx context.Context, tx *txn, events []*webhook.Event, lease webhook.Lease) (webhook.IntakeInput, error) {
	in := webhook.IntakeInput{Events: events, Lease: lease, Webhooks: map[uuid.UUID][]*webhook.Webhook{},
		Holders: map[webhook.KeyRef]webhook.KeyHolder{}}
	var keys map[uuid.UUID][]string // by organization; a key twice finds its holder once
	for _, ev := range events {
		if _, ok := in.Webhooks[ev.OrganizationID]; !ok {
			hooks, err := tx.orgWebhooks(ctx, ev.OrganizationID)
			if err != nil {
				return in, err
			}
			in.Webhooks[ev.OrganizationID] = hooks
		}
		if ev.IdempotencyKey == "" {
			continue
		}
		if keys == nil {
			keys = map[uuid.UUID][]string{}
		}
		keys[ev.OrganizationID] = append(keys[ev.OrganizationID], ev.IdempotencyKey)
	}
	for org, list := range keys {
		if err := loadHolders(ctx, tx, org, list, in.Holders); err != nil {
			return in, err
		}
	}
	return in, nil
}

// keyHoldersSQL finds the events holding any of an organization's keys
// (?2, a JSON array), with how many deliveries each has: one statement
// for a batch's keys, where a statement per key cost a keyed event in a
// burst about a twentieth of its instructions. Keys are valid UTF-8
// without NUL (the API refuses others, as PostgreSQL's text would), which
// JSON carries exactly. keyHolderSQL finds one key's (?2): a batch of
// one, as most are at low rates, would pay about half as much again for
// json_each's table.
const (
	keyHoldersFrom = `SELECT e.idempotency_key, e.id, e.created_at, e.content_hash,
		(SELECT count(*) FROM deliveries d WHERE d.event_seq = e.seq)
	FROM events e WHERE e.organization_id = ?1 AND e.idempotency_key `
	keyHoldersSQL = keyHoldersFrom + `IN (SELECT value FROM json_each(?2))`
	keyHolderSQL  = keyHoldersFrom + `= ?2`
)

// loadHolders adds the stored holders of org's keys to holders.
func loadHolders(ctx context.Context, tx *txn, org uuid.UUID, keys []string, holders map[webhook.KeyRef]webhook.KeyHolder) error {
	query, arg := keyHolderSQL, keys[0]
	if len(keys) > 1 {
		list, err := json.Marshal(keys)
		if err != nil {
			return err
		}
		query, arg = keyHoldersSQL, string(list)
	}
	rows, err := tx.QueryContext(ctx, query, key(org), arg)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k       = webhook.KeyRef{OrganizationID: org}
			h       webhook.KeyHolder
			created int64
		)
		if err := rows.Scan(&k.Key, &h.EventID, &created, &h.ContentHash, &h.Deliveries); err != nil {
			return err
		}
		h.CreatedAt = fromMicros(created)
		holders[k] = h
	}
	return rows.Err()
}

// Events and deliveries are written with multi-row INSERTs of a few fixed
// sizes, so a batch of 32 events takes a few statements rather than 64,
// an event matching 100 webhooks 4 rather than 100, and the statement
// cache holds one statement per size.
var (
	deliveryChunks  = []int{64, 16, 4, 1}
	deliveryInserts = map[int]string{}
	eventInserts    = map[int]string{}
)

const (
	deliveryParams = 8
	eventParams    = 10
)

func init() {
	for _, n := range deliveryChunks {
		deliveryInserts[n] = `INSERT INTO deliveries (id, webhook_id, event_seq, created_at, updated_at,
			status, due_at, lease, attempts, last_status_code, last_error) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ''), `, n), ", ")
		eventInserts[n] = `INSERT INTO events (seq, id, organization_id, created_at, event_type, idempotency_key, project_name,
			environment_mode, content_hash, payload) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), ", ")
	}
}

// writeIntake writes a plan: the expired keys let go first, so the unique
// index accepts their new holders. Each event's seq is given here, after
// the largest stored (what SQLite would pick), so its deliveries can name
// it in the same statements; the one writer makes it safe.
func writeIntake(ctx context.Context, tx *txn, plan *webhook.IntakePlan) error {
	for _, ref := range plan.Release {
		if _, err := tx.ExecContext(ctx, `UPDATE events SET idempotency_key = NULL WHERE id = ? AND organization_id = ?`,
			key(ref.ID), key(ref.OrganizationID)); err != nil {
			return err
		}
	}
	if len(plan.Store) == 0 {
		return nil
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&seq); err != nil {
		return err
	}
	events := make([]any, 0, eventParams*len(plan.Store))
	var deliveries []any
	ids := make(keyBuf, 0, 4*16*len(plan.Store)) // two an event, two a delivery
	for _, pe := range plan.Store {
		ev := pe.Event
		seq++
		// Named string types as strings: database/sql would convert each
		// one again, an allocation apiece.
		events = append(events, seq, ids.key(ev.ID), ids.key(ev.OrganizationID), micros(ev.CreatedAt), string(ev.Type), pe.Key(),
			ev.ProjectName, string(ev.EnvironmentMode), ev.ContentHash, []byte(ev.Payload))
		for _, d := range pe.Deliveries {
			// The delivery's organization is its event's: intake made it so.
			deliveries = append(deliveries, ids.key(d.ID), ids.key(d.WebhookID), seq, micros(d.CreatedAt),
				micros(d.UpdatedAt), statusCode(d.Status), micros(d.DueAt), d.Lease)
		}
	}
	if err := insertChunks(ctx, tx, eventInserts, eventParams, events); err != nil {
		if webhook.ErrorCode(translate(err)) == webhook.EConflict && len(plan.Store) == 1 {
			return webhook.Errorf(webhook.EConflict, "event %s already exists", plan.Store[0].Event.ID)
		}
		// With several events, the caller's retry one by one says which.
		return err
	}
	return insertChunks(ctx, tx, deliveryInserts, deliveryParams, deliveries)
}

func insertChunks(ctx context.Context, tx *txn, statements map[int]string, params int, rows []any) error {
	for _, n := range deliveryChunks {
		for len(rows) >= n*params {
			if _, err := tx.ExecContext(ctx, statements[n], rows[:n*params]...); err != nil {
				return err
			}
			rows = rows[n*params:]
		}
	}
	return nil
}

// DeleteBefore removes old events whose deliveries are all finished, with
// their deliveries and attempts, in batches of events (deleteInBatches). The
// children go first, in the transaction of their event: no foreign key
// does it (see migration 0030).
//
// No index on created_at is kept for retention alone (migration 0035).
// Events are stored in seq order, which is the order of their creation
// unless the clock stepped back, so the walk goes by seq: from the
// first event to the first young one (created at or after t), found
// once, off the writer, and each batch goes on from where the last
// stopped, so a run reads each event at most twice however many batches
// it takes. An old event stored after a young one waits until that one is
// old too: retention removes nothing early, only sometimes later. An
// event stamped after now (the clock ran ahead, then was put right) does
// not end the walk, or it would hold back everything stored after it for
// as long as the clock was ahead; it goes itself once it is old.
func (db *DB) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	var end int64
	if err := db.read.QueryRowContext(ctx, retentionEndSQL, micros(t), micros(time.Now())).Scan(&end); err != nil {
		return 0, translate(err)
	}
	after := int64(0)
	return db.deleteInBatches(ctx, func(tx *txn, limit int) (int, error) {
		seqs, err := selectSeqs(ctx, tx, retentionSQL, after, end, micros(t), limit)
		if err != nil || len(seqs) == 0 {
			return 0, err
		}
		// If this batch rolls back after all, its events wait for the next run.
		after = seqs[len(seqs)-1]
		list := seqList(seqs)
		for _, q := range []string{
			`DELETE FROM attempts WHERE delivery_seq IN (
				SELECT d.seq FROM deliveries d WHERE d.event_seq IN (SELECT value FROM json_each(?)))`,
			`DELETE FROM deliveries WHERE event_seq IN (SELECT value FROM json_each(?))`,
			`DELETE FROM events WHERE seq IN (SELECT value FROM json_each(?))`,
		} {
			if _, err := tx.ExecContext(ctx, q, list); err != nil {
				return 0, err
			}
		}
		return len(seqs), nil
	})
}

// retentionEndSQL is where DeleteBefore's walk ends: the seq of the first
// event created in [?1, ?2] (at or after the cutoff, and not after now),
// or past every seq.
//
// retentionSQL is one batch of the walk: up to ?4 events with a seq
// between ?1 and ?2 (exclusive), created before ?3, whose deliveries are
// all finished, in seq order.
const (
	retentionEndSQL = `SELECT coalesce(
		(SELECT seq FROM events WHERE created_at >= ?1 AND created_at <= ?2 ORDER BY seq LIMIT 1),
		9223372036854775807)`
	retentionSQL = `SELECT e.seq FROM events e
		WHERE e.seq > ?1 AND e.seq < ?2 AND e.created_at < ?3 AND NOT EXISTS (
			SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status < 2)
		ORDER BY e.seq LIMIT ?4`
)

// selectSeqs runs a query of seqs.
func selectSeqs(ctx context.Context, tx *txn, query string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	return seqs, rows.Err()
}
