package sqlite

// AwaitFirstPurge waits for the purger's first pass, which Migrate starts
// in the background: a test that then removes a webhook's row behind the
// purger's back knows that only a wake-up, or the next Open, acts on it.
func AwaitFirstPurge(db *DB) { <-db.purger.FirstPass() }

// SetRecoverBatch makes DeliveryRecover take n deliveries a transaction
// until the test ends.
func SetRecoverBatch(t interface{ Cleanup(func()) }, n int) {
	old := recoverBatch
	recoverBatch = n
	t.Cleanup(func() { recoverBatch = old })
}

// SetQueuedListWindow makes DeliveryList of pending or running
// deliveries read the webhook's n newest before the queue, until the
// test ends.
func SetQueuedListWindow(t interface{ Cleanup(func()) }, n int) {
	old := queuedListWindow
	queuedListWindow = n
	t.Cleanup(func() { queuedListWindow = old })
}
