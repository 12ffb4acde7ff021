package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/webhook"
)

// AttemptStats reads only the attempts_webhook_created index: the counts
// in one pass, each percentile as the row at its rank in duration order
// (as the SQLite backend does, so both pick the same value), and the
// buckets grouped by their offset from Since. One repeatable-read
// transaction, so every figure is of the same attempts.
func (db *DB) AttemptStats(ctx context.Context, p webhook.AttemptStatsParams) (*webhook.AttemptStats, error) {
	st := &webhook.AttemptStats{}
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		const window = ` FROM attempts WHERE organization_id = $1 AND webhook_id = $2 AND created_at >= $3 AND created_at < $4`
		args := []any{p.OrganizationID, p.WebhookID, ts(p.Since), ts(p.Until)}
		err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status_code NOT BETWEEN 200 AND 299)`+window, args...).
			Scan(&st.Attempts, &st.Failures)
		if err != nil {
			return err
		}
		for _, pc := range []struct {
			p   int
			dst *time.Duration
		}{{50, &st.P50}, {95, &st.P95}} {
			if st.Attempts == 0 {
				break
			}
			var us int64
			err := tx.QueryRow(ctx, `SELECT duration_us`+window+` ORDER BY duration_us LIMIT 1 OFFSET $5`,
				append(args, webhook.PercentileRank(pc.p, st.Attempts)-1)...).Scan(&us)
			if err != nil {
				return err
			}
			*pc.dst = time.Duration(us) * time.Microsecond
		}
		n := webhook.BucketCount(p.Since, p.Until, p.Bucket)
		if n == 0 {
			return nil
		}
		st.Buckets = make([]webhook.StatsBucket, n)
		for i := range st.Buckets {
			st.Buckets[i].Start = p.Since.Add(time.Duration(i) * p.Bucket).UTC()
		}
		rows, err := tx.Query(ctx, `SELECT (extract(epoch FROM created_at - $3) * 1000000)::bigint / $5, count(*),
			count(*) FILTER (WHERE status_code NOT BETWEEN 200 AND 299)`+window+` GROUP BY 1`, append(args, p.Bucket.Microseconds())...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				i                  int64
				attempts, failures int
			)
			if err := rows.Scan(&i, &attempts, &failures); err != nil {
				return err
			}
			if i >= 0 && i < int64(n) {
				st.Buckets[i].Attempts, st.Buckets[i].Failures = attempts, failures
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, translate(err)
	}
	return st, nil
}
