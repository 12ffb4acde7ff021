package postgres

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/webhook"
)

const eventCols = `organization_id, id, created_at, event_type, idempotency_key, project_name, environment_mode, payload`

func scanEvent(row rowScanner) (*webhook.Event, error) {
	var (
		ev        webhook.Event
		createdAt time.Time
		key       *string
		payload   []byte // not json.RawMessage: pgx would unmarshal into it and drop surrounding space
	)
	if err := row.Scan(&ev.OrganizationID, &ev.ID, &createdAt, &ev.Type, &key, &ev.ProjectName, &ev.EnvironmentMode, &payload); err != nil {
		return nil, err
	}
	ev.CreatedAt = createdAt.UTC()
	if key != nil {
		ev.IdempotencyKey = *key
	}
	ev.Payload = payload
	return &ev, nil
}

type idemKey struct {
	org uuid.UUID
	key string
}

// prior is the event that holds an idempotency key: stored before this
// batch (batch < 0), or earlier in it.
type prior struct {
	id         uuid.UUID
	createdAt  time.Time
	deliveries int
	batch      int
}

func (p prior) receipt() webhook.EventReceipt {
	return webhook.EventReceipt{ID: p.id, CreatedAt: p.createdAt, Deliveries: p.deliveries, Replayed: true}
}

// EventsCreate does its work in few round trips whatever the batch size:
// one batch of reads (the organizations' webhooks, the stored holders of
// the batch's idempotency keys), the decisions in Go, then one batch of
// writes in which the deliveries are a single INSERT.
func (db *DB) EventsCreate(ctx context.Context, events []*webhook.Event, lease webhook.Lease) ([]webhook.EventReceipt, error) {
	var receipts []webhook.EventReceipt
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var err error
		receipts, err = eventsCreate(ctx, tx, events, lease, db.callerClock)
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
	return receipts, nil
}

func eventsCreate(ctx context.Context, tx pgx.Tx, events []*webhook.Event, lease webhook.Lease, callerClock bool) ([]webhook.EventReceipt, error) {
	if len(events) == 0 {
		return []webhook.EventReceipt{}, nil
	}
	for _, ev := range events {
		if ev.ID == uuid.Nil {
			ev.ID = uuid.Must(uuid.NewV7())
		}
	}
	hooks, priors, err := loadForIntake(ctx, tx, events)
	if err != nil {
		return nil, err
	}
	in, err := planIntake(events, hooks, priors)
	if err != nil {
		return nil, err
	}
	in.lease, in.callerClock = lease, callerClock
	lost, err := in.write(ctx, tx)
	if err != nil {
		return nil, err
	}
	if len(lost) > 0 {
		if err := in.replayLost(ctx, tx, lost); err != nil {
			return nil, err
		}
	}
	for i, j := range in.replayOf {
		r := in.receipts[j]
		in.receipts[i] = webhook.EventReceipt{ID: r.ID, CreatedAt: r.CreatedAt, Deliveries: r.Deliveries, Replayed: true}
	}
	return in.receipts, nil
}

// intake is what EventsCreate decided about a batch before writing it.
type intake struct {
	events   []*webhook.Event
	receipts []webhook.EventReceipt
	inserts  []int                // indexes of the events to store
	keys     []*string            // the idempotency key each stored event keeps
	targets  [][]*webhook.Webhook // the webhooks each stored event goes to
	replayOf map[int]int          // event index → index of the batch event it repeats
	unkeyOrg []uuid.UUID          // stored events whose key has expired
	unkey    []uuid.UUID
	lease    webhook.Lease
	// callerClock keeps the due times as the caller gave them (see
	// DB.UseCallerClock) instead of moving them onto the database's clock.
	callerClock bool
}

