package main

import (
	"errors"
	"strings"
)

// The backends a database URL can name.
const (
	backendSQLite   = "sqlite"
	backendPostgres = "postgres"
)

// database is HOOKD_DATABASE_URL, its scheme read once.
type database struct {
	// Backend is backendSQLite or backendPostgres.
	Backend string
	// Path is the SQLite file (empty for PostgreSQL).
	Path string
	// URL is the URL as configured, which PostgreSQL is opened with. It
	// may hold a password: never log it (webhook.RedactedURL).
	URL string
}

// splitDatabaseURL is the one place that reads a database URL's scheme: it
// says which backend u names and, for SQLite, what follows "sqlite:" (a
// file for serve, a directory for bench). ok is false for any other scheme.
func splitDatabaseURL(u string) (backend, rest string, ok bool) {
	if rest, ok := strings.CutPrefix(u, "sqlite:"); ok {
		return backendSQLite, rest, true
	}
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		return backendPostgres, "", true
	}
	return "", "", false
}

// parseDatabaseURL reads HOOKD_DATABASE_URL.
func parseDatabaseURL(u string) (database, error) {
	backend, path, ok := splitDatabaseURL(u)
	switch {
	case !ok:
		return database{}, errors.New("must start with sqlite: or postgres://")
	case backend == backendSQLite && path == "":
		return database{}, errors.New("sqlite: needs a file path, e.g. sqlite:hookd.db")
	}
	return database{Backend: backend, Path: path, URL: u}, nil
}

// intakeWorkers is how many intake transactions run at once: SQLite has
// one writer, so more would only queue. PostgreSQL commits in parallel,
// but two are enough for one to gather its batch while the other waits
// for the server. With four, each batch was half as big: twice the
// commits and statements, all inserting into the same right-hand pages of
// the events' and deliveries' indexes (their keys grow with time). Two
// served a burst 0.66 times as fast as SQLite (median of seven alternated
// rounds, against 0.57 with four) at less CPU on both sides and lower
// tails; one was as fast on loopback, but slower than four behind a
// millisecond of network (the batch in flight holds everyone up).
func (d database) intakeWorkers() int {
	if d.Backend == backendSQLite {
		return 1
	}
	return 2
}
