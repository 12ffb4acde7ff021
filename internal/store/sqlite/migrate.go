package sqlite

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/hookd/hookd/internal/store/migration"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the embedded migrations not yet recorded in
// schema_migrations, in order, each in its own transaction. Because each
// transaction begins IMMEDIATE and re-checks the version inside it, two
// processes migrating at once apply each migration exactly once.
func (db *DB) Migrate(ctx context.Context) error {
	err := db.transact(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at INTEGER NOT NULL
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	ms, err := migration.Load(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	for _, m := range ms {
		err = db.transact(ctx, func(tx *txn) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			// Straight to the transaction, past the statement cache: a
			// script runs once, and caching it would spend a slot of the
			// cache on preparing its first statement again afterwards.
			if _, err := tx.tx.ExecContext(tx.ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				m.Version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", m.Name, err)
		}
	}
	// The purger reads the queue's tables, so it starts once they are
	// there.
	if db.purger == nil {
		db.startPurger()
	}
	return nil
}
