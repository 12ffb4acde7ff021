package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/store/migration"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the pg_advisory_xact_lock key that serializes
// migrations, so several nodes starting at once apply each one once.
const migrationLock int64 = 0x686f6f6b64 // "hookd"

// Migrate applies the embedded migrations the database has not seen, in
// order, each in its own transaction and recorded in schema_migrations.
//
// So a migration cannot use CREATE INDEX CONCURRENTLY, and building an
// index holds off writes to its table while it runs (0060 says how
// long). Running one outside the transaction would not be enough: the
// build waits for every transaction whose snapshot is older than its own,
// and a node starting meanwhile holds one while it waits in
// pg_advisory_xact_lock for the very lock the build's migration holds.
// Held by the migration's transaction on another connection, neither
// ever ends (checked on PostgreSQL 15); held by the building session
// itself, the server sees the deadlock and fails one of the two, a
// node's start or the build, which leaves an invalid index behind. Nodes
// of earlier releases wait that way too, so an index that takes long to
// build belongs in the background, as the purger's work does, not in a
// migration.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		err := db.transact(ctx, func(tx pgx.Tx) error {
			// Taken before anything else: CREATE TABLE IF NOT EXISTS
			// itself races between two sessions.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version integer PRIMARY KEY,
				applied_at timestamptz NOT NULL
			)`); err != nil {
				return err
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&done); err != nil {
				return err
			}
			if done {
				return nil
			}
			// No arguments: pgx uses the simple protocol, which accepts
			// several statements in one string.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m.Name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())`, m.Version)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
	}
	// The purger reads the queue's tables, so it starts once they are
	// there.
	if db.purger == nil {
		db.startPurger()
	}
	return nil
}

func loadMigrations() ([]migration.Migration, error) {
	ms, err := migration.Load(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return ms, nil
}
