package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/webhook"
)

const (
	eventColumns = `organization_id, id, created_at, event_type, idempotency_key, project_name,
		environment_mode, payload, content_hash`
	deliveryColumns = `organization_id, id, webhook_id, event_id, created_at, updated_at, status, due_at,
		attempts, last_status_code, last_error, event_type, lease`
	attemptColumns = `organization_id, id, delivery_id, webhook_id, event_id, created_at, number, kind,
		target_url, status_code, response_body, duration_us, error`
)

// prefixed qualifies each column of a column list with a table alias.
func prefixed(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

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

type deliveryRow struct {
	d                     webhook.Delivery
	created, updated, due int64
}

func (r *deliveryRow) dest() []any {
	return []any{&r.d.OrganizationID, &r.d.ID, &r.d.WebhookID, &r.d.EventID, &r.created, &r.updated, &r.d.Status,
		&r.due, &r.d.Attempts, &r.d.LastStatusCode, &r.d.LastError, &r.d.EventType, &r.d.Lease}
}

func (r *deliveryRow) delivery() *webhook.Delivery {
	d := r.d
	d.CreatedAt, d.UpdatedAt, d.DueAt = fromMicros(r.created), fromMicros(r.updated), fromMicros(r.due)
	return &d
}

func scanDelivery(row scanner) (*webhook.Delivery, error) {
	var r deliveryRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.delivery(), nil
}

// EventsCreate loads what webhook.PlanIntake decides from (the batch's
// organizations' webhooks and the holders of its keys) and writes the
// plan, all in one transaction. The one writer makes the plan exact: no
// other intake can commit between the reads and the writes.
func (db *DB) EventsCreate(ctx context.Context, events []*webhook.Event, lease webhook.Lease) ([]webhook.EventReceipt, error) {
	var receipts []webhook.EventReceipt
	err := db.transact(ctx, func(tx *txn) error {
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
	return receipts, nil
}

// loadIntake reads each organization's webhooks once, however many of its
// events the batch has, and the stored holder of each key.
func loadIntake(ctx context.Context, tx *txn, events []*webhook.Event, lease webhook.Lease) (webhook.IntakeInput, error) {
	in := webhook.IntakeInput{Events: events, Lease: lease, Webhooks: map[uuid.UUID][]*webhook.Webhook{},
		Holders: map[webhook.KeyRef]webhook.KeyHolder{}}
	for _, ev := range events {
		if _, ok := in.Webhooks[ev.OrganizationID]; !ok {
			rows, err := tx.QueryContext(ctx,
				`SELECT `+webhookColumns+` FROM webhooks WHERE organization_id = ? ORDER BY created_at, id`, ev.OrganizationID)
			if err != nil {
				return in, err
			}
			if in.Webhooks[ev.OrganizationID], err = collectWebhooks(rows); err != nil {
				return in, err
			}
		}
		k := webhook.KeyRef{OrganizationID: ev.OrganizationID, Key: ev.IdempotencyKey}
		if _, ok := in.Holders[k]; ok || k.Key == "" {
			continue
		}
		var (
			h       webhook.KeyHolder
			created int64
		)
		err := tx.QueryRowContext(ctx, `SELECT e.id, e.created_at, e.content_hash,
				(SELECT count(*) FROM deliveries d WHERE d.organization_id = e.organization_id AND d.event_id = e.id)
			FROM events e WHERE e.organization_id = ? AND e.idempotency_key = ?`, k.OrganizationID, k.Key).
			Scan(&h.EventID, &created, &h.ContentHash, &h.Deliveries)
		switch {
		case err == nil:
			h.CreatedAt = fromMicros(created)
			in.Holders[k] = h
		case !errors.Is(err, sql.ErrNoRows):
			return in, err
		}
	}
	return in, nil
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
	deliveryParams = 10
	eventParams    = 9
)

func init() {
	for _, n := range deliveryChunks {
		deliveryInserts[n] = `INSERT INTO deliveries (` + deliveryColumns + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, 0, 0, '', ?, ?), `, n), ", ")
		eventInserts[n] = `INSERT INTO events (` + eventColumns + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), ", ")
	}
}

// writeIntake writes a plan: the expired keys let go first, so the unique
// index accepts their new holders.
func writeIntake(ctx context.Context, tx *txn, plan *webhook.IntakePlan) error {
	for _, ref := range plan.Release {
		if _, err := tx.ExecContext(ctx, `UPDATE events SET idempotency_key = NULL WHERE organization_id = ? AND id = ?`,
			ref.OrganizationID, ref.ID); err != nil {
			return err
		}
	}
	events := make([]any, 0, eventParams*len(plan.Store))
	var deliveries []any
	for _, pe := range plan.Store {
		ev := pe.Event
		events = append(events, ev.OrganizationID, ev.ID, micros(ev.CreatedAt), ev.Type, pe.Key(),
			ev.ProjectName, ev.EnvironmentMode, []byte(ev.Payload), ev.ContentHash)
		for _, d := range pe.Deliveries {
			deliveries = append(deliveries, d.OrganizationID, d.ID, d.WebhookID, d.EventID, micros(d.CreatedAt),
				micros(d.UpdatedAt), d.Status, micros(d.DueAt), d.EventType, d.Lease)
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

// DeliveryClaim leases due deliveries. The UPDATE picks and leases the
// rows in one statement; the write transaction around it also makes the
// events and webhooks read next consistent with the lease.
func (db *DB) DeliveryClaim(ctx context.Context, p webhook.ClaimParams) ([]*webhook.Task, error) {
	tasks := []*webhook.Task{}
	if p.Limit <= 0 {
		return tasks, nil
	}
	// The writer only scans: decoding the rows into Tasks (the webhooks'
	// JSON lists, the times) happens after, outside the transaction.
	type claimed struct {
		dr deliveryRow
		er eventRow
		wr webhookRow
	}
	var rowsOut []*claimed
	err := db.transactLazy(ctx, func(tx *txn) error {
		rowsOut = rowsOut[:0]
		args := []any{micros(p.LeaseUntil), micros(p.Now), micros(p.Now)}
		exclude := ""
		if len(p.ExcludeWebhooks) > 0 {
			exclude = ` AND webhook_id NOT IN (` + placeholders(len(p.ExcludeWebhooks)) + `)`
			for _, id := range p.ExcludeWebhooks {
				args = append(args, id)
			}
		}
		args = append(args, p.Limit)
		rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET status = 'running', due_at = ?, updated_at = ?, lease = lease + 1
			WHERE (organization_id, id) IN (
				SELECT organization_id, id FROM deliveries
				WHERE status IN ('pending', 'running') AND due_at <= ?`+exclude+`
				ORDER BY due_at LIMIT ?)
			RETURNING organization_id, id`, args...)
		if err != nil {
			return err
		}
		var refs []any
		for rows.Next() {
			var org, id uuid.UUID
			if err := rows.Scan(&org, &id); err != nil {
				rows.Close()
				return err
			}
			refs = append(refs, org, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(refs) == 0 {
			return nil
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?), ", len(refs)/2), ", ")
		rows, err = tx.QueryContext(ctx, `SELECT `+prefixed("d", deliveryColumns)+`, `+prefixed("e", eventColumns)+`, `+prefixed("w", webhookColumns)+`
			FROM deliveries d
			JOIN events e ON e.organization_id = d.organization_id AND e.id = d.event_id
			JOIN webhooks w ON w.organization_id = d.organization_id AND w.id = d.webhook_id
			WHERE (d.organization_id, d.id) IN (VALUES `+values+`)
			ORDER BY d.id`, refs...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			c := &claimed{}
			dest := append(append(c.dr.dest(), c.er.dest()...), c.wr.dest()...)
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			rowsOut = append(rowsOut, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	for _, c := range rowsOut {
		w, err := c.wr.webhook()
		if err != nil {
			return nil, translate(err)
		}
		tasks = append(tasks, &webhook.Task{Delivery: *c.dr.delivery(), Event: c.er.event(), Webhook: *w})
	}
	return tasks, nil
}

// DeliveryComplete records attempts and applies their outcomes.
func (db *DB) DeliveryComplete(ctx context.Context, outcomes []webhook.Outcome) ([]webhook.DeliveryRef, error) {
	if err := webhook.ValidateOutcomes(outcomes); err != nil {
		return nil, err
	}
	// Attempt ids are made before the transaction: the writer does only SQL.
	ids := make([]uuid.UUID, len(outcomes))
	for i, o := range outcomes {
		if ids[i] = o.Attempt.ID; ids[i] == uuid.Nil {
			var err error
			if ids[i], err = uuid.NewV7(); err != nil {
				return nil, err
			}
		}
	}
	var stale []webhook.DeliveryRef
	err := db.transactLazy(ctx, func(tx *txn) error {
		stale = stale[:0]
		rest, restIDs := outcomes, ids
		for _, n := range deliveryChunks {
			for len(rest) >= n {
				s, err := complete(ctx, tx, rest[:n], restIDs[:n])
				if err != nil {
					return err
				}
				stale = append(stale, s...)
				rest, restIDs = rest[n:], restIDs[n:]
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stale, nil
}

// Outcomes are written in chunks (of deliveryChunks sizes, so the
// statement cache holds a few statements): one UPDATE of their
// deliveries and one INSERT of their attempts per chunk, and per webhook
// they change, one UPDATE (and a disable).
var (
	completeUpdates = map[int]string{}
	attemptInserts  = map[int]string{}
)

const attemptParams = 13

func init() {
	for _, n := range deliveryChunks {
		// attempts counts the attempts recorded, one more per outcome,
		// not the attempt's Number: see completeSQL in the PostgreSQL
		// backend, which follows the same rule. updated_at is when the
		// attempt finished (CreatedAt plus Duration).
		completeUpdates[n] = `WITH v(org, id, status, due, code, err, updated, lease) AS (VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?), `, n), ", ") + `)
			UPDATE deliveries SET status = v.status, due_at = coalesce(v.due, deliveries.due_at), attempts = deliveries.attempts + 1,
				last_status_code = v.code, last_error = v.err, updated_at = v.updated
			FROM v WHERE deliveries.organization_id = v.org AND deliveries.id = v.id
				AND deliveries.status = 'running' AND deliveries.lease = v.lease
			RETURNING deliveries.id, deliveries.webhook_id, deliveries.event_id`
		attemptInserts[n] = `INSERT INTO attempts (` + attemptColumns + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), ", ")
	}
}

// webhookChange is what a chunk's outcomes do to one webhook, as if
// applied one by one: a success clears failing_since, a failure sets it
// if unset, and the first DisableReason disables the webhook (if it is
// still enabled; later reasons find it disabled).
type webhookChange struct {
	org       uuid.UUID
	succeeded bool      // a success came: the stored failing_since goes
	failing   time.Time // the first failure after the last success
	disable   *webhook.Outcome
}

// complete applies one chunk of outcomes, whose attempts get ids, and
// returns those whose lease was gone (see webhook.Store.DeliveryComplete).
func complete(ctx context.Context, tx *txn, outcomes []webhook.Outcome, ids []uuid.UUID) ([]webhook.DeliveryRef, error) {
	args := make([]any, 0, attemptParams*len(outcomes))
	for _, o := range outcomes {
		a := o.Attempt
		var due any // NULL keeps the due time: only a pending delivery has a next one
		if o.Status == webhook.DeliveryPending {
			due = micros(o.NextAttemptAt)
		}
		args = append(args, a.OrganizationID, a.DeliveryID, o.Status, due, a.StatusCode, a.Error,
			micros(a.CreatedAt.Add(a.Duration)), o.Lease)
	}
	// The webhook and event ids come from the stored delivery, not the
	// caller, so an outcome can only ever touch its own delivery's rows.
	type stored struct{ webhookID, eventID uuid.UUID }
	found := make(map[uuid.UUID]stored, len(outcomes))
	rows, err := tx.QueryContext(ctx, completeUpdates[len(outcomes)], args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id uuid.UUID
		var st stored
		if err := rows.Scan(&id, &st.webhookID, &st.eventID); err != nil {
			rows.Close()
			return nil, err
		}
		found[id] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var stale []webhook.DeliveryRef

	args = args[:0]
	changes := map[uuid.UUID]*webhookChange{}
	var order []uuid.UUID // webhooks in the order of their first outcome
	for i, o := range outcomes {
		a := o.Attempt
		st, ok := found[a.DeliveryID]
		if !ok {
			// Its lease was taken over, or the webhook was deleted while
			// the attempt ran, taking the delivery with it: there is
			// nothing left to record against.
			stale = append(stale, webhook.DeliveryRef{OrganizationID: a.OrganizationID, ID: a.DeliveryID, Lease: o.Lease})
			continue
		}
		a.ID = ids[i]
		args = append(args, a.OrganizationID, a.ID, a.DeliveryID, st.webhookID, st.eventID, micros(a.CreatedAt), a.Number, a.Kind,
			a.TargetURL, a.StatusCode, a.ResponseBody, a.Duration.Microseconds(), a.Error)
		c := changes[st.webhookID]
		if c == nil {
			c = &webhookChange{org: a.OrganizationID}
			changes[st.webhookID] = c
			order = append(order, st.webhookID)
		}
		switch {
		case o.Status == webhook.DeliverySucceeded:
			c.succeeded, c.failing = true, time.Time{}
		case c.failing.IsZero():
			c.failing = a.CreatedAt
		}
		if o.DisableReason != "" && c.disable == nil {
			c.disable = &outcomes[i]
		}
	}
	if n := len(args) / attemptParams; n == len(outcomes) {
		if _, err := tx.ExecContext(ctx, attemptInserts[n], args...); err != nil {
			return nil, err
		}
	} else {
		// Some deliveries were gone: rare enough to go one by one.
		for ; len(args) > 0; args = args[attemptParams:] {
			if _, err := tx.ExecContext(ctx, attemptInserts[1], args[:attemptParams]...); err != nil {
				return nil, err
			}
		}
	}
	for _, id := range order {
		if err := changeWebhook(ctx, tx, id, changes[id]); err != nil {
			return nil, err
		}
	}
	return stale, nil
}

func changeWebhook(ctx context.Context, tx *txn, id uuid.UUID, c *webhookChange) error {
	if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET
		failing_since = CASE WHEN ?1 THEN ?2 ELSE coalesce(failing_since, ?2) END
		WHERE organization_id = ?3 AND id = ?4
		-- Most outcomes change nothing here: not rewriting the row spares
		-- a page write.
		AND CASE WHEN ?1 THEN failing_since IS NOT ?2 ELSE failing_since IS NULL END`,
		c.succeeded, nullMicros(c.failing), c.org, id); err != nil {
		return err
	}
	if c.disable == nil {
		return nil
	}
	// Only a webhook still enabled is disabled, and audited: one disabled
	// meanwhile (by a person, or by another outcome) keeps its reason.
	a := c.disable.Attempt
	res, err := tx.ExecContext(ctx, `UPDATE webhooks SET enabled = 0, disabled_reason = ?
		WHERE organization_id = ? AND id = ? AND enabled`, c.disable.DisableReason, c.org, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	// The attempt's URL is the webhook's as claimed, masked: the name of
	// what hookd gave up on.
	audit := webhook.DisabledByHookdAudit(a.CreatedAt.Add(a.Duration), a.TargetURL, c.disable.DisableReason)
	return insertAudit(ctx, tx, audit, c.org, id)
}

// DeliveryRelease gives leased deliveries back without counting an attempt.
func (db *DB) DeliveryRelease(ctx context.Context, ids []webhook.DeliveryRef, dueAt time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	return db.transactLazy(ctx, func(tx *txn) error {
		for _, ref := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET status = 'pending', due_at = ?
				WHERE organization_id = ? AND id = ? AND status = 'running' AND lease = ?`,
				micros(dueAt), ref.OrganizationID, ref.ID, ref.Lease); err != nil {
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
	err := db.transactLazy(ctx, func(tx *txn) error {
		lost = lost[:0]
		for _, ref := range p.Refs {
			res, err := tx.ExecContext(ctx, `UPDATE deliveries SET due_at = ?
				WHERE organization_id = ? AND id = ? AND status = 'running' AND lease = ?`,
				micros(p.LeaseUntil), ref.OrganizationID, ref.ID, ref.Lease)
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
		var status webhook.DeliveryStatus
		err := tx.QueryRowContext(ctx, `SELECT status FROM deliveries WHERE organization_id = ? AND webhook_id = ? AND id = ?`,
			orgID, webhookID, id).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("delivery")
		}
		if err != nil {
			return err
		}
		if status == webhook.DeliveryRunning {
			return webhook.Errorf(webhook.EConflict, "the delivery is being attempted right now; retry it once that attempt ends")
		}
		d, err = scanDelivery(tx.QueryRowContext(ctx, `UPDATE deliveries SET status = 'pending', due_at = ?, updated_at = ?
			WHERE organization_id = ? AND id = ? RETURNING `+deliveryColumns, micros(now), micros(now), orgID, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// DeliveryGet returns one delivery of one of the organization's webhooks.
func (db *DB) DeliveryGet(ctx context.Context, orgID, webhookID, id uuid.UUID) (*webhook.Delivery, error) {
	d, err := scanDelivery(db.read.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries
		WHERE organization_id = ? AND webhook_id = ? AND id = ?`, orgID, webhookID, id))
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

// DeliveryList returns a webhook's deliveries newest first.
func (db *DB) DeliveryList(ctx context.Context, p webhook.DeliveryListParams) ([]*webhook.Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM deliveries WHERE organization_id = ? AND webhook_id = ?`
	args := []any{p.OrganizationID, p.WebhookID}
	if p.Status != "" {
		q += ` AND status = ?`
		args = append(args, p.Status)
	}
	if p.Before != uuid.Nil {
		q += ` AND id < ?`
		args = append(args, p.Before)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit(p.Limit))
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
		WHERE status IN ('pending', 'running') AND due_at <= ?`, micros(now)).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, translate(err)
	}
	return n, fromNullMicros(oldest), nil
}

// AttemptList returns a webhook's attempts newest first, each with its Event.
func (db *DB) AttemptList(ctx context.Context, p webhook.AttemptListParams) ([]*webhook.Attempt, error) {
	q := `SELECT ` + prefixed("a", attemptColumns) + `, ` + prefixed("e", eventColumns) + `
		FROM attempts a JOIN events e ON e.organization_id = a.organization_id AND e.id = a.event_id
		WHERE a.organization_id = ? AND a.webhook_id = ?`
	args := []any{p.OrganizationID, p.WebhookID}
	if p.DeliveryID != uuid.Nil {
		q += ` AND a.delivery_id = ?`
		args = append(args, p.DeliveryID)
	}
	if p.Before != uuid.Nil {
		q += ` AND a.id < ?`
		args = append(args, p.Before)
	}
	q += ` ORDER BY a.id DESC LIMIT ?`
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

// deleteBatch bounds how long retention and webhook deletion hold the
// write lock at a time, so intake is never stalled behind a large purge.
const deleteBatch = 1000

// DeleteBefore removes old events whose deliveries are all finished; the
// foreign keys cascade to deliveries and attempts.
func (db *DB) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	return db.deleteInBatches(ctx, `DELETE FROM events WHERE rowid IN (
		SELECT e.rowid FROM events e
		WHERE e.created_at < ? AND NOT EXISTS (
			SELECT 1 FROM deliveries d
			WHERE d.organization_id = e.organization_id AND d.event_id = e.id
			AND d.status IN ('pending', 'running'))
		LIMIT ?)`, micros(t))
}

// deleteInBatches runs a DELETE whose last parameter is a LIMIT, with
// deleteBatch, one transaction at a time until it deletes fewer, and
// returns how many rows it deleted.
func (db *DB) deleteInBatches(ctx context.Context, query string, args ...any) (int, error) {
	args = append(args, deleteBatch)
	total := 0
	for {
		var n int64
		err := db.transact(ctx, func(tx *txn) error {
			res, err := tx.ExecContext(ctx, query, args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < deleteBatch {
			return total, nil
		}
	}
}
