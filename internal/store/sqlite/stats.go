package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/hookd/hookd/internal/webhook"
)

// attemptStatsSQL reads one range of a webhook's attempts from
// attempts_webhook_created alone, in index order: how many, how many
// failed, and their durations as one text ("120,5031,..."), where a row
// each cost a step of the statement per attempt (4 s for 3 million
// attempts against 2 s).
const attemptStatsSQL = `SELECT count(*), coalesce(sum(status_code NOT BETWEEN 200 AND 299), 0),
		coalesce(group_concat(duration_us, ','), '')
	FROM attempts WHERE webhook_id = ? AND created_at >= ? AND created_at < ?`

// AttemptStats reads each of the window's ranges (p.Ranges) in one pass
// over the attempts_webhook_created index that sorts nothing, and adds
// them up with webhook.SumAttemptStats. One read transaction, so every
// figure is of the same attempts.
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
	ranges := p.Ranges()
	read := make([]webhook.RangeStats, len(ranges))
	var durations []int64
	for i, r := range ranges {
		if !owned {
			break // every range counts nothing
		}
		var text string
		err := tx.QueryRowContext(ctx, attemptStatsSQL, key(p.WebhookID), micros(r.Since), micros(r.Until)).
			Scan(&read[i].Attempts, &read[i].Failures, &text)
		if err != nil {
			return nil, translate(err)
		}
		if durations, err = appendDurations(durations, text, read[i].Attempts); err != nil {
			return nil, err
		}
	}
	return webhook.SumAttemptStats(p, read, durations), nil
}

// appendDurations appends to out the n comma-separated integers of
// attemptStatsSQL.
func appendDurations(out []int64, s string, n int) ([]int64, error) {
	want := len(out) + n
	for s != "" {
		field, rest, _ := strings.Cut(s, ",")
		v, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("sqlite: attempt durations: %w", err)
		}
		out = append(out, v)
		s = rest
	}
	if len(out) != want {
		return nil, fmt.Errorf("sqlite: %d attempt durations for %d attempts", n+len(out)-want, n)
	}
	return out, nil
}
