package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/hookd/hookd/internal/store/postgres/pgtest"
)

// DeliveryComplete looks up the attempts of the outcomes it did not
// apply (stale ones, or one sent again after its commit) each by its key,
// never by reading the organization's whole log of attempts, nor the
// table: stale outcomes come in bursts (a node paused, cut off), and the
// recorder waits for the lookup.
func TestAttemptsStoredUseTheKey(t *testing.T) {
	db := openSchema(t, pgtest.URL(t))
	ctx := context.Background()
	org, hook := uuid.New(), uuid.New()
	if _, err := db.pool.Exec(ctx, `INSERT INTO attempts (organization_id, id, delivery_id, webhook_id, event_id, created_at,
			number, kind, target_url, status_code, response_body, duration_us, error)
		SELECT $1, gen_random_uuid(), gen_random_uuid(), $2, gen_random_uuid(), now(), 1, 'STANDARD', 'https://example.com', 200, '', 1000, ''
		FROM generate_series(1, 50000)`, org, hook); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, `ANALYZE attempts`); err != nil {
		t.Fatal(err)
	}
	plan := explain(t, db, attemptsStoredSQL, []uuid.UUID{org, org}, []uuid.UUID{hook, hook}, []uuid.UUID{uuid.New(), uuid.New()})
	if strings.Count(plan, "Index Cond: ((organization_id = k.org) AND (webhook_id = k.hook) AND (id = k.id))") != 2 || strings.Contains(plan, "Seq Scan") {
		t.Errorf("the attempts of outcomes not applied are not looked up by key in both plans:\n%s", plan)
	}
}
