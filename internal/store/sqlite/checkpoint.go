package sqlite

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"
)

// The WAL's bounds. The writer never checkpoints on its own
// (wal_autocheckpoint=0): a checkpoint copies pages into the database file
// and syncs it, work that used to run inside whichever commit crossed
// 1,000 pages, with intake waiting behind it. A checkpointer does it:
//   - every checkpointEvery, a PASSIVE checkpoint on its own connection:
//     it copies what no reader still needs without taking the write lock,
//     so the writer starts the WAL over at its next commit when no reader
//     is in it;
//   - when the WAL file passes walRestartAt, a TRUNCATE: the writer starts
//     the WAL over only when every frame is copied and no reader is in
//     it, which readers always overlapping never allow (the WAL grew to
//     174 MB so), nor a writer committing again before the PASSIVE
//     checkpoint ends (the WAL then reaches walRestartAt in steady load).
//     The TRUNCATE is queued on the writer's connection like any
//     write: waiting for the write lock from another connection never
//     wins against a busy writer, which takes it again the moment it
//     commits. It copies the few frames the PASSIVE ones left, waits for
//     the readers of the old frames (new ones read the database file) and
//     empties the file; the writer waits that long, at most
//     checkpointBusy, and only when the WAL has passed walRestartAt.
//
// journalSizeLimit is what SQLite cuts the WAL file back to whenever the
// writer starts it over, so one large transaction does not leave a large
// file behind. Together they keep the WAL under 64 MB (TestWALBounded);
// only one transaction larger than that could pass it, and none is: the
// deletes go in batches.
const (
	checkpointEvery  = 100 * time.Millisecond
	walRestartAt     = 16 << 20
	journalSizeLimit = 16 << 20
	// checkpointBusy is how long a checkpoint waits for the readers
	// before it gives up until the next tick.
	checkpointBusy = time.Second
)

// checkpointer runs the WAL's checkpoints until stop is closed, then
// closes done.
type checkpointer struct {
	conn  *sql.DB // its own, for the PASSIVE checkpoints
	write *sql.DB // the writer's, for the TRUNCATE ones
	wal   string  // the WAL file's path
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

func startCheckpointer(ctx context.Context, path string, write *sql.DB) (*checkpointer, error) {
	v := url.Values{}
	v.Add("_pragma", "busy_timeout("+strconv.Itoa(int(checkpointBusy/time.Millisecond))+")")
	v.Add("_pragma", "synchronous(FULL)")
	v.Add("_pragma", "journal_size_limit("+strconv.Itoa(journalSizeLimit)+")")
	conn, err := sql.Open("sqlite", path+"?"+v.Encode())
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxLifetime(0)
	conn.SetConnMaxIdleTime(0)
	if err := conn.PingContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	c := &checkpointer{conn: conn, write: write, wal: path + "-wal", stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		// A failed or busy checkpoint is tried again at the next tick;
		// the WAL only grows meanwhile.
		c.checkpoint()
	}
}

// checkpoint runs one checkpoint and says whether it was a TRUNCATE.
func (c *checkpointer) checkpoint() bool {
	if fi, err := os.Stat(c.wal); err == nil && fi.Size() > walRestartAt {
		// Bounded: the writer's busy timeout is long, and intake waits.
		ctx, cancel := context.WithTimeout(context.Background(), checkpointBusy)
		defer cancel()
		c.write.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
		return true
	}
	c.conn.Exec("PRAGMA wal_checkpoint(PASSIVE)")
	return false
}

// close stops the loop, waits for it, and closes the connection. Only
// the first call does: DB.Close may be called twice.
func (c *checkpointer) close() error {
	var err error
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		err = c.conn.Close()
	})
	return err
}
