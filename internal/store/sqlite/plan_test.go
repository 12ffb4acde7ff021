package sqlite

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hookd/hookd/internal/store/storetest"
	"github.com/hookd/hookd/internal/webhook"
)

// The statements that run for every delivery find it by its webhook and
// id, and a retention batch reads events by seq from where the last one
// stopped: migration 0035 dropped the indexes on deliveries.id and
// events.created_at, and this checks that nothing fell back to reading
// the queue or the events whole. (The one statement that does read
// events in order, retentionEndSQL, stops at the first young one, once
// per run: TestDeleteBeforeStopsAtFirstYoungEvent.)
func TestPlansUseKeys(t *testing.T) {
	const deliveryPage = ` AND d.id < ? ORDER BY d.id DESC LIMIT ?`
	wholeTable := regexp.MustCompile(`(?m)^SCAN (d|deliveries|e|events)\b`)
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "hookd.db"), storetest.Keys(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const byKey = "SEARCH deliveries USING INDEX deliveries_webhook (webhook_id=? AND id=?)"
	for name, q := range map[string]struct {
		sql    string
		params int
		want   string
	}{
		"retention":      {retentionSQL, 4, "SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		"complete":       {completeUpdates[1], 9, byKey},
		"renew":          {renewSQL, 5, byKey},
		"release":        {releaseSQL, 5, byKey},
		"attempt stored": {attemptStoredSQL, 3, "SEARCH attempts USING INDEX attempts_delivery (delivery_seq=?)"},
		"lease":          {leaseSQL, 3, "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)"},
		"claimed events": {claimedEventsSQL, 1, "SEARCH e USING INTEGER PRIMARY KEY (rowid=?)"},
		// Each key found in the index, not the organization's events read.
		"key holders": {keyHoldersSQL, 2, "SEARCH e USING INDEX events_idempotency (organization_id=? AND idempotency_key=?)"},
		"key holder":  {keyHolderSQL, 2, "SEARCH e USING INDEX events_idempotency (organization_id=? AND idempotency_key=?)"},
		// The queue's waiting part, not all the webhook's history.
		"recover pending": {recoverPendingSQL, 11, "SEARCH deliveries USING INDEX deliveries_due (due_at>?)"},
		"recover failed":  {recoverFailedSQL, 10, "SEARCH deliveries USING INDEX deliveries_failed (webhook_id=? AND created_at>? AND created_at<?)"},
		// Once at a server's start: every unfinished row (the partial
		// index), not the history.
		"release leases": {releaseLeasesSQL, 1, "SCAN deliveries USING INDEX deliveries_due"},
		// Newest first from the index: only attempts that started in the
		// same microsecond are sorted (LAST TERM), never the whole list.
		"attempt list": {attemptListSQL + attemptListOrder, 3, "SEARCH a USING INDEX attempts_webhook_created (webhook_id=?)\nSEARCH d USING INTEGER PRIMARY KEY (rowid=?)\nSEARCH e USING INTEGER PRIMARY KEY (rowid=?)\nUSE TEMP B-TREE FOR LAST TERM OF ORDER BY"},
		// A page of a webhook's deliveries, of one status or all, from
		// an index of the rows asked for, never its whole history for a
		// status few of them have: failed ones in order, queued ones from
		// the queue.
		"delivery list":           {deliveryListSQL("") + deliveryPage, 4, "SEARCH d USING INDEX deliveries_webhook (webhook_id=? AND id<?)"},
		"delivery list succeeded": {deliveryListSQL(webhook.DeliverySucceeded) + deliveryPage, 4, "SEARCH d USING INDEX deliveries_webhook (webhook_id=? AND id<?)"},
		"delivery list failed":    {deliveryListSQL(webhook.DeliveryFailed) + deliveryPage, 4, "SEARCH d USING INDEX deliveries_webhook_failed (webhook_id=? AND id<?)"},
		"delivery list pending":   {deliveryListSQL(webhook.DeliveryPending) + deliveryPage, 4, "SCAN d USING INDEX deliveries_due\nSEARCH e USING INTEGER PRIMARY KEY (rowid=?)\nUSE TEMP B-TREE FOR ORDER BY"},
		// A webhook's newest deliveries, read for its pending or
		// running ones before the queue: the window's edge from the
		// index's keys alone, then the window in order, ...
		"queued list window": {windowEdgeSQL, 3, "SEARCH deliveries USING COVERING INDEX deliveries_webhook (webhook_id=? AND id<?)"},
		"queued list newest": {queuedInHistorySQL(statusPending) + ` AND d.id >= ?` + deliveryPage, 5, "SEARCH d USING INDEX deliveries_webhook (webhook_id=? AND id>? AND id<?)"},
		// and the queue for the older ones, sorted.
		"queued list older":     {deliveryListSQL(webhook.DeliveryPending) + ` AND d.id < ?` + deliveryPage, 5, "SCAN d USING INDEX deliveries_due\nSEARCH e USING INTEGER PRIMARY KEY (rowid=?)\nUSE TEMP B-TREE FOR ORDER BY"},
		"delivery list running": {deliveryListSQL(webhook.DeliveryRunning) + deliveryPage, 4, "SCAN d USING INDEX deliveries_due\nSEARCH e USING INTEGER PRIMARY KEY (rowid=?)\nUSE TEMP B-TREE FOR ORDER BY"},
		// A range of the index, in its order: no attempt is sorted, as
		// ranking and grouping them in SQL did (30 s for 3 million).
		"stats": {attemptStatsSQL, 3, "SEARCH attempts USING COVERING INDEX attempts_webhook_created (webhook_id=? AND created_at>? AND created_at<?)"},
	} {
		rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q.sql, make([]any, q.params)...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		// The scan a statement wants (of the queue's partial index) is
		// not one of the whole table, and it sorts only what want says.
		rest := strings.Replace(text, q.want, "", 1)
		if !strings.Contains(text, q.want) || wholeTable.MatchString(rest) || strings.Contains(rest, "TEMP B-TREE") {
			t.Errorf("%s: want %q, no scan of events or deliveries and nothing else sorted, got:\n%s", name, q.want, text)
		}
	}
}