// planIntake applies idempotency and matching in Go, given what is stored.
func planIntake(events []*webhook.Event, hooks map[uuid.UUID][]*webhook.Webhook, priors map[idemKey]prior) (*intake, error) {
	in := &intake{
		events:   events,
		receipts: make([]webhook.EventReceipt, len(events)),
		keys:     make([]*string, len(events)),
		targets:  make([][]*webhook.Webhook, len(events)),
		replayOf: map[int]int{},
	}
	for i, ev := range events {
		if ev.IdempotencyKey != "" {
			k := idemKey{ev.OrganizationID, ev.IdempotencyKey}
			if p, ok := priors[k]; ok {
				if ts(ev.CreatedAt).Sub(p.createdAt) < webhook.IdempotencyWindow {
					if p.batch >= 0 {
						in.replayOf[i] = p.batch
					} else {
						in.receipts[i] = p.receipt()
					}
					continue
				}
				// The key is free again: the old holder lets go of it so
				// the unique index accepts the new one.
				if p.batch >= 0 {
					in.keys[p.batch] = nil
				} else {
					in.unkeyOrg = append(in.unkeyOrg, ev.OrganizationID)
					in.unkey = append(in.unkey, p.id)
				}
			}
			priors[k] = prior{id: ev.ID, createdAt: ts(ev.CreatedAt), batch: i}
			in.keys[i] = &ev.IdempotencyKey
		}
		orgHooks := hooks[ev.OrganizationID]
		if ev.OnlyWebhookID != uuid.Nil {
			j := slices.IndexFunc(orgHooks, func(w *webhook.Webhook) bool { return w.ID == ev.OnlyWebhookID })
			if j < 0 {
				return nil, notFound("webhook", ev.OnlyWebhookID)
			}
			in.targets[i] = orgHooks[j : j+1]
		} else {
			for _, w := range orgHooks {
				if w.Matches(ev) {
					in.targets[i] = append(in.targets[i], w)
				}
			}
		}
		in.inserts = append(in.inserts, i)
	}
	return in, nil
}

