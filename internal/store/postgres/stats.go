package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/internal/webhook"
)

// attemptStatsSQL reads one range of a webhook's attempts from
// attempts_webhook_created alone (index-only): how many, how many
// failed, and their durations as one array, where a row each cost a
// message per attempt.
const attemptStatsSQL = `SELECT count(*), count(*) FILTER (WHERE status_code NOT BETWEEN 200 AND 299),
		coalesce(array_agg(duration_us), '{}')
	FROM attempts WHERE organization_id = $1 AND webhook_id = $2 AND created_at >= $3 AND created_at < $4`

// AttemptStats reads each of the window's ranges (p.Ranges) with a
// statement that sorts nothing, all in one batch, and adds them up with
// webhook.SumAttemptStats. One repeatable-read transaction, so every
// figure is of the same attempts.
func (db *DB) AttemptStats(ctx context.Context, p webhook.AttemptStatsParams) (*webhook.AttemptStats, error) {
	ranges := p.Ranges()
	read := make([]webhook.RangeStats, len(ranges))
	var durations []int64
	if len(ranges) > 0 {
		err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			for _, r := range ranges {
				b.Queue(attemptStatsSQL, p.OrganizationID, p.WebhookID, ts(r.Since), ts(r.Until))
			}
			br := tx.SendBatch(ctx, b)
			for i := range read {
				var ds []int64
				if err := br.QueryRow().Scan(&read[i].Attempts, &read[i].Failures, &ds); err != nil {
					br.Close()
					return err
				}
				durations = append(durations, ds...)
			}
			return br.Close()
		})
		if err != nil {
			return nil, translate(err)
		}
	}
	return webhook.SumAttemptStats(p, read, durations), nil
}
