package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A database file has one server (`hookd serve`): its writer's cache of
// webhooks, its checkpointer and its leases all assume that no other
// server writes beside it. The server lock, a file beside the database
// (its path with ".lock"), holds to that: a second server waits for the
// first to stop. The lock is the kernel's (flock): it ends with the
// process that held it, however it ended, so a server that takes it knows
// that whoever leased the deliveries still running is gone, and gives
// them back at once (ReleaseLeases) instead of letting them wait for
// their leases to end.

// ErrNoServerLock says the database's file system (or the system) has no
// locks: LockServer could not make this process the file's one server,
// and one server per file is the operator's to keep.
var ErrNoServerLock = errors.New("sqlite: the file system takes no locks")

// lockPoll is how often a server waiting for the lock tries again: how
// long after the server before it ends it can take over.
const lockPoll = 200 * time.Millisecond

// ServerLock makes the process that holds it a database file's one
// server. A DB holds it from HoldServerLock until Close.
type ServerLock struct{ f *os.File }

// LockServer takes the server lock of the database at path, before the
// server opens it: a process waiting for it has the file open for nothing
// (no checkpointer beside the server it waits for). While another process
// serves the file, LockServer calls waiting once, with what that process
// wrote in the lock file (its pid and host), and waits until the lock is
// free or ctx is done. The CLI's commands, which write beside a server,
// do not take it. The lock file is named after the database file the path
// leads to, through symbolic links, so that two spellings of one file
// share one lock; it must not be deleted while a server runs (a server
// started then would take a lock of its own).
func LockServer(ctx context.Context, path string, waiting func(holder string)) (*ServerLock, error) {
	name := lockName(path)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: the server lock: %w", err)
	}
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for told := false; ; {
		held, err := tryLock(f)
		if err != nil {
			f.Close()
			if errors.Is(err, ErrNoServerLock) {
				return nil, err
			}
			return nil, fmt.Errorf("sqlite: the server lock %s: %w", name, err)
		}
		if !held {
			break
		}
		if !told {
			waiting(holder(f))
			told = true
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("sqlite: waiting for the server lock %s, held by %s: %w", name, holder(f), ctx.Err())
			f.Close()
			return nil, err
		case <-tick.C:
		}
	}
	host, _ := os.Hostname()
	// Only for the message of a server that waits: the lock is the flock.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	}
	return &ServerLock{f: f}, nil
}

// lockName is the server lock's file of the database at path: the file
// the path leads to, through symbolic links, with ".lock". A file not made
// yet (a first start) is named as it will be once made: through a link
// to it, the file the link names, where SQLite will make it.
func lockName(path string) string {
	for range 40 { // Linux's limit on the links one path follows
		if real, err := filepath.EvalSymlinks(path); err == nil {
			return real + ".lock"
		}
		target, err := os.Readlink(path)
		if err != nil {
			break // no link: the file will be made at path
		}
		if !filepath.IsAbs(target) {
			// Relative to the link's directory, resolved first so that
			// Join's ".." is the file system's.
			dir, err := filepath.EvalSymlinks(filepath.Dir(path))
			if err != nil {
				break
			}
			target = filepath.Join(dir, target)
		}
		path = target
	}
	return path + ".lock"
}

// Close lets the lock go, for the next server to take over; a nil lock
// has nothing to let go.
func (l *ServerLock) Close() error {
	if l == nil {
		return nil
	}
	return l.f.Close()
}

// HoldServerLock gives db the server lock of its file (LockServer), to
// hold until Close.
func (db *DB) HoldServerLock(l *ServerLock) { db.server = l }

// holder is what the lock's holder wrote in it, for a message.
func holder(f *os.File) string {
	b := make([]byte, 200)
	n, _ := f.ReadAt(b, 0)
	if s := strings.TrimSpace(string(b[:n])); s != "" {
		return s
	}
	return "another process"
}

// releaseLeasesSQL gives back every leased delivery, due at ?, with a
// new lease token: an outcome made under the old one is refused. Its
// status < 2 lets SQLite walk the queue's index (unfinished rows only)
// rather than the whole table.
const releaseLeasesSQL = `UPDATE deliveries SET status = 0, due_at = ?, lease = lease + 1 WHERE status < 2 AND status = 1`

// ReleaseLeases gives back, due at now, every delivery leased when this
// process became the server (LockServer, HoldServerLock): whoever leased
// them served the file before and stopped without giving them back (a
// crash, a kill, the machine lost), and no other process can hold them
// now. It reports how many it gave back.
func (db *DB) ReleaseLeases(ctx context.Context, now time.Time) (int64, error) {
	if db.server == nil {
		return 0, errors.New("sqlite: ReleaseLeases without the server lock: another server may hold those leases")
	}
	var n int64
	err := db.transact(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, releaseLeasesSQL, micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