// write stores the planned events and deliveries in one round trip, fills
// the receipts of those stored, and returns the events whose key a
// concurrent intake committed first.
func (in *intake) write(ctx context.Context, tx pgx.Tx) (lost []int, err error) {
	b := &pgx.Batch{}
	if len(in.unkey) > 0 {
		b.Queue(`UPDATE events SET idempotency_key = NULL
			WHERE (organization_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))`, in.unkeyOrg, in.unkey)
	}
	var e struct {
		org, id                     []uuid.UUID
		at                          []time.Time
		typ, project, mode, payload []string
		key                         []*string
	}
	var d struct {
		org, id, hook, event []uuid.UUID
		typ, status          []string
		at, due              []time.Time
	}
	leased := map[uuid.UUID]*webhook.Task{} // by delivery id, until RETURNING says it was stored
	leaseLeft := in.lease.Limit
	for _, i := range in.inserts {
		ev := in.events[i]
		e.org, e.id, e.at = append(e.org, ev.OrganizationID), append(e.id, ev.ID), append(e.at, ts(ev.CreatedAt))
		e.typ, e.project, e.mode = append(e.typ, string(ev.Type)), append(e.project, ev.ProjectName), append(e.mode, string(ev.EnvironmentMode))
		e.payload, e.key = append(e.payload, string(ev.Payload)), append(e.key, in.keys[i])
		var stored *webhook.Event // ev as DeliveryClaim would read it back
		for _, w := range in.targets[i] {
			id, at := uuid.Must(uuid.NewV7()), ts(ev.CreatedAt)
			status, due := webhook.DeliveryPending, at
			if leaseLeft > 0 {
				leaseLeft--
				status, due = webhook.DeliveryRunning, ts(in.lease.Until)
				if stored == nil {
					stored = &webhook.Event{ID: ev.ID, OrganizationID: ev.OrganizationID, CreatedAt: at, Type: ev.Type,
						IdempotencyKey: ev.IdempotencyKey, ProjectName: ev.ProjectName, EnvironmentMode: ev.EnvironmentMode, Payload: ev.Payload}
				}
				leased[id] = &webhook.Task{
					Delivery: webhook.Delivery{ID: id, OrganizationID: ev.OrganizationID, WebhookID: w.ID, EventID: ev.ID,
						CreatedAt: at, UpdatedAt: at, Status: status, DueAt: due, EventType: ev.Type, Lease: 1},
					Event:   *stored,
					Webhook: *w,
				}
			}
			d.org = append(d.org, ev.OrganizationID)
			d.id = append(d.id, id)
			d.hook = append(d.hook, w.ID)
			d.event = append(d.event, ev.ID)
			d.typ = append(d.typ, string(ev.Type))
			d.at = append(d.at, at)
			d.status = append(d.status, string(status))
			d.due = append(d.due, due)
		}
	}
	// One statement stores the events and the deliveries of those really
	// stored. A concurrent intake may have committed an event's key since
	// we looked (or be about to: the index makes us wait for it); then
	// that event is not inserted, and replayed. Joining the deliveries to
	// the events just inserted, rather than checking the events table,
	// keeps the cost of a batch independent of the table's size (a check
	// planned while the table was small scanned all of it). The EXISTS
	// drops deliveries to webhooks deleted since they were read.
	b.Queue(`WITH ev AS (
			INSERT INTO events (`+eventCols+`)
			SELECT org, id, at, typ, key, project, mode, payload::json
			FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
				AS e(org, id, at, typ, key, project, mode, payload)
			ON CONFLICT (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
			RETURNING organization_id, id
		), d AS (
			INSERT INTO deliveries (organization_id, id, webhook_id, event_id, event_type, created_at, updated_at, due_at, status, lease)
			-- Due times run on the database's clock (see DeliveryClaim): a
			-- lease for as long after now() as the caller asked after the
			-- event's time, and a pending delivery due now at the latest
			-- (not later, if the caller's clock runs ahead).
			SELECT x.org, x.id, x.hook, x.event, x.typ, x.at, x.at,
				CASE WHEN $17 THEN x.due WHEN x.status = 'running' THEN now() + (x.due - x.at) ELSE least(x.due, now()) END, x.status,
				CASE WHEN x.status = 'running' THEN 1 ELSE 0 END
			FROM unnest($9::uuid[], $10::uuid[], $11::uuid[], $12::uuid[], $13::text[], $14::timestamptz[], $15::timestamptz[], $16::text[])
				AS x(org, id, hook, event, typ, at, due, status)
			JOIN ev ON ev.organization_id = x.org AND ev.id = x.event
			WHERE EXISTS (SELECT 1 FROM webhooks w WHERE w.organization_id = x.org AND w.id = x.hook)
			RETURNING organization_id, event_id, id
		)
		SELECT organization_id, id, NULL::uuid FROM ev
		UNION ALL
		SELECT organization_id, event_id, id FROM d`,
		e.org, e.id, e.at, e.typ, e.key, e.project, e.mode, e.payload,
		d.org, d.id, d.hook, d.event, d.typ, d.at, d.due, d.status, in.callerClock)

	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if len(in.unkey) > 0 {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	type eventKey struct{ org, id uuid.UUID }
	inserted := map[eventKey]bool{}
	created := map[eventKey][]uuid.UUID{}
	for rows.Next() {
		var (
			k  eventKey
			id *uuid.UUID // NULL: an event row, else a delivery of event k
		)
		if err := rows.Scan(&k.org, &k.id, &id); err != nil {
			rows.Close()
			return nil, err
		}
		if id == nil {
			inserted[k] = true
		} else {
			created[k] = append(created[k], *id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	for _, i := range in.inserts {
		ev := in.events[i]
		k := eventKey{ev.OrganizationID, ev.ID}
		if !inserted[k] {
			lost = append(lost, i)
			continue
		}
		ids := created[k]
		if ids == nil {
			ids = []uuid.UUID{}
		}
		// IDs are UUIDv7 made in order, so sorting restores creation order
		// whatever order RETURNING used.
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
		r := webhook.EventReceipt{ID: ev.ID, CreatedAt: ts(ev.CreatedAt), Deliveries: len(ids), DeliveryIDs: ids}
		for _, id := range ids {
			if t, ok := leased[id]; ok {
				r.Tasks = append(r.Tasks, t)
			}
		}
		in.receipts[i] = r
	}
	return lost, br.Close()
}

// replayLost answers the events that lost a key race with the receipt of
// the event that won it, read now that it is committed.
func (in *intake) replayLost(ctx context.Context, tx pgx.Tx, lost []int) error {
	lostEvents := make([]*webhook.Event, len(lost))
	for j, i := range lost {
		lostEvents[j] = in.events[i]
	}
	held, err := loadKeyHolders(ctx, tx, lostEvents)
	if err != nil {
		return err
	}
	for _, i := range lost {
		ev := in.events[i]
		p, ok := held[idemKey{ev.OrganizationID, ev.IdempotencyKey}]
		if !ok {
			// The winner's key was released again before we could read
			// it: rare enough that the caller retrying is the answer.
			return webhook.Errorf(webhook.EConflict, "a concurrent request used the same Idempotency-Key; try again")
		}
		in.receipts[i] = p.receipt()
	}
	return nil
}

// loadForIntake reads, in one round trip, the webhooks of every
// organization in the batch (once each, oldest first, the order their
// deliveries are created in) and the stored events holding the batch's
// idempotency keys.
func loadForIntake(ctx context.Context, tx pgx.Tx, events []*webhook.Event) (map[uuid.UUID][]*webhook.Webhook, map[idemKey]prior, error) {
	var orgs []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for _, ev := range events {
		if !seen[ev.OrganizationID] {
			seen[ev.OrganizationID] = true
			orgs = append(orgs, ev.OrganizationID)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+webhookCols+` FROM webhooks WHERE organization_id = ANY($1) ORDER BY created_at, id`, orgs)
	keyOrgs, keys := keysOf(events)
	if len(keys) > 0 {
		queueKeyHolders(b, keyOrgs, keys)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()

	rows, err := br.Query()
	if err != nil {
		return nil, nil, err
	}
	list, err := collect(rows, scanWebhook)
	if err != nil {
		return nil, nil, err
	}
	hooks := map[uuid.UUID][]*webhook.Webhook{}
	for _, w := range list {
		hooks[w.OrganizationID] = append(hooks[w.OrganizationID], w)
	}
	priors := map[idemKey]prior{}
	if len(keys) > 0 {
		if priors, err = readKeyHolders(br); err != nil {
			return nil, nil, err
		}
	}
	return hooks, priors, br.Close()
}

// loadKeyHolders reads the stored events holding the events' keys.
func loadKeyHolders(ctx context.Context, tx pgx.Tx, events []*webhook.Event) (map[idemKey]prior, error) {
	b := &pgx.Batch{}
	orgs, keys := keysOf(events)
	queueKeyHolders(b, orgs, keys)
	br := tx.SendBatch(ctx, b)
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

func queueKeyHolders(b *pgx.Batch, orgs []uuid.UUID, keys []string) {
	b.Queue(`SELECT e.organization_id, e.idempotency_key, e.id, e.created_at,
			(SELECT count(*) FROM deliveries d WHERE d.organization_id = e.organization_id AND d.event_id = e.id)
		FROM events e
		WHERE (e.organization_id, e.idempotency_key) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))`, orgs, keys)
}

func readKeyHolders(br pgx.BatchResults) (map[idemKey]prior, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	held := map[idemKey]prior{}
	for rows.Next() {
		var (
			k idemKey
			p prior
		)
		if err := rows.Scan(&k.org, &k.key, &p.id, &p.createdAt, &p.deliveries); err != nil {
			return nil, err
		}
		p.createdAt = p.createdAt.UTC()
		p.batch = -1
		held[k] = p
	}
	return held, rows.Err()
}

// DeleteBefore deletes whole events; the foreign keys cascade to their
// deliveries and attempts.
func (db *DB) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM events e
		WHERE e.created_at < $1
		  AND NOT EXISTS (SELECT 1 FROM deliveries d
			WHERE d.organization_id = e.organization_id AND d.event_id = e.id
			  AND d.status IN ('pending', 'running'))`, ts(t))
	if err != nil {
		return 0, translate(err)
	}
	return int(tag.RowsAffected()), nil
}
