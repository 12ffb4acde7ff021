package sqlite

// AwaitFirstPurge waits for the purger's first pass, which Migrate starts
// in the background: a test that then removes a webhook's row behind the
// purger's back knows that only a wake-up, or the next Open, acts on it.
func AwaitFirstPurge(db *DB) { <-db.purger.FirstPass() }
