package webhook

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// This file holds intake's rules: which events of a batch are new and
// which repeat an earlier one, which webhooks get a delivery, and which
// deliveries are leased to the caller. The backends load what PlanIntake
// needs and write what it returns; they decide nothing themselves.

// KeyRef names an idempotency key: keys are per organization.
type KeyRef struct {
	OrganizationID uuid.UUID
	Key            string
}

// EventRef names a stored event.
type EventRef struct {
	OrganizationID uuid.UUID
	ID             uuid.UUID
}

// KeyHolder is the stored event holding an idempotency key.
type KeyHolder struct {
	EventID   uuid.UUID
	CreatedAt time.Time
	// ContentHash is the holder's (nil for events stored before hookd
	// kept one: they conflict with nothing).
	ContentHash []byte
	Deliveries  int
}

// IntakeInput is what PlanIntake decides from.
type IntakeInput struct {
	Events []*Event
	// Webhooks are the webhooks of every organization of the batch, oldest
	// first: deliveries are made in this order.
	Webhooks map[uuid.UUID][]*Webhook
	// Holders are the stored events holding the batch's keys.
	Holders map[KeyRef]KeyHolder
	Lease   Lease
	// NewID makes event (when unset) and delivery ids; nil: UUIDv7.
	NewID func() uuid.UUID
}

// IntakePlan is what a batch's intake writes, and answers.
type IntakePlan struct {
	// Receipts has one entry per event of the batch, as they will be once
	// the plan is written: replays and the events stored with their
	// deliveries and leased tasks.
	Receipts []EventReceipt
	// Store lists the events to insert, in batch order.
	Store []PlannedEvent
	// Release are stored events whose expired key passes to a new event:
	// their key is cleared before the new events are inserted.
	Release []EventRef
	// ReplayOf maps the index of an event repeating an earlier event of
	// the same batch to that event's index.
	ReplayOf map[int]int
}

// PlannedEvent is an event to insert with its deliveries.
type PlannedEvent struct {
	Index int // in the batch
	Event *Event
	// KeepKey is false when a later event of the batch took over the
	// event's expired key: it is stored without one.
	KeepKey    bool
	Deliveries []Delivery
}

// Key returns the idempotency key the event is stored with, or nil.
func (p *PlannedEvent) Key() *string {
	if !p.KeepKey || p.Event.IdempotencyKey == "" {
		return nil
	}
	return &p.Event.IdempotencyKey
}

