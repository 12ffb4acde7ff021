package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/hookd/hookd/internal/webhook"
)

// AttemptStats reads only the attempts_webhook_created index: the counts
// in one pass, each percentile as the row at its rank in duration order,
// and the buckets grouped by their offset from Since. One read
// transaction, so every figure is of the same attempts.
func (db *DB) AttemptStats(ctx context.Context, p webhook.AttemptStatsParams) (*webhook.AttemptStats, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, translate(err)
	}
	defer tx.Rollback()
	// Attempts have no organization column (migration 0030): the webhook
	// is the organization's, or its figures are all zero.
	var owned bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks WHERE organization_id = ? AND id = ?)`,
		p.OrganizationID, p.WebhookID).Scan(&owned)
	if err != nil {
		return nil, translate(err)
	}
	const window = ` FROM attempts WHERE webhook_id = ? AND created_at >= ? AND created_at < ?`
	args := []any{key(p.WebhookID), micros(p.Since), micros(p.Until)}
	st := &webhook.AttemptStats{}
	if owned {
		err = tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(status_code NOT BETWEEN 200 AND 299), 0)`+window, args...).
			Scan(&st.Attempts, &st.Failures)
		if err != nil {
			return nil, translate(err)
		}
	}
	for _, pc := range []struct {
		p   int
		dst *time.Duration
	}{{50, &st.P50}, {95, &st.P95}} {
		if st.Attempts == 0 {
			break
		}
		var us int64
		err := tx.QueryRowContext(ctx, `SELECT duration_us`+window+` ORDER BY duration_us LIMIT 1 OFFSET ?`,
			append(args, webhook.PercentileRank(pc.p, st.Attempts)-1)...).Scan(&us)
		if err != nil {
			return nil, translate(err)
		}
		*pc.dst = time.Duration(us) * time.Microsecond
	}
	n := webhook.BucketCount(p.Since, p.Until, p.Bucket)
	if n == 0 {
		return st, nil
	}
	st.Buckets = make([]webhook.StatsBucket, n)
	for i := range st.Buckets {
		st.Buckets[i].Start = p.Since.Add(time.Duration(i) * p.Bucket).UTC()
	}
	if st.Attempts == 0 {
		return st, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT (created_at - ?) / ?, count(*), sum(status_code NOT BETWEEN 200 AND 299)`+window+` GROUP BY 1`,
		append([]any{micros(p.Since), p.Bucket.Microseconds()}, args...)...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var i, attempts, failures int
		if err := rows.Scan(&i, &attempts, &failures); err != nil {
			return nil, translate(err)
		}
		if i >= 0 && i < n {
			st.Buckets[i].Attempts, st.Buckets[i].Failures = attempts, failures
		}
	}
	return st, translate(rows.Err())
}
