package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dueChannel is where nodes say they queued deliveries any node may send
// now, so the others claim them at once instead of at their next poll.
const dueChannel = "hookd_due"

const notifyDue = `SELECT pg_notify('` + dueChannel + `', '')`

// forgetChannel is where a node says it deleted a webhook (the payload is
// its id), so the others stop sending the deliveries of it they hold.
// WebhookDelete notifies inside its transaction, so the notification
// goes out only if the delete commits.
const forgetChannel = "hookd_forget"

// editChannel is where a node says it edited a webhook (the payload is
// its id and its new updated_at, in microseconds since 1970), so the
// others give back the deliveries of it they hold, read as it was (see
// delivery.Dispatcher.Edited). WebhookUpdate notifies inside its
// transaction, as WebhookDelete does.
const editChannel = "hookd_edited"

// editPayload is editChannel's payload for webhook id, updated at at.
func editPayload(id uuid.UUID, at time.Time) string {
	return id.String() + " " + strconv.FormatInt(at.UnixMicro(), 10)
}

// parseEditPayload reads editPayload's; ok is false for anything else.
func parseEditPayload(p string) (id uuid.UUID, at time.Time, ok bool) {
	idText, micros, found := strings.Cut(p, " ")
	id, err := uuid.Parse(idText)
	if !found || err != nil {
		return uuid.Nil, time.Time{}, false
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return uuid.Nil, time.Time{}, false
	}
	return id, time.UnixMicro(us).UTC(), true
}

// notifyEvery is the shortest time between two notifications of a node.
const notifyEvery = 50 * time.Millisecond

// notifier tells the other nodes that deliveries are due, after the
// commit that made them and outside any transaction: PostgreSQL
// serializes the commits of all transactions that NOTIFY on one global
// lock, which would have made every intake commit of the cluster wait in
// line. It sends at most one notification per notifyEvery (a request in
// the meantime is sent at the end of the window), on its own goroutine,
// and gives up on failure: notifications only hasten the work, polling
// finds every delivery anyway.
type notifier struct {
	pool    *pgxpool.Pool
	mu      sync.Mutex
	sending bool // a goroutine is sending, or waiting out its window
	again   bool // a request came while it was
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sending {
		n.again = true
		return
	}
	n.sending = true
	go n.send()
}

func (n *notifier) send() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = n.pool.Exec(ctx, notifyDue)
		cancel()
		time.Sleep(notifyEvery)
		n.mu.Lock()
		if !n.again {
			n.sending = false
			n.mu.Unlock()
			return
		}
		n.again = false
		n.mu.Unlock()
	}
}

// Listen calls wake each time a node (this one included) queues
// deliveries that are due now, forget with a webhook's id each time
// a node deletes that webhook, and edited with its id and new UpdatedAt
// each time a node edits one, until ctx ends or the connection fails,
// and returns why it stopped. It uses a connection of its own, outside
// the pool, closed when it returns; callers listen again after a pause.
// Notifications only hasten the work: polling still finds every
// delivery, and a lease renewal finds a deleted webhook's deliveries gone.
func (db *DB) Listen(ctx context.Context, wake func(), forget func(webhookID uuid.UUID), edited func(webhookID uuid.UUID, updatedAt time.Time)) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	if db.listenURL != "" {
		var err error
		if cfg, err = pgx.ParseConfig(db.listenURL); err != nil {
			return fmt.Errorf("postgres: listen: %w", err)
		}
		guardConnections(&cfg.Config)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, channel := range []string{dueChannel, forgetChannel, editChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
			return fmt.Errorf("postgres: listen: %w", err)
		}
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("postgres: listen: %w", err)
		}
		switch n.Channel {
		case dueChannel:
			wake()
		case forgetChannel:
			// Anything but an id was not sent by hookd: nothing to forget.
			if id, err := uuid.Parse(n.Payload); err == nil {
				forget(id)
			}
		case editChannel:
			if id, at, ok := parseEditPayload(n.Payload); ok {
				edited(id, at)
			}
		}
	}
}