// PlanIntake applies idempotency, matching, OnlyWebhookID targeting and
// the lease to a batch. It fails the whole batch when one event names a
// webhook its organization does not have (ENotFound) or reuses a key held
// by an event of different content (EUnprocessable); the caller retries
// the events one by one to fail only that one.
func PlanIntake(in IntakeInput) (*IntakePlan, error) {
	if in.Lease.Limit > 0 && (in.Lease.Now.IsZero() || in.Lease.Length() <= 0) {
		return nil, Errorf(EInvalid, "a lease needs its Now and an Until after it (got %v and %v)", in.Lease.Now, in.Lease.Until)
	}
	newID := in.NewID
	if newID == nil {
		newID = func() uuid.UUID { return uuid.Must(uuid.NewV7()) }
	}
	p := &IntakePlan{Receipts: make([]EventReceipt, len(in.Events)), ReplayOf: map[int]int{}}
	holders := make(map[KeyRef]KeyHolder, len(in.Holders))
	for k, h := range in.Holders {
		holders[k] = h
	}
	batchHolder := map[KeyRef]int{} // key → index in p.Store of the batch event holding it
	leaseLeft := in.Lease.Limit
	for i, ev := range in.Events {
		if ev.ID == uuid.Nil {
			ev.ID = newID()
		}
		at := ev.CreatedAt.UTC().Truncate(time.Microsecond)
		if ev.IdempotencyKey != "" {
			k := KeyRef{ev.OrganizationID, ev.IdempotencyKey}
			if h, ok := holders[k]; ok {
				if w := KeyWindow(ev.SourceKind); w == KeyKept || at.Sub(h.CreatedAt) < w {
					if !SameContent(h.ContentHash, ev.ContentHash) {
						return nil, KeyReused(ev.IdempotencyKey, h.EventID)
					}
					if j, inBatch := batchHolder[k]; inBatch {
						p.ReplayOf[i] = p.Store[j].Index
						p.Receipts[i] = p.Receipts[p.Store[j].Index].Replay()
					} else {
						p.Receipts[i] = EventReceipt{ID: h.EventID, CreatedAt: h.CreatedAt, Deliveries: h.Deliveries,
							Replayed: true, DeliveryIDs: []uuid.UUID{}}
					}
					continue
				}
				// The key has expired: it moves to this event, and the old
				// event stays (with its deliveries) until retention
				// removes it.
				if j, inBatch := batchHolder[k]; inBatch {
					p.Store[j].KeepKey = false
				} else {
					p.Release = append(p.Release, EventRef{OrganizationID: ev.OrganizationID, ID: h.EventID})
				}
			}
			holders[k] = KeyHolder{EventID: ev.ID, CreatedAt: at, ContentHash: ev.ContentHash}
			batchHolder[k] = len(p.Store)
		}
		targets, err := Targets(ev, in.Webhooks[ev.OrganizationID])
		if err != nil {
			return nil, err
		}
		pe := PlannedEvent{Index: i, Event: ev, KeepKey: true, Deliveries: make([]Delivery, 0, len(targets))}
		r := EventReceipt{ID: ev.ID, CreatedAt: at, DeliveryIDs: make([]uuid.UUID, 0, len(targets))}
		var stored *Event // ev as DeliveryClaim reads it back, shared by its tasks
		for _, w := range targets {
			d := Delivery{ID: newID(), OrganizationID: ev.OrganizationID, WebhookID: w.ID, EventID: ev.ID,
				CreatedAt: at, UpdatedAt: at, Status: DeliveryPending, DueAt: at, EventType: ev.Type}
			if leaseLeft > 0 {
				leaseLeft--
				// Lease 1: the first lease token, as a first claim would give.
				d.Status, d.DueAt, d.Lease = DeliveryRunning, in.Lease.Until.UTC().Truncate(time.Microsecond), 1
				if stored == nil {
					e := *ev
					e.CreatedAt, e.OnlyWebhookID, e.SourceKind = at, uuid.Nil, ""
					stored = &e
				}
				r.Tasks = append(r.Tasks, &Task{Delivery: d, Event: *stored, Webhook: *w})
			}
			pe.Deliveries = append(pe.Deliveries, d)
			r.DeliveryIDs = append(r.DeliveryIDs, d.ID)
		}
		r.Deliveries = len(r.DeliveryIDs)
		p.Receipts[i] = r
		p.Store = append(p.Store, pe)
	}
	return p, nil
}

// Replay is the receipt of an event repeating the one r answers.
func (r EventReceipt) Replay() EventReceipt {
	return EventReceipt{ID: r.ID, CreatedAt: r.CreatedAt, Deliveries: r.Deliveries, Replayed: true, DeliveryIDs: []uuid.UUID{}}
}

// Answer sets the receipt of event i, and of the events of the batch
// repeating it: a backend calls it when the write went otherwise than
// planned (an event lost its key to a concurrent intake).
func (p *IntakePlan) Answer(i int, r EventReceipt) {
	p.Receipts[i] = r
	for j, of := range p.ReplayOf {
		if of == i {
			p.Receipts[j] = r.Replay()
		}
	}
}

// Targets returns the webhooks ev goes to, from its organization's
// webhooks (oldest first): OnlyWebhookID alone when set, whatever its
// filters and state, or else every webhook that Matches it.
func Targets(ev *Event, hooks []*Webhook) ([]*Webhook, error) {
	if ev.OnlyWebhookID != uuid.Nil {
		for _, w := range hooks {
			if w.ID == ev.OnlyWebhookID {
				return []*Webhook{w}, nil
			}
		}
		return nil, Errorf(ENotFound, "webhook %s not found", ev.OnlyWebhookID)
	}
	var out []*Webhook
	for _, w := range hooks {
		if w.Matches(ev) {
			out = append(out, w)
		}
	}
	return out, nil
}

// ContentHash returns the hash an event's content is compared by when
// its Idempotency-Key is reused: the event type and the payload (which
// holds the project, the environment and everything else the caller sent).
func ContentHash(t EventType, payload []byte) []byte {
	h := sha256.New()
	h.Write([]byte(t))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)
}

// SameContent reports whether two content hashes name the same content.
// A missing hash (an event stored before hookd kept them, or made
// without one) matches anything.
func SameContent(a, b []byte) bool {
	return len(a) == 0 || len(b) == 0 || bytes.Equal(a, b)
}

// KeyReused is intake's refusal of an Idempotency-Key already used, within
// the window, for an event with other content.
func KeyReused(key string, holder uuid.UUID) *Error {
	return &Error{Code: EUnprocessable, Field: "Idempotency-Key", Message: fmt.Sprintf(
		"Idempotency-Key: %q was used within the last 24 hours for event %s with a different body; "+
			"use a new key for a different event, or resend the same body to get that event's receipt", key, holder)}
}
