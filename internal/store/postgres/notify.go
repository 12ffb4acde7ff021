package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// dueChannel is where nodes say they queued deliveries any node may send
// now, so the others claim them at once instead of at their next poll.
const dueChannel = "hookd_due"

// notifyDue is queued with the writes it announces: PostgreSQL delivers a
// notification only when (and if) its transaction commits.
const notifyDue = `SELECT pg_notify('` + dueChannel + `', '')`

// ListenDue calls wake each time a node (this one included) queues
// deliveries that are due now, until ctx ends or the connection fails,
// and returns why it stopped. It uses a connection of its own, outside
// the pool, closed when it returns; callers listen again after a pause.
// Notifications only hasten the work: polling still finds every delivery.
func (db *DB) ListenDue(ctx context.Context, wake func()) error {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+dueChannel); err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("postgres: listen: %w", err)
		}
		wake()
	}
}
