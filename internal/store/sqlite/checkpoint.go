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
//     it copies what no reader still needs without taking the write lock.
//     SQLite starts the WAL over at the beginning of its file (in place,
//     no file to grow again) when a transaction begins on a WAL every
//     frame of which is copied and no reader is in it, which a writer
//     committing every few milliseconds never lets this checkpoint see:
//     it always commits again before the checkpoint ends;
//   - when the WAL holds more than walRestartAt, a PASSIVE checkpoint
//     queued on the writer's connection like any write: it copies what
//     the background one did not (usually the few milliseconds committed
//     since), so that the writer's next transaction starts the WAL over
//     unless a reader is still in it. It waits for no reader, but the
//     writer waits for it, its copy and its two syncs (WAL and database
//     file): 1–3 ms at a steady 1,000 events/s, up to about 20 ms with
//     readers always present. Those readers also keep the WAL from
//     starting over, and then this checkpoint runs every tick for
//     nothing until the TRUNCATE below (TestWALBounded's writer spends
//     about as long in checkpoints as it did without it);
//   - when the WAL file passes walTruncateAt all the same (readers always
//     overlapping keep SQLite from starting it over: the WAL grew to
//     174 MB so), a TRUNCATE, also on the writer's connection: it copies
//     what is left, waits for the readers of the old frames (new ones
//     read the database file) and empties the file; the writer waits
//     that long, at most checkpointBusy.
//
// Starting over in place rather than truncating at 16 MB (every second
// and a half at a steady 1,000 events/s): the writer no longer waits for
// a TRUNCATE's readers (through the busy handler's sleeps) and a copy of
// everything the background checkpoint left, and the file does not grow
// again from nothing. In ten alternated steady runs of `hookd bench` the
// deliveries' p99 went from a median 24 ms to 18.5 ms, lower or equal in
// each pair; what is left of the tail is the disk's: commits whose fsync
// alone takes 10–60 ms.
//
// journalSizeLimit is what SQLite cuts the WAL file back to whenever the
// writer starts it over, so one large transaction does not leave a large
// file behind. Together they keep the WAL under 64 MB (TestWALBounded);
// only one transaction larger than that could pass it, and none is: the
// deletes go in batches.
const (
	checkpointEvery  = 100 * time.Millisecond
	walRestartAt     = 8 << 20
	walTruncateAt    = 16 << 20
	journalSizeLimit = 16 << 20
	// checkpointBusy is how long a checkpoint waits for the readers
	// before it gives up until the next tick.
	checkpointBusy = time.Second
)

// checkpointer runs the WAL's checkpoints until stop is closed, then
// closes done.
type checkpointer struct {
	conn  *sql.DB // its own, for the background PASSIVE checkpoints
	write *sql.DB // the writer's, for the restarting PASSIVE and the TRUNCATE ones
	wal   string  // the WAL file's path
	frame int     // the bytes of a WAL frame: a page and its header
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
	var page int
	if err := conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&page); err != nil {
		conn.Close()
		return nil, err
	}
	c := &checkpointer{conn: conn, write: write, wal: path + "-wal", frame: page + 24,
		stop: make(chan struct{}), done: make(chan struct{})}
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

// checkpoint runs a tick's checkpoints.
func (c *checkpointer) checkpoint() {
	// Those on the writer's connection are bounded: the writer's busy
	// timeout is long, and intake waits.
	ctx, cancel := context.WithTimeout(context.Background(), checkpointBusy)
	defer cancel()
	if fi, err := os.Stat(c.wal); err == nil && fi.Size() > walTruncateAt {
		c.write.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
		return
	}
	var busy, frames, copied int
	if err := c.conn.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		return
	}
	if frames*c.frame > walRestartAt {
		c.write.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	}
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
